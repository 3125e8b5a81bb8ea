import ArgumentParser
import Foundation
import Glibc
import MCPJailCore
import MCPJailLinux

/// `mcpjail run NAME`: what an MCP client launches instead of the server.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start the server a profile names and relay its stdio, checking every message.",
        discussion: """
            Loads NAME.toml from the profile directory, refuses if there is none (the profiles \
            are the allowlist), starts the server and carries newline-delimited JSON-RPC between \
            this process's stdin/stdout and the server. Invalid JSON, batches and oversize \
            lines are answered with JSON-RPC errors and never reach the server; the server's \
            stderr goes to its log in the state directory; every request is written to the \
            hash-chained audit log. Exits with the server's exit status (128+N if killed by \
            signal N) and leaves no process behind.

            Examples:
              mcpjail run time
              mcpjail run git --profiles ./profiles
              {"command": "mcpjail", "args": ["run", "time"]}   # in an MCP client's config
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Argument(help: "The profile name: NAME.toml in the profile directory.")
    var name: String

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let logger = makeLogger(environment: environment)
        let status: Int32
        do {
            let profile = try profileOptions.store().load(name)
            let state = StateDirectory.resolve(environment: environment, isRoot: geteuid() == 0)
            let session = Session(profile: profile, state: state, spawner: JailSpawner(stateDirectory: state.path), logger: logger)
            status = try session.run()
        } catch {
            throw reportFailure(error)
        }
        throw ExitCode(status)
    }
}
