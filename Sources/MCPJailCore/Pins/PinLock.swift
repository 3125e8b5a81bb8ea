/// `NAME.lock`, written by `mcpjail pin NAME` beside `NAME.toml`: the digests `mcpjail run
/// NAME` checks before it lets the server start.
///
/// The format is JSON with sorted keys, two-space indentation and a final newline, so that
/// pinning the same files twice gives the same bytes and a change reviews as a small diff:
/// ```json
/// {
///   "code": {
///     "/srv/mcp/time": {
///       "digest": "sha256:<tree digest, see TreeDigest>",
///       "entries": {
///         ".": "d 0755",
///         "bin/mcp-server-time": "f 0755 <sha256 hex of the contents>",
///         "bin/python": "l /usr/bin/python3"
///       }
///     }
///   },
///   "command": {
///     "digest": "sha256:<hex of the contents of the file exec runs, links followed>",
///     "path": "/srv/mcp/time/bin/mcp-server-time"
///   },
///   "format": 1
/// }
/// ```
/// - `format`: the version of this layout. A reader refuses a format it does not know, and
///   within a format refuses unknown keys: a pin it cannot check is never skipped silently.
/// - `code`: one member per `[server] code` path (expanded, absolute), with the tree's
///   digest and every entry (see ``TreeEntry``). The digest must agree with the entries.
/// - `command`: `[server] command` and the SHA-256 of what it runs.
/// - Reserved for the server's identity pins (not written yet): `server_info` (`{"name",
///   "version"}` as the server reports them) and `tools` (tool name → digest of its
///   definition). They sort after `format`; adding them is a new format version.
public struct PinLock: Sendable, Equatable {
    /// The format this mcpjail writes and reads.
    public static let format = 1

    public struct Command: Sendable, Equatable {
        /// `[server] command`, as the profile names it (expanded).
        public var path: String
        /// `sha256:` + hex of the contents of the file it leads to.
        public var digest: String

        public init(path: String, digest: String) {
            self.path = path
            self.digest = digest
        }
    }

    public struct Code: Sendable, Equatable {
        /// One `[server] code` path (expanded, absolute).
        public var path: String
        /// ``TreeDigest`` of `entries`.
        public var digest: String
        /// Sorted by path bytes.
        public var entries: [TreeEntry]

        public init(path: String, entries: [TreeEntry]) {
            self.path = path
            self.entries = TreeDigest.sorted(entries)
            self.digest = TreeDigest.of(self.entries)
        }
    }

    public var command: Command
    /// Sorted by path bytes.
    public var code: [Code]

    public init(command: Command, code: [Code]) {
        self.command = command
        self.code = code.sorted { TreeEntry.precedes($0.path, $1.path) }
    }

    /// `NAME.lock` beside the profile file `profilePath` (`NAME.toml`).
    public static func path(forProfileAt profilePath: String, name: String) -> String {
        let directory = PathSyntax.directoryName(profilePath)
        return (directory == "/" ? "" : directory) + "/" + name + ".lock"
    }

    /// The lock's bytes (see the type's documentation).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + code.reduce(0) { $0 + $1.entries.count * 110 })
        func line(_ indent: Int, _ text: String) {
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
            out.append(contentsOf: text.utf8)
            out.append(UInt8(ascii: "\n"))
        }
        func member(_ indent: Int, _ key: String, _ value: String, last: Bool) {
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
            JSONWriter.appendQuoted(key, to: &out)
            out.append(contentsOf: ": ".utf8)
            JSONWriter.appendQuoted(value, to: &out)
            if !last { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\n"))
        }
        line(0, "{")
        if code.isEmpty {
            line(1, "\"code\": {},")
        } else {
            line(1, "\"code\": {")
            for (index, tree) in code.enumerated() {
                line(2, JSONWriter.quoted(tree.path) + ": {")
                member(3, "digest", tree.digest, last: false)
                line(3, "\"entries\": {")
                for (entryIndex, entry) in tree.entries.enumerated() {
                    member(4, entry.path, entry.value, last: entryIndex == tree.entries.count - 1)
                }
                line(3, "}")
                line(2, index == code.count - 1 ? "}" : "},")
            }
            line(1, "},")
        }
        line(1, "\"command\": {")
        member(2, "digest", command.digest, last: false)
        member(2, "path", command.path, last: true)
        line(1, "},")
        line(1, "\"format\": \(Self.format)")
        line(0, "}")
        return out
    }

    /// Reads a lock written by ``encoded()``; `file` names it in errors.
    ///
    /// - Throws: ``MCPJailError`` `.invalidLock` for anything else: not JSON, another format,
    ///   unknown or missing keys, a malformed entry, or a tree digest that disagrees with its
    ///   entries (a hand edit).
    public static func decode(_ bytes: [UInt8], file: String) throws(MCPJailError) -> PinLock {
        func bad(_ why: String) -> MCPJailError {
            MCPJailError(
                .invalidLock, "invalid lock \(file): \(why)",
                hint: "locks are written by `mcpjail pin NAME`; run it again after reviewing the server")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw bad("not JSON: \(error)")
        }
        guard case .object(let top) = json else { throw bad("not a JSON object") }
        guard let formatValue = top["format"] else { throw bad("no \"format\"") }
        guard let format = formatValue.numberValue?.int64Value else { throw bad("\"format\" is not a number") }
        guard format == Int64(Self.format) else {
            throw bad("format \(format) is not one this mcpjail reads (it reads format \(Self.format))")
        }
        for key in top.keys where !["code", "command", "format"].contains(key) {
            throw bad("unknown key \"\(key)\" (written by a newer mcpjail?)")
        }
        guard case .object(let commandObject)? = top["command"] else { throw bad("\"command\" is missing or not an object") }
        for key in commandObject.keys where !["digest", "path"].contains(key) {
            throw bad("unknown key \"command.\(key)\"")
        }
        guard let commandPath = commandObject["path"]?.stringValue, let commandDigest = commandObject["digest"]?.stringValue
        else { throw bad("\"command\" needs the strings \"path\" and \"digest\"") }
        guard isDigest(commandDigest) else { throw bad("\"command.digest\" is not sha256:<64 hex digits>") }
        guard case .object(let codeObject)? = top["code"] else { throw bad("\"code\" is missing or not an object") }
        var code: [Code] = []
        for (path, value) in codeObject {
            guard case .object(let tree) = value else { throw bad("\"code.\(path)\" is not an object") }
            for key in tree.keys where !["digest", "entries"].contains(key) {
                throw bad("unknown key \"\(key)\" in \"code.\(path)\"")
            }
            guard let digest = tree["digest"]?.stringValue, isDigest(digest) else {
                throw bad("\"code.\(path).digest\" is missing or not sha256:<64 hex digits>")
            }
            guard case .object(let entryObject)? = tree["entries"] else { throw bad("\"code.\(path).entries\" is missing or not an object") }
            var entries: [TreeEntry] = []
            entries.reserveCapacity(entryObject.count)
            for (entryPath, entryValue) in entryObject {
                guard let text = entryValue.stringValue, TreeEntry.isWellFormed(value: text) else {
                    throw bad("\"code.\(path).entries.\(entryPath)\" is not \"f MODE SHA256\", \"d MODE\" or \"l TARGET\"")
                }
                entries.append(TreeEntry(path: entryPath, value: text))
            }
            guard entries.contains(where: { $0.path == "." }) else { throw bad("\"code.\(path).entries\" has no \".\" (the code path itself)") }
            let pinned = Code(path: path, entries: entries)
            guard pinned.digest == digest else {
                throw bad("the digest of \"code.\(path)\" does not match its entries (edited by hand?)")
            }
            code.append(pinned)
        }
        return PinLock(command: Command(path: commandPath, digest: commandDigest), code: code)
    }

    /// What `run` enforces, for the lock whose bytes have SHA-256 `lockDigest`.
    public func summary(lockDigest: String) -> PinSummary {
        PinSummary(lockDigest: lockDigest, command: command, code: code.map { PinSummary.Tree(path: $0.path, digest: $0.digest) })
    }

    static func isDigest(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count == 7 + 64 && bytes.starts(with: "sha256:".utf8)
            && bytes[7...].allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }
}

/// The part of a lock that `run` enforces: the command's digest and each code tree's digest
/// (the entries only serve to name the first differing file). Kept in the pin cache with the
/// SHA-256 of the lock's bytes, so that a warm `run` need not parse a large lock at all.
public struct PinSummary: Sendable, Equatable {
    public struct Tree: Sendable, Equatable {
        public var path: String
        public var digest: String

        public init(path: String, digest: String) {
            self.path = path
            self.digest = digest
        }
    }

    /// SHA-256 (hex) of the lock file's bytes.
    public var lockDigest: String
    public var command: PinLock.Command
    /// Sorted by path bytes, as in the lock.
    public var code: [Tree]

    public init(lockDigest: String, command: PinLock.Command, code: [Tree]) {
        self.lockDigest = lockDigest
        self.command = command
        self.code = code
    }

    /// `{"code":[[path,digest],...],"command":[path,digest],"lock":digest}`
    func encoded() -> [UInt8] {
        var w = JSONObjectWriter()
        w.field("code", .array(code.map { .array([.string($0.path), .string($0.digest)]) }))
        w.field("command", .array([.string(command.path), .string(command.digest)]))
        w.field("lock", lockDigest)
        return w.finish()
    }

    init?(decoding bytes: some Collection<UInt8>) {
        guard case .object(let object)? = try? JSONParser.parse(bytes),
            let lock = object["lock"]?.stringValue,
            let command = object["command"]?.arrayValue, command.count == 2,
            let commandPath = command[0].stringValue, let commandDigest = command[1].stringValue,
            let trees = object["code"]?.arrayValue
        else { return nil }
        var code: [Tree] = []
        for tree in trees {
            guard let pair = tree.arrayValue, pair.count == 2, let path = pair[0].stringValue, let digest = pair[1].stringValue
            else { return nil }
            code.append(Tree(path: path, digest: digest))
        }
        self.init(lockDigest: lock, command: PinLock.Command(path: commandPath, digest: commandDigest), code: code)
    }
}
