import Foundation
import Glibc
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux

/// Pinning and verifying real trees on disk: determinism, what the digest covers, the cache
/// and its invalidation, and a file swapped between the host check and the jail's.
@Suite("Pins on disk")
struct PinVerifierTests {
    /// A server tree in a fresh temporary directory, and a profile pinning it.
    final class Tree {
        let root: String
        var code: String { root + "/srv" }
        var command: String { code + "/bin/server" }

        init() throws {
            root = NSTemporaryDirectory() + "mcpjail-pin-tests-" + UUID().uuidString
            try write("srv/bin/server", "#!/bin/sh\nexit 0\n", mode: 0o755)
            try write("srv/lib/a.py", "print('a')\n")
            try write("srv/lib/b.py", "print('b')\n")
            try write("srv/lib/sub/c.txt", String(repeating: "c", count: 100_000))
            try write("outside.txt", "not part of the code\n")
            try FileManager.default.createSymbolicLink(atPath: root + "/srv/lib/link", withDestinationPath: "../../outside.txt")
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }

        func write(_ relative: String, _ text: String, mode: Int = 0o644) throws {
            let path = root + "/" + relative
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }

        var profile: Profile {
            Profile(
                name: "t", path: root + "/t.toml", digest: "d",
                server: Profile.Server(command: command, code: [code]))
        }

        func pin(now: Int64 = PinVerifier.wallSeconds()) throws(MCPJailError) -> PinLock {
            try PinVerifier.pin(profile, now: now).lock
        }

        /// What `run` checks, here through the host's root.
        func check(_ lock: PinLock, cache: PinCache = PinCache(), profile: Profile? = nil) throws(MCPJailError) -> PinCheck {
            try PinVerifier.prepare(
                profile ?? self.profile, lockPath: root + "/t.lock", lockBytes: lock.encoded(), cache: cache)
        }

        @discardableResult
        func verify(_ lock: PinLock, cache: PinCache = PinCache(), now: Int64 = PinVerifier.wallSeconds()) throws(MCPJailError) -> PinVerification {
            try PinVerifier.verifyOnHost(check(lock, cache: cache), now: now)
        }
    }

    /// Far enough ahead that no file of the test counts as freshly changed (racily clean).
    static let later = PinVerifier.wallSeconds() + 3600

    @Test("pinning twice gives the same bytes")
    func deterministic() throws {
        let tree = try Tree()
        let first = try tree.pin().encoded()
        let second = try tree.pin().encoded()
        #expect(first == second)
        let lock = try tree.pin()
        #expect(lock.code.count == 1)
        #expect(lock.code[0].entries.map(\.path) == [".", "bin", "bin/server", "lib", "lib/a.py", "lib/b.py", "lib/link", "lib/sub", "lib/sub/c.txt"])
        #expect(lock.command.path == tree.command)
    }

    @Test("the walk writes its manifest in byte order of the paths, with no sort of the whole tree")
    func manifestOrder() throws {
        let tree = try Tree()
        // Names that sort before "." at the top, between "a" and "a/..." ('-' < '/'), after
        // it ('0' > '/'), hidden ones, and non-ASCII.
        for name in ["-x", "a/inner", "a-b", "a0", ".hidden", "caf\u{E9}/x", "cafe\u{301}", "b", " space"] {
            try tree.write("srv/" + name, "x")
        }
        try FileManager.default.createDirectory(atPath: tree.code + "/a/deeper/-y", withIntermediateDirectories: true)
        var scanner = TreeScanner(known: { _ in nil })
        defer { scanner.release() }
        let fd = open(tree.code, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        let (digest, entries) = try scanner.scan(root: fd, entries: true)
        #expect(entries == TreeDigest.sorted(entries), "\(entries.map(\.path))")
        #expect(digest == TreeDigest.of(TreeDigest.sorted(entries)))
        #expect(entries.first?.path == " space")
        #expect(entries.map(\.path).contains("a-b") && entries.map(\.path).contains("a/deeper/-y"))
        let (again, none) = try scanner.scan(root: fd, entries: false)
        #expect(again == digest && none.isEmpty)
    }

    @Test("symlinks are pinned by their target, never followed")
    func symlinksByTarget() throws {
        let tree = try Tree()
        let before = try tree.pin()
        #expect(before.code[0].entries.contains(.symlink("lib/link", target: "../../outside.txt")))
        // What the link points to is not code: changing it changes nothing.
        try tree.write("outside.txt", "changed\n")
        #expect(try tree.pin() == before)
        // Pointing the link elsewhere does.
        try FileManager.default.removeItem(atPath: tree.code + "/lib/link")
        try FileManager.default.createSymbolicLink(atPath: tree.code + "/lib/link", withDestinationPath: "/etc/passwd")
        let after = try tree.pin()
        #expect(after.code[0].digest != before.code[0].digest)
        #expect(TreeDigest.differences(expected: before.code[0].entries, found: after.code[0].entries).map(\.path) == ["lib/link"])
    }

    @Test("a mode change is a difference")
    func modesMatter() throws {
        let tree = try Tree()
        let before = try tree.pin()
        #expect(chmod(tree.code + "/lib/a.py", 0o4755) == 0)
        let after = try tree.pin()
        let differences = TreeDigest.differences(expected: before.code[0].entries, found: after.code[0].entries)
        #expect(differences.map(\.path) == ["lib/a.py"])
        #expect(differences.first?.found?.hasPrefix("f 4755 ") == true)
    }

    @Test("the command is hashed through its links, as exec runs it")
    func commandFollowsLinks() throws {
        let tree = try Tree()
        let lock = try tree.pin()
        try FileManager.default.createSymbolicLink(atPath: tree.root + "/run-server", withDestinationPath: tree.command)
        var profile = tree.profile
        profile.server.command = tree.root + "/run-server"
        let viaLink = try PinVerifier.pin(profile).lock
        #expect(viaLink.command.digest == lock.command.digest)
        #expect(viaLink.command.path == tree.root + "/run-server")
    }

    @Test("a warm check reads no file; a same-size, same-mtime rewrite is still caught by its ctime")
    func cacheInvalidation() throws {
        let tree = try Tree()
        var (lock, cache, cold) = try PinVerifier.pin(tree.profile, now: Self.later)
        cache.lock = lock.summary(lockDigest: SHA256Hex.digest(lock.encoded()))
        #expect(cold.hashedFiles == 5)  // the command, then the tree's four files
        #expect(cache.count == 4)  // the command is also bin/server: one inode
        let warm = try tree.verify(lock, cache: cache, now: Self.later)
        #expect(warm.statistics.hashedFiles == 0)
        #expect(warm.updatedCache == nil)

        // Same size, and the old mtime put back: only the ctime (which nobody can set) moves.
        let path = tree.code + "/lib/a.py"
        var before = stat()
        stat(path, &before)
        try tree.write("srv/lib/a.py", "print('A')\n")
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        var after = stat()
        stat(path, &after)
        #expect(after.st_size == before.st_size)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        #expect(after.st_ctim.tv_sec != before.st_ctim.tv_sec || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec)

        do throws(MCPJailError) {
            try tree.verify(lock, cache: cache, now: Self.later)
            Issue.record("a changed file passed the check")
        } catch {
            #expect(error.code == .pinMismatch)
            #expect(error.message.contains("\(path): expected file mode 0644 sha256:"), "\(error.message)")
            #expect(error.hint?.contains("mcpjail pin t") == true)
        }
    }

    @Test("a cache entry for an older identity of the file is never trusted")
    func staleCacheEntry() throws {
        let tree = try Tree()
        let lock = try tree.pin()
        // A cache that vouches for lib/b.py as it was, with its digest...
        let (_, cache, _) = try PinVerifier.pin(tree.profile, now: Self.later)
        // ...then b.py is replaced (new inode) by different contents.
        try tree.write("srv/lib/b.new", "print('evil')\n")
        #expect(rename(tree.code + "/lib/b.new", tree.code + "/lib/b.py") == 0)
        #expect(throws: MCPJailError.self) { try tree.verify(lock, cache: cache, now: Self.later) }
    }

    @Test("through a root fd, as in the jail: a file swapped after it was cached is read again")
    func swapAfterCaching() throws {
        let tree = try Tree()
        let lock = try tree.pin(now: Self.later)
        let (_, cache, _) = try PinVerifier.pin(tree.profile, now: Self.later)
        var withSummary = cache
        withSummary.lock = lock.summary(lockDigest: SHA256Hex.digest(lock.encoded()))
        let check = try tree.check(lock, cache: withSummary)
        // The host's root stands in for the jail's: paths resolve the same way.
        let root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(root) }
        let warm = try PinVerifier.verify(check, inJailRoot: root, now: Self.later)
        #expect(warm.statistics.hashedFiles == 0)
        #expect(warm.updatedCache == nil)

        // Renamed over with other contents: refused, naming the file.
        try tree.write("srv/lib/a.new", "print('evil')\n")
        #expect(rename(tree.code + "/lib/a.new", tree.code + "/lib/a.py") == 0)
        do throws(MCPJailError) {
            _ = try PinVerifier.verify(check, inJailRoot: root)
            Issue.record("a swapped file passed the check")
        } catch {
            #expect(error.code == .pinMismatch)
            #expect(error.message.contains("changed in the jail: \(tree.code)/lib/a.py: expected"), "\(error.message)")
        }

        // Renamed over with the verified contents (a new inode): read again, and it passes.
        try tree.write("srv/lib/a.new", "print('a')\n")
        #expect(rename(tree.code + "/lib/a.new", tree.code + "/lib/a.py") == 0)
        let again = try PinVerifier.verify(check, inJailRoot: root)
        #expect(again.statistics.hashedFiles == 1)
        #expect(again.updatedCache != nil)
    }

    @Test("a lock's summary comes from the cache only for the very same lock bytes")
    func summaryFromCache() throws {
        let tree = try Tree()
        let lock = try tree.pin()
        var cache = PinCache()
        cache.lock = PinSummary(lockDigest: SHA256Hex.digest(lock.encoded()), command: lock.command, code: [])
        // The cached summary (here: no code paths) is used for these bytes...
        #expect(throws: MCPJailError.self) { try tree.check(lock, cache: cache) }
        // ...and ignored for any other bytes.
        cache.lock?.lockDigest = String(repeating: "0", count: 64)
        #expect(try tree.check(lock, cache: cache).summary.code.count == 1)
    }

    @Test("a new file, a missing one and a replaced command are each named")
    func differencesAreNamed() throws {
        let tree = try Tree()
        let lock = try tree.pin()
        try tree.write("srv/lib/new.py", "")
        #expect(throws: MCPJailError.self) { try tree.verify(lock) }
        do throws(MCPJailError) {
            try tree.verify(lock)
        } catch {
            #expect(error.message.contains("\(tree.code)/lib/new.py: not pinned (a new file mode 0644"), "\(error.message)")
        }
        try FileManager.default.removeItem(atPath: tree.code + "/lib/new.py")
        try FileManager.default.removeItem(atPath: tree.code + "/lib/b.py")
        do throws(MCPJailError) {
            try tree.verify(lock)
            Issue.record("a missing file passed")
        } catch {
            #expect(error.message.contains("\(tree.code)/lib/b.py: missing (expected file mode 0644"), "\(error.message)")
        }
        try tree.write("srv/lib/b.py", "print('b')\n")
        try tree.write("srv/bin/server", "#!/bin/sh\nexit 1\n", mode: 0o755)
        do throws(MCPJailError) {
            try tree.verify(lock)
            Issue.record("a changed command passed")
        } catch {
            #expect(error.message.contains("its command differs from its pin: \(tree.command): expected sha256:"), "\(error.message)")
        }
    }

    @Test("special files and names that are not UTF-8 cannot be pinned")
    func unpinnable() throws {
        let tree = try Tree()
        #expect(mkfifo(tree.code + "/lib/fifo", 0o644) == 0)
        #expect(throws: MCPJailError.self) { try tree.pin() }
        unlink(tree.code + "/lib/fifo")
        let name: [CChar] = Array((tree.code + "/lib/x").utf8CString.dropLast()).map { $0 } + [CChar(bitPattern: 0xFF), 0]
        let fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        close(fd)
        do throws(MCPJailError) {
            _ = try tree.pin()
            Issue.record("a non-UTF-8 name was pinned")
        } catch {
            #expect(error.message.contains("not valid UTF-8"))
        }
    }

    @Test("run needs a lock that covers exactly the profile's command and code")
    func lockCoverage() throws {
        let tree = try Tree()
        do throws(MCPJailError) {
            _ = try PinVerifier.loadLock(for: tree.profile)
            Issue.record("no lock, yet loaded")
        } catch {
            #expect(error.code == .notPinned)
            #expect(error.message == "profile 't' is pinned but has no lock: \(tree.root)/t.lock does not exist")
            #expect(error.hint == "review the server, then run `mcpjail pin t`; or set [server] pinned = false to run it unverified")
        }
        try Data(try tree.pin().encoded()).write(to: URL(fileURLWithPath: tree.root + "/t.lock"))
        #expect(try PinVerifier.loadLock(for: tree.profile).code.count == 1)
        var more = tree.profile
        more.server.code.append(tree.root + "/other")
        #expect(throws: MCPJailError.self) { try PinVerifier.loadLock(for: more) }
        // Unpinned: no lock is needed, and nothing is checked.
        var unpinned = tree.profile
        unpinned.server.pinned = false
        let state = StateDirectory(path: tree.root + "/state")
        #expect(try PinVerifier.prepare(unpinned, state: state) == nil)
        // Pinned: the lock is read and checked against the profile.
        let check = try #require(try PinVerifier.prepare(tree.profile, state: state))
        #expect(check.summary.code.map(\.path) == [tree.code])
        #expect(try PinVerifier.verifyOnHost(check).statistics.entries == 9)
    }
}

@Suite struct JailPlanCodeTests {
    @Test("code paths the profile does not bind are bound read-only")
    func codeIsBound() throws {
        let dir = NSTemporaryDirectory() + "jailplan-code-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/code", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let profile = Profile(
            name: "t", path: "/p/t.toml", digest: "d",
            server: Profile.Server(command: "/usr/bin/env", code: [dir + "/code", "/usr/lib"]),
            filesystem: Profile.Filesystem(readOnly: ["/usr"]))
        let plan = try JailPlan.make(for: profile, isRoot: true, uid: 0, gid: 0, stateDirectory: "/var/lib/mcpjail")
        #expect(plan.mounts.contains(.bind(source: dir + "/code", target: dir + "/code", writable: false, isDirectory: true)))
        // Already visible under /usr: no second bind.
        #expect(!plan.mounts.contains { $0.target == "/usr/lib" })
    }
}
