/// Where mcpjail keeps what no jail may see: the audit log, server stderr logs, the
/// idempotency database and (later) the run registry.
///
/// `$XDG_STATE_HOME/mcpjail` (default `~/.local/state/mcpjail`) for an ordinary user,
/// `/var/lib/mcpjail` for root. `$MCPJAIL_STATE_DIR` overrides both (tests use it).
public struct StateDirectory: Sendable, Equatable {
    public var path: String

    public init(path: String) { self.path = path }

    /// Resolves the directory from the environment and the effective uid.
    public static func resolve(environment: [String: String], isRoot: Bool) -> StateDirectory {
        if let explicit = environment["MCPJAIL_STATE_DIR"], !explicit.isEmpty {
            return StateDirectory(path: explicit)
        }
        if isRoot { return StateDirectory(path: "/var/lib/mcpjail") }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            return StateDirectory(path: xdg + "/mcpjail")
        }
        let home = environment["HOME"] ?? "/"
        return StateDirectory(path: (home == "/" ? "" : home) + "/.local/state/mcpjail")
    }

    /// The hash-chained audit log, JSON Lines.
    public var auditLog: String { path + "/audit.jsonl" }
    /// The idempotency database (SQLite), shared by every `mcpjail run` of the user.
    public var idempotencyDatabase: String { path + "/idempotency.sqlite" }
    /// One file per running `mcpjail run` (`mcpjail ps`).
    public var sessions: String { path + "/sessions" }
    /// The directory of per-server stderr logs.
    public var serverLogs: String { path + "/logs" }
    /// The size-capped stderr log of one server.
    public func serverLog(_ name: String) -> String { serverLogs + "/" + name + ".stderr.log" }
    /// The directory of pin caches (digests of pinned files by inode and times).
    public var pinCaches: String { path + "/pins-cache" }
    /// The pin cache of one profile (see ``PinCache``).
    public func pinCache(_ name: String) -> String { pinCaches + "/" + name + ".bin" }
    /// The tool definitions the last session of NAME saw (a ``ToolLock``), for `mcpjail
    /// pin`, `diff` and `approve`.
    public var toolsSeenDirectory: String { path + "/tools-seen" }
    public func toolsSeen(_ name: String) -> String { toolsSeenDirectory + "/" + name + ".json" }
}
