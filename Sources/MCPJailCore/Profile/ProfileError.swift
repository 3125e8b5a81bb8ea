/// One thing wrong with a profile, located as precisely as the source allows.
public struct ProfileProblem: Sendable, Equatable, CustomStringConvertible {
    /// The profile file.
    public var file: String
    /// 1-based line of the offending key or value, or nil when there is no line to point at
    /// (a missing table, an unreadable file).
    public var line: Int?
    /// Where in the document: `server.command`, `filesystem.read_only[2]`,
    /// `filesystem.tmpfs."/tmp"`; empty for problems with the whole file (a syntax error).
    public var keyPath: String
    public var message: String

    public init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    /// `FILE:LINE: KEY.PATH: message`, the compiler-style line editors and CI understand.
    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        out += ": "
        if !keyPath.isEmpty { out += keyPath + ": " }
        return out + message
    }
}

/// A profile that failed validation, with every problem found (never just the first).
public struct ProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [ProfileProblem]

    public init(problems: [ProfileProblem]) {
        self.problems = problems
    }

    /// The profile file the problems are about.
    public var file: String { problems.first?.file ?? "" }

    /// One line per problem: `FILE:LINE: KEY.PATH: message`.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }

    /// The same failure as an ``MCPJailError`` (`.invalidProfile`), for callers that report
    /// every error through one type: `mcpjail: invalid profile FILE:` and then the problems.
    public var mcpjailError: MCPJailError {
        MCPJailError(.invalidProfile, "invalid profile \(file):\n" + description)
    }
}

/// A position in a TOML document: keys and array indices.
struct KeyPath: Hashable, Sendable, CustomStringConvertible {
    enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    var components: [Component]

    init(_ components: [Component] = []) { self.components = components }
    init(keys: [String]) { self.components = keys.map { .key($0) } }

    static let root = KeyPath()

    func appending(_ key: String) -> KeyPath { KeyPath(components + [.key(key)]) }
    func appending(index: Int) -> KeyPath { KeyPath(components + [.index(index)]) }
    func appending(_ other: KeyPath) -> KeyPath { KeyPath(components + other.components) }

    var parent: KeyPath? {
        components.isEmpty ? nil : KeyPath(Array(components.dropLast()))
    }

    /// `server.env.TZ`, `filesystem.read_only[0]`, `filesystem.tmpfs."/tmp"`.
    var description: String {
        var out = ""
        for component in components {
            switch component {
            case .key(let key):
                if !out.isEmpty { out += "." }
                out += TOMLText.key(key)
            case .index(let index):
                out += "[\(index)]"
            }
        }
        return out
    }
}
