import ArgumentParser
import Glibc
import FoundationEssentials
import MCPJailCore

/// `mcpjail check NAME`: validate a profile and print the effective policy.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a profile and print its effective policy, every default filled in.",
        discussion: """
            Loads NAME.toml from the profile directory and checks all of it: unknown keys, \
            wrong types, relative paths, '..' components, sizes, durations, and whether the \
            server's command exists and is executable. A valid profile prints the policy that \
            `mcpjail run NAME` would enforce (as TOML, which is itself a valid profile, or as \
            JSON) and exits 0. An invalid one prints every problem on stderr, one per line as \
            FILE:LINE: KEY.PATH: message, and exits 1. Every key is documented in \
            profiles/REFERENCE.toml.

            Examples:
              mcpjail check time                      # the effective policy of time.toml
              mcpjail check time --json               # the same, as JSON
              mcpjail check git --profiles ./profiles # a profile from a given directory
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Flag(help: "Print the policy (or the problems) as JSON.")
    var json = false

    @Argument(help: ArgumentHelp("The profile to check: NAME.toml in the profile directory.", valueName: "name"))
    var name: String

    /// Who the server runs as in its jail, as comments (the output stays a valid profile).
    static func identityNote(isRoot: Bool, uid: uid_t) -> String {
        if isRoot {
            return "\n# jail identity: the server runs as nobody (uid 65534, gid 65534), supplementary groups dropped\n"
        }
        return "\n# jail identity: the server runs as your own uid \(uid); as an ordinary user mcpjail cannot drop\n"
            + "# your supplementary groups (only root can): files your groups may read stay readable if bound\n"
    }

    /// Whether `run` will find the pins it needs, as a comment. (The files themselves are
    /// verified by `run`, and by `mcpjail pin NAME --check`.)
    static func pinNote(_ profile: Profile) -> String {
        let path = PinLock.path(forProfileAt: profile.path, name: profile.name)
        let data = FileManager.default.contents(atPath: path)
        guard profile.server.pinned else {
            let ignored = data == nil ? "" : " (\(profile.name).lock exists and is ignored)"
            return "# pins: NOT VERIFIED: [server] pinned = false\(ignored)\n"
        }
        guard let data else {
            return "# pins: no \(profile.name).lock: `mcpjail run \(profile.name)` refuses to start until `mcpjail pin \(profile.name)`\n"
        }
        do {
            let lock = try PinLock.decode([UInt8](data), file: path)
            let entries = lock.code.reduce(0) { $0 + $1.entries.count }
            let paths = "\(lock.code.count) code path\(lock.code.count == 1 ? "" : "s")"
            return "# pins: \(path) (format \(PinLock.format)): the command and \(paths) (\(entries) entries), verified by run before exec\n"
        } catch {
            return "# pins: \(error.message): `mcpjail run \(profile.name)` refuses to start\n"
        }
    }

    /// Whether tool definitions are pinned, and the injection findings in the pinned texts.
    static func toolPinNote(_ profile: Profile) -> String {
        let path = ToolLock.path(forProfileAt: profile.path, name: profile.name)
        let lock: ToolLock?
        do {
            lock = try ToolLock.load(forProfileAt: profile.path, name: profile.name)
        } catch {
            return "# tool pins: \(error.message): `mcpjail run \(profile.name)` refuses to start\n"
        }
        guard let lock else {
            return "# tool pins: none (no \(profile.name).tools.lock): tool definitions are not checked; `mcpjail pin \(profile.name)` records them\n"
        }
        guard profile.server.pinned else { return "# tool pins: NOT CHECKED: [server] pinned = false (\(path) is ignored)\n" }
        var text = "# tool pins: \(path): \(lock.tools.count) tools; a new or changed tool is withheld until `mcpjail approve \(profile.name)`\n"
        for name in lock.tools.keys.sorted() {
            for finding in InjectionScanner.scan(tool: lock.tools[name]!) { text += "# finding: tool \(name): \(finding)\n" }
        }
        return text
    }

    func run() async throws {
        try output(store: profileOptions.store()).emit()
    }

    func output(store: ProfileStore, isRoot: Bool = geteuid() == 0, uid: uid_t = getuid()) -> ProfileCommandOutput {
        do {
            let profile = try store.load(name)
            if json { return ProfileCommandOutput(stdout: profile.effectiveJSON() + "\n") }
            return ProfileCommandOutput(
                stdout: profile.effectiveTOML() + Self.identityNote(isRoot: isRoot, uid: uid) + Self.pinNote(profile)
                    + Self.toolPinNote(profile))
        } catch let error as ProfileError {
            var result = ProfileCommandOutput.failure(error)
            if json {
                result.stdout = Profile.prettyJSON(InvalidReport(name: name, path: error.file, problems: error.problems)) + "\n"
            }
            return result
        } catch {
            return ProfileCommandOutput.failure(error)
        }
    }

    /// `--json` output for an invalid profile.
    private struct InvalidReport: Encodable {
        var name: String
        var path: String
        var valid = false
        var problems: [ProfileProblem]
    }
}
