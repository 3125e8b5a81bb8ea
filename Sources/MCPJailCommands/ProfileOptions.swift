import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore

/// `--profiles DIR`, shared by every command that reads profiles.
struct ProfileOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The profile directory, holding NAME.toml per allowed server (default: $MCPJAIL_PROFILES, else ~/.config/mcpjail/profiles, then /etc/mcpjail/profiles).",
            valueName: "dir"))
    var profiles: String?

    /// The directories to search, from `--profiles`, the environment, or the defaults.
    func store() -> ProfileStore {
        store(environment: ProcessInfo.processInfo.environment)
    }

    func store(environment: [String: String]) -> ProfileStore {
        ProfileStore.resolve(explicit: profiles, environment: environment)
    }

    /// Whether the directory was chosen on purpose (`--profiles` or `$MCPJAIL_PROFILES`)
    /// rather than by default; a generated client config must then name it.
    func isExplicit(environment: [String: String]) -> Bool {
        if let profiles, !profiles.isEmpty { return true }
        if let fromEnvironment = environment["MCPJAIL_PROFILES"], !fromEnvironment.isEmpty { return true }
        return false
    }
}

/// What a profile command produced: stdout text, stderr text and the exit status. The
/// commands compute one of these (which tests check directly) and `emit()` it.
struct ProfileCommandOutput: Equatable {
    var stdout = ""
    var stderr = ""
    var status: Int32 = 0

    /// Writes both streams; throws `ExitCode` for a non-zero status.
    func emit() throws {
        if !stdout.isEmpty { writeStandardOutput(stdout) }
        if !stderr.isEmpty { writeStandardError(stderr) }
        if status != 0 { throw ExitCode(status) }
    }

    /// The stderr report of a profile that could not be loaded: the no-profile line, or
    /// `mcpjail: invalid profile FILE:` followed by one line per problem.
    static func failure(_ error: any Error) -> ProfileCommandOutput {
        switch error {
        case let error as MCPJailError:
            return ProfileCommandOutput(stderr: error.description + "\n", status: 1)
        case let error as ProfileError:
            return ProfileCommandOutput(stderr: error.mcpjailError.description + "\n", status: 1)
        default:
            return ProfileCommandOutput(stderr: "mcpjail: \(error)\n", status: 1)
        }
    }
}
