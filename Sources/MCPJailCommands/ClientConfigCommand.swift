import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import SystemPackage

/// `mcpjail client-config CLIENT NAME`: the snippet that points a client at `mcpjail run NAME`.
struct ClientConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-config",
        abstract: "Print the config snippet that points an MCP client at `mcpjail run NAME`.",
        discussion: """
            Prints the entry in the client's own format; merge it into the client's config \
            file:
              claude   Claude Desktop, claude_desktop_config.json ("mcpServers", JSON)
              vscode   VS Code, .vscode/mcp.json ("servers", JSON)
              cursor   Cursor, ~/.cursor/mcp.json or .cursor/mcp.json ("mcpServers", JSON)
              codex    Codex, ~/.codex/config.toml ([mcp_servers.NAME], TOML)
            The command is the absolute path of this mcpjail binary, so the client finds it \
            without PATH; a profile directory given with --profiles or $MCPJAIL_PROFILES is \
            passed on as --profiles. NAME must have a valid profile.

            Examples:
              mcpjail client-config claude time       # Claude Desktop entry for time.toml
              mcpjail client-config vscode git        # .vscode/mcp.json entry for git.toml
              mcpjail client-config codex time --profiles ./profiles
            """)

    enum Client: String, CaseIterable, ExpressibleByArgument {
        case claude, vscode, cursor, codex
    }

    @OptionGroup var profileOptions: ProfileOptions

    @Argument(help: ArgumentHelp("The client: claude, vscode, cursor or codex.", valueName: "client"))
    var client: Client

    @Argument(help: ArgumentHelp("The profile the client should run.", valueName: "name"))
    var name: String

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try output(
            store: profileOptions.store(environment: environment),
            passProfileDirectory: profileOptions.isExplicit(environment: environment),
            executable: Self.currentExecutable()
        ).emit()
    }

    func output(store: ProfileStore, passProfileDirectory: Bool, executable: String) -> ProfileCommandOutput {
        let profile: Profile
        do {
            profile = try store.load(name)
        } catch {
            return ProfileCommandOutput.failure(error)
        }
        var args = ["run"]
        if passProfileDirectory {
            // The directory the profile was found in, already absolute.
            let directory = FilePath(profile.path).removingLastComponent().string
            args += ["--profiles", directory]
        }
        args.append(name)
        return ProfileCommandOutput(stdout: Self.snippet(client: client, name: name, command: executable, args: args))
    }

    /// The snippet for one client. JSON is pretty-printed with sorted keys.
    static func snippet(client: Client, name: String, command: String, args: [String]) -> String {
        switch client {
        case .claude, .cursor:
            return Profile.prettyJSON(["mcpServers": [name: StdioServer(type: nil, command: command, args: args)]]) + "\n"
        case .vscode:
            return Profile.prettyJSON(["servers": [name: StdioServer(type: "stdio", command: command, args: args)]]) + "\n"
        case .codex:
            return """
                [mcp_servers.\(TOMLText.key(name))]
                command = \(TOMLText.string(command))
                args = [\(args.map(TOMLText.string).joined(separator: ", "))]

                """
        }
    }

    private struct StdioServer: Encodable {
        var type: String?
        var command: String
        var args: [String]
    }

    /// The absolute path of the running mcpjail, when this process is mcpjail; else
    /// `mcpjail`, found on the client's PATH.
    static func currentExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
            path.hasPrefix("/"), FilePath(path).lastComponent?.string == "mcpjail"
        {
            return path
        }
        return "mcpjail"
    }
}
