import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailLinux

/// `mcpjail ps`: the running sessions of this user.
struct Ps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List the running mcpjail sessions: server, pid, start time, profile digest.",
        discussion: """
            Reads the session registry in the state directory. A session that was killed \
            (SIGKILL) leaves its entry behind; an entry counts only while a process with its \
            pid and its recorded start time exists, and dead entries are removed.

            Examples:
              mcpjail ps                  # what runs now
              mcpjail ps --json           # the same, for scripts
            """)

    @Flag(help: "Print a JSON array of {session, server, pid, server_pid, started, profile, profile_digest}.")
    var json = false

    func run() async throws {
        let state = StateDirectory.resolve(environment: ProcessInfo.processInfo.environment, isRoot: geteuid() == 0)
        let entries = SessionRegistry(state: state).live()
        if json {
            print(Profile.prettyJSON(entries))
            return
        }
        if entries.isEmpty {
            print("no running sessions")
            return
        }
        let rows = [["SERVER", "PID", "STARTED", "PROFILE DIGEST", "SESSION"]]
            + entries.map { [$0.server, String($0.pid), $0.started, String($0.profileDigest.prefix(12)), $0.session] }
        print(List.columns(rows), terminator: "")
    }
}

/// `mcpjail revoke NAME`: moves the profile aside, which stops its running sessions.
struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a server: move NAME.toml aside and stop every running session of it.",
        discussion: """
            Renames NAME.toml to NAME.toml.revoked, with a first line saying when and why. New \
            `mcpjail run NAME` refuse at once; every running session notices within a second, \
            answers its requests in flight with server_revoked, tears its jail down and exits \
            with status 78. Reports how many sessions stopped. Removing or renaming the file \
            by any other means revokes the same way. To restore, move the file back.

            Examples:
              mcpjail revoke git --reason "CVE in mcp-server-git"
              mcpjail revoke time --profiles ./profiles
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Argument(help: "The profile name.")
    var name: String

    @Option(help: "Why, recorded in the moved file.")
    var reason: String = "no reason given"

    func run() async throws {
        let store = profileOptions.store()
        guard let path = store.locate(name) else { throw reportFailure(store.noProfile(name)) }
        let state = StateDirectory.resolve(environment: ProcessInfo.processInfo.environment, isRoot: geteuid() == 0)
        let registry = SessionRegistry(state: state)
        let running = registry.live().filter { $0.profile == path }
        let target = path + ".revoked"
        guard let original = FileManager.default.contents(atPath: path) else {
            throw reportFailure(MCPJailError(.io, "cannot read \(path)"))
        }
        let header = "# revoked \(AuditTime.format(Date().timeIntervalSince1970)) by uid \(geteuid()): "
            + reason.replacing("\n", with: " ") + "\n"
        guard FileManager.default.createFile(atPath: target + ".tmp", contents: Data(header.utf8) + original),
            rename(target + ".tmp", target) == 0
        else {
            unlink(target + ".tmp")
            throw reportFailure(MCPJailError(.io, "cannot write \(target)"))
        }
        guard unlink(path) == 0 else {
            let error = String(cString: strerror(errno))
            unlink(target)
            throw reportFailure(MCPJailError(.io, "cannot remove \(path): \(error)"))
        }
        // Wait (up to 3 s) for the running sessions to stop.
        let sessions = Set(running.map(\.session))
        var left = sessions
        for _ in 0..<60 where !left.isEmpty {
            usleep(50_000)
            left = sessions.intersection(registry.live().map(\.session))
        }
        print("revoked \(name): \(path) moved to \(target); stopped \(sessions.count - left.count) of \(sessions.count) running session\(sessions.count == 1 ? "" : "s")")
        if !left.isEmpty { throw reportFailure(MCPJailError(.internalError, "\(left.count) session(s) still running after 3 s")) }
    }
}
