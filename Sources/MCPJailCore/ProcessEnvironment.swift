import Glibc

/// This process's environment as a dictionary, read from `environ`. `mcpjail run` reads it
/// at every client start; Foundation's `ProcessInfo.environment` builds the same dictionary
/// but first sets up ProcessInfo and has the runtime demangle and conformance-check its
/// generic types. A name that appears twice keeps its first value, as getenv(3) does.
public enum ProcessEnvironment {
    public static func current() -> [String: String] {
        var variables: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = String(text[..<equals])
                if variables[name] == nil { variables[name] = String(text[text.index(after: equals)...]) }
            }
            entry += 1
        }
        return variables
    }
}
