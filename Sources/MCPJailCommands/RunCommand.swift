import ArgumentParser
import FoundationEssentials
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
        throw ExitCode(Self.execute(name: name, profiles: profileOptions.profiles))
    }

    /// The run itself: `mcpjail run`'s exit status (failures reported on stderr, 1).
    /// `namespaces`: a namespace holder the caller started; nil, one is started here. The
    /// jail's namespaces are made while the profile is read and the session prepared
    /// (NamespaceHolder); a holder that could not start is reported by the spawn itself.
    static func execute(name: String, profiles: String?, namespaces: NamespaceHolder? = nil) -> Int32 {
        let namespaces = namespaces ?? (try? NamespaceHolder.start())
        let environment = ProcessEnvironment.current()
        let logger = makeLogger(environment: environment)
        do {
            let store = ProfileStore.resolve(explicit: profiles, environment: environment)
            let profile = try store.load(name)
            let state = StateDirectory.resolve(environment: environment, isRoot: geteuid() == 0)
            let session = Session(
                profile: profile, state: state, spawner: JailSpawner(stateDirectory: state.path, namespaces: namespaces),
                logger: logger, clientEnvironment: environment)
            return try session.run()
        } catch {
            return reportFailure(error).rawValue
        }
    }

    /// The usual shapes of this command, read without ArgumentParser: `run NAME`, with
    /// `--profiles DIR` (or `--profiles=DIR`) before or after NAME. Every client start runs
    /// `mcpjail run`, and ArgumentParser's parse of it cost 2.4 ms (its reflection over the
    /// command's properties) of a start-up budget of a few milliseconds. Anything else
    /// (help, a value that looks like an option, an unknown option, a missing name) is
    /// left to ArgumentParser: nil.
    static func quickArguments(_ arguments: [String]) -> (name: String, profiles: String?)? {
        var name: String? = nil
        var profiles: String? = nil
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--profiles", profiles == nil, index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
                profiles = arguments[index + 1]
                index += 2
                continue
            }
            if argument.hasPrefix("--profiles="), profiles == nil, argument.count > "--profiles=".count {
                profiles = String(argument.dropFirst("--profiles=".count))
            } else if argument.hasPrefix("-") || name != nil {
                return nil
            } else {
                name = argument
            }
            index += 1
        }
        return name.map { ($0, profiles) }
    }
}
