import FoundationEssentials
import Glibc

/// `NAME.tools.lock`, beside `NAME.toml` and `NAME.lock`: the reviewed definitions of the
/// server's tools, its `instructions` and its `serverInfo`, written by `mcpjail pin` (from a
/// jailed run of the server) and `mcpjail approve`, enforced by the relay (``ToolReview``).
///
/// Kept apart from `NAME.lock` (the file pins) so that a warm start's file check needs no
/// parse of either; the relay reads this one only when it exists. JSON with sorted keys, one
/// tool per line in canonical JSON, so pinning the same server twice gives the same bytes:
/// ```json
/// {
///   "format": 1,
///   "instructions": "sha256 hex, or null",
///   "server_info": {"name":"mcp-time","version":"2026.10.19"},
///   "tools": {
///     "get_current_time": {"description":"...","inputSchema":{...},"name":"get_current_time"}
///   }
/// }
/// ```
/// Each tool keeps the reviewed fields of ``ToolFingerprint`` (so `mcpjail diff` can show
/// field by field what changed); its fingerprint is computed from them.
public struct ToolLock: Sendable, Equatable {
    public static let format = 1

    /// Reviewed fields of each tool, by name.
    public var tools: [String: JSONValue]
    /// The instructions' fingerprint, nil when the server gave none.
    public var instructions: String?
    /// `serverInfo` as the server reported it (name, version), if it did.
    public var serverInfo: JSONValue?

    public init(tools: [String: JSONValue], instructions: String?, serverInfo: JSONValue?) {
        self.tools = tools.mapValues { .object(JSONObject(ToolFingerprint.reviewed($0))) }
        self.instructions = instructions
        self.serverInfo = serverInfo
    }

    /// What the relay enforces.
    public var pins: ToolPins {
        ToolPins(tools: tools.mapValues(ToolFingerprint.digest(ofTool:)), instructions: instructions)
    }

    public static func path(forProfileAt profilePath: String, name: String) -> String {
        let directory = PathSyntax.directoryName(profilePath)
        return (directory == "/" ? "" : directory) + "/" + name + ".tools.lock"
    }

    public func encoded() -> [UInt8] {
        var out = Array("{\n  \"format\": \(Self.format),\n  \"instructions\": ".utf8)
        if let instructions { JSONWriter.appendQuoted(instructions, to: &out) } else { out += Array("null".utf8) }
        out += Array(",\n  \"server_info\": ".utf8)
        out += serverInfo.map(CanonicalJSON.serialize) ?? Array("null".utf8)
        out += Array(",\n  \"tools\": {".utf8)
        let names = tools.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for (index, name) in names.enumerated() {
            out += Array((index == 0 ? "\n    " : ",\n    ").utf8)
            JSONWriter.appendQuoted(name, to: &out)
            out += Array(": ".utf8)
            out += CanonicalJSON.serialize(tools[name]!)
        }
        out += Array((names.isEmpty ? "}\n}\n" : "\n  }\n}\n").utf8)
        return out
    }

    public static func decode(_ bytes: [UInt8], file: String) throws(MCPJailError) -> ToolLock {
        func bad(_ why: String) -> MCPJailError {
            MCPJailError(
                .invalidLock, "invalid tool lock \(file): \(why)",
                hint: "tool locks are written by `mcpjail pin NAME` and `mcpjail approve NAME`")
        }
        guard case .object(let top)? = try? JSONParser.parse(bytes) else { throw bad("not a JSON object") }
        guard top["format"]?.numberValue?.int64Value == Int64(format) else { throw bad("not format \(format)") }
        for key in top.keys where !["format", "instructions", "server_info", "tools"].contains(key) {
            throw bad("unknown key \"\(key)\"")
        }
        var instructions: String? = nil
        switch top["instructions"] {
        case .string(let digest)?: instructions = digest
        case .null?, nil: break
        default: throw bad("\"instructions\" is not a string or null")
        }
        guard case .object(let tools)? = top["tools"] else { throw bad("\"tools\" is missing or not an object") }
        var definitions: [String: JSONValue] = [:]
        for (name, definition) in tools {
            guard case .object = definition, definition["name"]?.stringValue == name else {
                throw bad("tool \"\(name)\" is not a definition with that name")
            }
            definitions[name] = definition
        }
        let serverInfo = top["server_info"].flatMap { $0.isNull ? nil : $0 }
        return ToolLock(tools: definitions, instructions: instructions, serverInfo: serverInfo)
    }

    /// Reads the tool lock beside a profile, nil when there is none.
    public static func load(forProfileAt profilePath: String, name: String) throws(MCPJailError) -> ToolLock? {
        let path = Self.path(forProfileAt: profilePath, name: name)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try decode(Array(data), file: path)
    }
}
