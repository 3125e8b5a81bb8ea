import FoundationEssentials
import Glibc

/// Reads the values of a profile's `[secrets]` when a session starts: from a file (one
/// trailing newline dropped) or from a variable of the client's environment. A missing
/// or empty secret is an error before anything starts; the value itself never appears in
/// an error.
public enum SecretLoader {
    public static func load(
        _ secrets: [Profile.Secret], environment: [String: String]
    ) throws(MCPJailError) -> [(name: String, value: String)] {
        var values: [(name: String, value: String)] = []
        for secret in secrets {
            var value: String
            switch secret.source {
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw MCPJailError(
                        .invalidProfile, "cannot read secret \(secret.name) from \(path)",
                        hint: "create the file (mode 0600) holding only the secret")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw MCPJailError(.invalidProfile, "secret \(secret.name) in \(path) is not UTF-8 text")
                }
                value = text
                if value.hasSuffix("\r\n") { value.removeLast(2) } else if value.hasSuffix("\n") { value.removeLast() }
            case .environment(let variable):
                guard let text = environment[variable] else {
                    throw MCPJailError(
                        .invalidProfile, "secret \(secret.name) comes from $\(variable), which is not set",
                        hint: "set \(variable) in the environment the MCP client gives mcpjail")
                }
                value = text
            }
            if value.isEmpty { throw MCPJailError(.invalidProfile, "secret \(secret.name) is empty") }
            if value.utf8.contains(0) { throw MCPJailError(.invalidProfile, "secret \(secret.name) contains a NUL byte") }
            values.append((secret.name, value))
        }
        return values
    }
}
