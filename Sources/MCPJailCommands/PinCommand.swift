import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailLinux

/// `mcpjail pin NAME`: writes `NAME.lock`, the digests `mcpjail run NAME` verifies.
struct Pin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Pin a server's command and code: write NAME.lock beside NAME.toml.",
        discussion: """
            Hashes the file [server] command runs (links followed) and every file, directory \
            and link under the [server] code paths (a venv, a package directory): sorted \
            relative paths, modes, contents (SHA-256) and link targets. Writes them as \
            NAME.lock (JSON, sorted keys) beside the profile; pinning unchanged files again \
            writes the same bytes. Review the server first: the lock says "this is the \
            version we trust".

            `mcpjail run NAME` then verifies the pins before the server starts, on the files \
            the jail will see, and refuses on any difference, naming the first differing \
            file. A profile without a lock does not run unless it says
            pinned = false in [server].

            It then starts the server jailed, lists its tools and writes NAME.tools.lock:             each tool's reviewed definition (name, description, schemas, annotations), the             server's instructions and serverInfo. The relay withholds a tool whose definition             changes later (`mcpjail diff` shows how, `mcpjail approve` accepts it). Texts that             look like prompt injections are listed as findings. --no-tools skips this step.

            Examples:
              mcpjail pin time                        # write time.lock beside time.toml
              mcpjail pin time --check                # verify against time.lock; write nothing
              mcpjail pin git --profiles ./profiles   # a profile from a given directory
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Flag(help: "Verify the files against the existing lock (hashing everything) instead of writing it; exit 1 on a difference.")
    var check = false

    @Flag(help: "Pin the files only; do not start the server to pin its tool definitions.")
    var noTools = false

    @Argument(help: ArgumentHelp("The profile to pin: NAME.toml in the profile directory.", valueName: "name"))
    var name: String

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let state = StateDirectory.resolve(environment: environment, isRoot: geteuid() == 0)
        try output(store: profileOptions.store(), state: state).emit()
    }

    func output(store: ProfileStore, state: StateDirectory?) -> ProfileCommandOutput {
        do {
            let profile = try store.load(name)
            return try check ? verify(profile) : pin(profile, state: state)
        } catch {
            return ProfileCommandOutput.failure(error)
        }
    }

    private func pin(_ profile: Profile, state: StateDirectory?) throws(MCPJailError) -> ProfileCommandOutput {
        let lockPath = PinLock.path(forProfileAt: profile.path, name: profile.name)
        var (lock, cache, statistics) = try PinVerifier.pin(profile)
        let bytes = lock.encoded()
        cache.lock = lock.summary(lockDigest: SHA256Hex.digest(bytes))
        let previous = FileManager.default.contents(atPath: lockPath).map { [UInt8]($0) }
        var lines: [String] = []
        if previous == bytes {
            lines.append("\(lockPath): unchanged")
        } else {
            do {
                try FileContents.replace(lockPath, with: bytes, mode: 0o644)
            } catch {
                throw MCPJailError(.io, "cannot write \(lockPath): \(error)")
            }
            lines.append("\(lockPath): \(previous == nil ? "written" : "updated")\(Self.changeSummary(previous: previous, lockPath: lockPath, new: lock))")
        }
        lines.append("  command  \(lock.command.path)  \(lock.command.digest)")
        for tree in lock.code {
            let files = tree.entries.count(where: { $0.value.hasPrefix("f ") })
            lines.append("  code     \(tree.path)  \(tree.digest)  (\(tree.entries.count) entries, \(files) files)")
        }
        lines.append("  \(statistics.hashedFiles) files hashed (\(Self.megabytes(statistics.hashedBytes)))")
        if !profile.server.pinned {
            lines.append("note: \(profile.path) says [server] pinned = false: `mcpjail run \(profile.name)` does not verify this lock until that line is removed")
        }
        // The first run starts warm; a state directory that cannot be written only costs hashing then.
        if let state { try? cache.save(path: state.pinCache(profile.name)) }
        if profile.server.pinned, !noTools, let state {
            let tools = try ToolListing.observe(profile: profile, state: state)
            lines += try Self.writeToolLock(tools, for: profile)
        }
        return ProfileCommandOutput(stdout: lines.joined(separator: "\n") + "\n")
    }

    /// Writes NAME.tools.lock; the lines report it and any injection findings.
    static func writeToolLock(_ lock: ToolLock, for profile: Profile) throws(MCPJailError) -> [String] {
        let path = ToolLock.path(forProfileAt: profile.path, name: profile.name)
        let previous = FileManager.default.contents(atPath: path).map { [UInt8]($0) }
        let bytes = lock.encoded()
        var lines: [String] = []
        if previous == bytes {
            lines.append("\(path): unchanged (\(lock.tools.count) tools)")
        } else {
            do {
                try FileContents.replace(path, with: bytes, mode: 0o644)
            } catch {
                throw MCPJailError(.io, "cannot write \(path): \(error)")
            }
            lines.append("\(path): \(previous == nil ? "written" : "updated") (\(lock.tools.count) tools: \(lock.tools.keys.sorted().joined(separator: ", ")))")
        }
        for name in lock.tools.keys.sorted() {
            for finding in InjectionScanner.scan(tool: lock.tools[name]!) {
                lines.append("  warning: tool \(name): \(finding)")
            }
        }
        return lines
    }

    private func verify(_ profile: Profile) throws(MCPJailError) -> ProfileCommandOutput {
        let lockPath = PinLock.path(forProfileAt: profile.path, name: profile.name)
        guard let bytes = FileManager.default.contents(atPath: lockPath).map({ [UInt8]($0) }) else {
            throw MCPJailError(.notPinned, "\(lockPath) does not exist", hint: "run `mcpjail pin \(profile.name)` to write it")
        }
        // No cache: every file is read and hashed.
        let check = try PinVerifier.prepare(profile, lockPath: lockPath, lockBytes: bytes, cache: PinCache())
        let statistics = try PinVerifier.verifyOnHost(check).statistics
        let paths = check.summary.code.count
        return ProfileCommandOutput(
            stdout: "\(lockPath): the command and \(statistics.entries) entries under \(paths) code path\(paths == 1 ? "" : "s") match\n")
    }

    /// ` (3 entries changed, the first lib/x.py)` against the lock being replaced.
    static func changeSummary(previous: [UInt8]?, lockPath: String, new: PinLock) -> String {
        guard let previous, let old = try? PinLock.decode(previous, file: lockPath) else { return "" }
        var count = 0
        var first: String? = nil
        if old.command != new.command {
            count += 1
            first = new.command.path
        }
        let oldTrees = Dictionary(old.code.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for tree in new.code {
            let differences = TreeDigest.differences(expected: oldTrees[tree.path]?.entries ?? [], found: tree.entries)
            count += differences.count
            if first == nil, let difference = differences.first { first = difference.absolutePath(under: tree.path) }
        }
        guard count > 0 else { return "" }
        return " (\(count) entr\(count == 1 ? "y" : "ies") changed, the first \(first ?? "?"))"
    }

    static func megabytes(_ bytes: Int) -> String {
        let tenths = Int((Double(bytes) / 100_000).rounded())
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}
