import CMCPJailShims
import FoundationEssentials
import Glibc
import MCPJailCore

/// A pinned profile's lock, read and checked against the profile before anything starts;
/// the files themselves are verified in the jail (``PinVerifier/verify(_:inJailRoot:now:)``).
public struct PinCheck: Sendable {
    public var profileName: String
    /// What the lock pins: the command's and each tree's digest.
    public var summary: PinSummary
    /// The lock file and its bytes, decoded only to name the first differing file.
    var lockPath: String
    var lockBytes: [UInt8]
    /// Digests of files by identity (the state directory's pin cache): only files whose
    /// inode, size, mode, mtime or ctime differ from these are read.
    var known: PinCache
}

/// How much work one verification did.
public struct PinStatistics: Sendable, Equatable {
    /// Entries (files, directories, links) under the code paths.
    public var entries = 0
    /// Regular files under the code paths.
    public var files = 0
    /// Files actually read and hashed (the others were known by identity), and their bytes.
    public var hashedFiles = 0
    public var hashedBytes = 0
}

/// The outcome of a verification that passed: the work done, and the pin cache to keep
/// (nil when it did not change).
public struct PinVerification: Sendable {
    public var statistics: PinStatistics
    public var updatedCache: PinCache?
}

/// `mcpjail pin` and the pin check of `mcpjail run`.
///
/// What the lock covers: the file `[server] command` leads to (links followed, as exec
/// does) and every entry under each `[server] code` path (see ``TreeEntry``: paths, kinds,
/// modes, contents, link targets).
///
/// How `run` checks: before anything starts it reads the lock and checks that it pins
/// this profile's command and code paths (``prepare(_:state:)``). The files are verified
/// once the jail's file system is complete (every bind, tmpfs and pivot_root done, the
/// root read-only) and before anything of the server runs: through an fd of the jail's
/// root that its first process hands over (``verify(_:inJailRoot:now:)``), resolving every
/// path as the jail does and opening every file relative to its directory's fd with
/// `O_NOFOLLOW`. So the check sees exactly the files the server's exec will find, a file
/// changed or swapped at any time before it (renamed over, written in place, a link or
/// directory replaced, a mount over part of the code) is caught, and the server starts only
/// if every digest matches. Only files whose identity is not in the state directory's pin
/// cache are read (a warm check of a 5,000-file venv reads none).
///
/// After the check: the binds are read-only for the server but stay live views of the
/// host's files, which whoever may write them on the host (root, their owner) could change
/// between the check and the exec, or while the server runs and imports lazily. With a
/// ``CodeWatch`` (as `run` passes), every directory the check depends on is armed before it
/// is read, so such a change refuses the start or stops the session. Pinned code should be
/// writable only by whoever reviews it; the jail never gives the server write access to it
/// (`code` may not overlap `read_write`).
public enum PinVerifier {
    // MARK: mcpjail pin

    /// Hashes the command and every code path on the host, trusting no cache. Returns the
    /// lock and a cache of what was hashed (for the first `run` to start warm).
    /// `now` (seconds since the epoch) decides which files are too fresh to cache.
    public static func pin(
        _ profile: Profile, now: Int64 = wallSeconds()
    ) throws(MCPJailError) -> (lock: PinLock, cache: PinCache, statistics: PinStatistics) {
        var scanner = TreeScanner(known: { _ in nil })
        defer { scanner.release() }
        let (command, trees) = try scan(
            command: profile.server.command, code: profile.server.code, profileName: profile.name, scanner: &scanner,
            open: hostOpen, place: "", entries: true)
        var cache = PinCache()
        for file in scanner.files { cache.record(file.identity, digest: file.digest, now: now) }
        let code = trees.map { PinLock.Code(path: $0.path, entries: $0.entries) }
        let lock = PinLock(command: PinLock.Command(path: profile.server.command, digest: command), code: code)
        return (lock, cache, statistics(scanner))
    }

    // MARK: mcpjail run

    /// What `run` does before anything starts: nil for a profile with `pinned = false`;
    /// otherwise reads `NAME.lock` (its summary from the pin cache when the lock's bytes
    /// are the ones last verified) and checks it pins this profile's command and code.
    ///
    /// - Throws: `.notPinned` without a lock or with a lock of other paths, `.invalidLock`.
    public static func prepare(_ profile: Profile, state: StateDirectory) throws(MCPJailError) -> PinCheck? {
        guard profile.server.pinned else { return nil }
        let (lockPath, lockBytes) = try readLock(for: profile)
        return try prepare(profile, lockPath: lockPath, lockBytes: lockBytes, cache: PinCache.load(path: state.pinCache(profile.name)))
    }

    /// ``prepare(_:state:)`` with the lock and the cache passed in.
    public static func prepare(
        _ profile: Profile, lockPath: String, lockBytes: [UInt8], cache: PinCache
    ) throws(MCPJailError) -> PinCheck {
        let digest = SHA256Hex.digest(lockBytes)
        let summary: PinSummary
        if let cached = cache.lock, cached.lockDigest == digest {
            summary = cached
        } else {
            summary = try PinLock.decode(lockBytes, file: lockPath).summary(lockDigest: digest)
        }
        try checkCoverage(summary, of: profile, lockPath: lockPath)
        return PinCheck(profileName: profile.name, summary: summary, lockPath: lockPath, lockBytes: lockBytes, known: cache)
    }

    /// Verifies the files as the jail sees them: `root` is an fd of the jail's root
    /// directory (from its first process, after its last mount); paths resolve inside it,
    /// absolute links included.
    ///
    /// - Throws: `.pinMismatch` naming the first differing file (or the command).
    /// With `watch`, every directory the check depends on is armed before it is read (see
    /// ``CodeWatch``), so that a change after this point is noticed.
    public static func verify(
        _ check: PinCheck, inJailRoot root: Int32, watch: CodeWatch? = nil, now: Int64 = wallSeconds()
    ) throws(MCPJailError) -> PinVerification {
        if let watch {
            watch.armPath(check.summary.command.path, inRoot: root)
            for code in check.summary.code { watch.armPath(code.path, inRoot: root) }
        }
        return try verify(
            check, open: { path, flags in mcpjail_openat_in_root(root, path, flags) }, place: " in the jail", watch: watch, now: now)
    }

    /// Verifies the files as the host sees them (`mcpjail pin --check`, and tests).
    public static func verifyOnHost(_ check: PinCheck, now: Int64 = wallSeconds()) throws(MCPJailError) -> PinVerification {
        try verify(check, open: hostOpen, place: "", watch: nil, now: now)
    }

    /// `NAME.lock` beside the profile, decoded in full and checked against the profile's
    /// command and code paths.
    public static func loadLock(for profile: Profile) throws(MCPJailError) -> PinLock {
        let (path, bytes) = try readLock(for: profile)
        let lock = try PinLock.decode(bytes, file: path)
        try checkCoverage(lock.summary(lockDigest: ""), of: profile, lockPath: path)
        return lock
    }

    /// The path and bytes of `NAME.lock` beside the profile.
    static func readLock(for profile: Profile) throws(MCPJailError) -> (path: String, bytes: [UInt8]) {
        let path = PinLock.path(forProfileAt: profile.path, name: profile.name)
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw MCPJailError(
                .notPinned,
                exists
                    ? "profile '\(profile.name)' is pinned but its lock \(path) cannot be read"
                    : "profile '\(profile.name)' is pinned but has no lock: \(path) does not exist",
                hint: "review the server, then run `mcpjail pin \(profile.name)`; or set [server] pinned = false to run it unverified")
        }
        return (path, [UInt8](data))
    }

    // MARK: the parts

    private static func hostOpen(_ path: String, _ flags: Int32) -> Int32 { Glibc.open(path, flags) }

    private static func verify(
        _ check: PinCheck, open: (String, Int32) -> Int32, place: String, watch: CodeWatch?, now: Int64
    ) throws(MCPJailError) -> PinVerification {
        let known = check.known
        var scanner = TreeScanner(known: { known.digest(of: $0) })
        scanner.watch = watch
        defer { scanner.release() }
        let (command, trees) = try scan(
            command: check.summary.command.path, code: check.summary.code.map(\.path), profileName: check.profileName,
            scanner: &scanner, open: open, place: place, entries: false)
        try compare(command: command, code: trees, with: check, open: open, place: place)
        // Every file known by its identity, for the same lock: the cache stays as it is (it
        // may hold files since removed; they cost nothing but bytes, and go at the next change).
        let changed = scanner.hashedFiles > 0 || known.lock != check.summary
        var verified: PinCache? = nil
        if changed {
            var cache = PinCache()
            cache.lock = check.summary
            for file in scanner.files { cache.record(file.identity, digest: file.digest, now: now) }
            verified = cache
        }
        return PinVerification(statistics: statistics(scanner), updatedCache: verified)
    }

    /// One code path as scanned: its digest, how many entries and files, and (when asked
    /// for) the entries themselves.
    struct ScannedTree {
        var path: String
        var digest: String
        var entries: [TreeEntry]
    }

    /// The command's digest and every code tree, through `open` (the host's or the jail's).
    private static func scan(
        command commandPath: String, code codePaths: [String], profileName: String, scanner: inout TreeScanner,
        open: (String, Int32) -> Int32, place: String, entries: Bool
    ) throws(MCPJailError) -> (command: String, code: [ScannedTree]) {
        func failure(_ path: String, _ message: String) -> MCPJailError {
            MCPJailError(.pinMismatch, "cannot verify the pins of '\(profileName)'\(place): \(path): \(message)")
        }
        let flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
        let commandFD = open(commandPath, flags)
        guard commandFD >= 0 else { throw failure(commandPath, TreeScanner.reason(errno)) }
        defer { Glibc.close(commandFD) }
        let command: String
        do {
            command = "sha256:" + (try scanner.digest(of: commandFD, path: commandPath)).digest
        } catch {
            throw failure(commandPath, error.message)
        }
        var code: [ScannedTree] = []
        for path in codePaths {
            code.append(try scanTree(path, profileName: profileName, scanner: &scanner, open: open, place: place, entries: entries))
        }
        return (command, code.sorted { TreeEntry.precedes($0.path, $1.path) })
    }

    private static func scanTree(
        _ path: String, profileName: String, scanner: inout TreeScanner, open: (String, Int32) -> Int32, place: String,
        entries: Bool
    ) throws(MCPJailError) -> ScannedTree {
        func failure(_ path: String, _ message: String) -> MCPJailError {
            MCPJailError(.pinMismatch, "cannot verify the pins of '\(profileName)'\(place): \(path): \(message)")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw failure(path, TreeScanner.reason(errno)) }
        defer { Glibc.close(fd) }
        do {
            let (digest, list) = try scanner.scan(root: fd, entries: entries)
            return ScannedTree(path: path, digest: digest, entries: list)
        } catch {
            throw failure(PinDifference(path: error.path, expected: nil, found: nil).absolutePath(under: path), error.message)
        }
    }

    /// The lock must pin exactly the profile's command and code paths.
    private static func checkCoverage(_ lock: PinSummary, of profile: Profile, lockPath: String) throws(MCPJailError) {
        let pinnedPaths = lock.code.map(\.path)
        let profilePaths = profile.server.code.sorted { TreeEntry.precedes($0, $1) }
        let sameCode = pinnedPaths.count == profilePaths.count
            && zip(pinnedPaths, profilePaths).allSatisfy { TreeEntry.samePath($0, $1) }
        guard TreeEntry.samePath(lock.command.path, profile.server.command), sameCode else {
            let what = !TreeEntry.samePath(lock.command.path, profile.server.command)
                ? "it pins the command \(lock.command.path), the profile runs \(profile.server.command)"
                : "it pins the code paths \(pinnedPaths), the profile names \(profilePaths)"
            throw MCPJailError(
                .notPinned, "the lock \(lockPath) is for another version of profile '\(profile.name)': \(what)",
                hint: "review the server, then run `mcpjail pin \(profile.name)`")
        }
    }

    /// The first difference from the lock, as the user's one line.
    private static func compare(
        command: String, code: [ScannedTree], with check: PinCheck, open: (String, Int32) -> Int32, place: String
    ) throws(MCPJailError) {
        let lock = check.summary
        let name = check.profileName
        let hint = "review the change; if it is wanted, run `mcpjail pin \(name)` to pin the new version"
        if command != lock.command.digest {
            throw MCPJailError(
                .pinMismatch,
                "refusing to start '\(name)': its command differs from its pin\(place): \(lock.command.path): expected \(brief(lock.command.digest)), found \(brief(command))",
                hint: hint)
        }
        for (found, expected) in zip(code, lock.code) where found.digest != expected.digest {
            // Only now are the entries needed, the lock's and the tree's: to name the first
            // differing file. (Read again: if it no longer differs, the tree changed meanwhile.)
            let entries = try PinLock.decode(check.lockBytes, file: check.lockPath).code
                .first { TreeEntry.samePath($0.path, expected.path) }?.entries ?? []
            var scanner = TreeScanner(known: { check.known.digest(of: $0) })
            defer { scanner.release() }
            let again = try scanTree(expected.path, profileName: name, scanner: &scanner, open: open, place: place, entries: true)
            let differences = TreeDigest.differences(expected: entries, found: again.entries)
            guard let first = differences.first else {
                throw MCPJailError(.pinMismatch, "refusing to start '\(name)': its pinned code changed while it was verified\(place): \(expected.path)", hint: hint)
            }
            let more = differences.count > 1 ? " (and \(differences.count - 1) more difference\(differences.count > 2 ? "s" : ""))" : ""
            throw MCPJailError(
                .pinMismatch,
                "refusing to start '\(name)': its pinned code changed\(place): \(first.absolutePath(under: expected.path)): \(first)\(more)",
                hint: hint)
        }
    }

    /// `sha256:0a1b2c3d4e5f…`
    static func brief(_ digest: String) -> String {
        String(digest.prefix(7 + 12)) + "…"
    }

    private static func statistics(_ scanner: TreeScanner) -> PinStatistics {
        PinStatistics(
            entries: scanner.entryCount, files: scanner.files.count - 1,
            hashedFiles: scanner.hashedFiles, hashedBytes: scanner.hashedBytes)
    }

    /// Seconds since the epoch (the clock file times are set from).
    public static func wallSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }
}
