import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailStore

/// The running `mcpjail run` sessions of this user, one JSON file each in the state
/// directory's `sessions/`, for `mcpjail ps` and `mcpjail revoke`.
///
/// A session removes its file when it ends; one killed with SIGKILL leaves it behind, so
/// readers never trust an entry blindly: it is live only if a process with its pid exists
/// *and* started at the recorded time (`/proc/PID/stat`), so a reused pid does not pass.
/// Dead entries are removed by whoever reads them, and so are the half-written files of
/// writers that died.
public struct SessionRegistry: Sendable {
    /// One running session.
    public struct Entry: Codable, Sendable, Equatable {
        public var session: String
        public var server: String
        /// The `mcpjail run` process, and its start time in clock ticks since boot.
        public var pid: Int32
        public var startTicks: UInt64
        public var bootID: String
        public var serverPID: Int32
        /// Wall-clock start, RFC 3339.
        public var started: String
        public var profile: String
        public var profileDigest: String

        enum CodingKeys: String, CodingKey {
            case session, server, pid, started, profile
            case startTicks = "start_ticks"
            case bootID = "boot_id"
            case serverPID = "server_pid"
            case profileDigest = "profile_digest"
        }

        /// The entry as `ps` decodes it. Written with JSONObjectWriter, not JSONEncoder:
        /// every `mcpjail run` registers itself, and JSONEncoder's first use has the runtime
        /// search every conformance record of the binary three times (~0.3 ms).
        func json() -> [UInt8] {
            var object = JSONObjectWriter()
            object.field(CodingKeys.session.rawValue, session)
            object.field(CodingKeys.server.rawValue, server)
            object.field(CodingKeys.pid.rawValue, Int(pid))
            object.field(CodingKeys.startTicks.rawValue, startTicks)
            object.field(CodingKeys.bootID.rawValue, bootID)
            object.field(CodingKeys.serverPID.rawValue, Int(serverPID))
            object.field(CodingKeys.started.rawValue, started)
            object.field(CodingKeys.profile.rawValue, profile)
            object.field(CodingKeys.profileDigest.rawValue, profileDigest)
            return object.finish()
        }
    }

    /// A registered session's file, removed at its end.
    public struct Registration: Sendable {
        let path: String
        public func remove() { unlink(path) }
    }

    let directory: String

    public init(state: StateDirectory) {
        directory = state.sessions
    }

    /// Registers the calling process's session; nil (and nothing registered) if the
    /// directory cannot be written, which only costs `ps` its view of this session.
    public func register(
        session: String, server: String, profilePath: String, profileDigest: String, serverPID: Int32
    ) -> Registration? {
        guard let me = try? ProcessOwner.current() else { return nil }
        let entry = Entry(
            session: session, server: server, pid: me.pid, startTicks: me.startTime, bootID: me.bootID,
            serverPID: serverPID, started: AuditTime.format(wallClockSeconds()), profile: profilePath,
            profileDigest: profileDigest)
        guard (try? FD.makeDirectories(directory, mode: 0o700)) != nil else { return nil }
        let path = directory + "/" + session + ".json"
        guard FD.replaceFile(path, with: entry.json(), mode: 0o600) else { return nil }
        return Registration(path: path)
    }

    /// The live sessions, oldest first; entries of dead sessions are removed.
    public func live() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var entries: [Entry] = []
        for name in names where name.hasSuffix(".tmp") {
            // FD.replaceFile's `SESSION.json.PID.tmp`, left by a writer that died between
            // writing and renaming it: removed once no process has that pid.
            let parts = name.split(separator: ".")
            if parts.count >= 3, let pid = Int32(parts[parts.count - 2]), pid > 0, kill(pid, 0) != 0, errno == ESRCH {
                unlink(directory + "/" + name)
            }
        }
        for name in names where name.hasSuffix(".json") {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { continue }  // gone meanwhile
            guard let entry = try? JSONDecoder().decode(Entry.self, from: data) else {
                // Entries appear whole (written beside, then renamed): this one was torn by a
                // crash (they are not fsynced) and names no session.
                unlink(path)
                continue
            }
            let owner = IdempotencyOwner(bootID: entry.bootID, pid: entry.pid, startTime: entry.startTicks)
            if ProcessLiveness().isAlive(owner) {
                entries.append(entry)
            } else {
                unlink(path)
            }
        }
        return entries.sorted { ($0.started, $0.session) < ($1.started, $1.session) }
    }
}
