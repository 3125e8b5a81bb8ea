import Foundation
import Testing
@testable import MCPJailCore

@Suite("Pins: tree digest, lock format, cache")
struct PinLockTests {
    let hexA = String(repeating: "a", count: 64)
    let hexB = String(repeating: "b", count: 64)

    var tree: [TreeEntry] {
        [
            .directory(".", mode: 0o755),
            .file("bin/server", mode: 0o755, sha256: hexA),
            .directory("bin", mode: 0o755),
            .symlink("bin/python", target: "/usr/bin/python3"),
            .file("a-b", mode: 0o644, sha256: hexB),
        ]
    }

    @Test("entries are sorted by path bytes, so the digest does not depend on the order they were read in")
    func sortedOrderAndDeterminism() {
        let sorted = TreeDigest.sorted(tree)
        #expect(sorted.map(\.path) == [".", "a-b", "bin", "bin/python", "bin/server"])
        #expect(TreeDigest.of(sorted) == TreeDigest.of(TreeDigest.sorted(tree.reversed())))
        // Byte order, not a tree walk's order: "a-b" sorts before "a/b" ('-' < '/').
        let nested = TreeDigest.sorted([.directory("a", mode: 0o755), .directory("a/b", mode: 0o755), .directory("a-c", mode: 0o755)])
        #expect(nested.map(\.path) == ["a", "a-c", "a/b"])
    }

    @Test("modes, contents and link targets are all part of the digest")
    func everythingMatters() {
        let base = TreeDigest.of(TreeDigest.sorted(tree))
        var mode = tree
        mode[1] = .file("bin/server", mode: 0o644, sha256: hexA)
        var content = tree
        content[1] = .file("bin/server", mode: 0o755, sha256: hexB)
        var link = tree
        link[3] = .symlink("bin/python", target: "/usr/bin/python3.11")
        var kind = tree
        kind[3] = .file("bin/python", mode: 0o777, sha256: hexA)
        var renamed = tree
        renamed[4] = .file("a-c", mode: 0o644, sha256: hexB)
        let digests = [mode, content, link, kind, renamed].map { TreeDigest.of(TreeDigest.sorted($0)) }
        #expect(Set(digests + [base]).count == 6)
        #expect(TreeEntry.file("x", mode: 0o4755, sha256: hexA).value == "f 4755 \(hexA)")
    }

    @Test("NFC and NFD spellings of a name are two different paths")
    func namesAreBytes() {
        let nfc = TreeEntry.file("caf\u{E9}", mode: 0o644, sha256: hexA)
        let nfd = TreeEntry.file("cafe\u{301}", mode: 0o644, sha256: hexA)
        #expect(nfc != nfd)
        #expect(TreeDigest.of([nfc]) != TreeDigest.of([nfd]))
        #expect(TreeDigest.differences(expected: [nfc], found: [nfd]).count == 2)
    }

    @Test("differences name the first path that is changed, missing or new")
    func differences() {
        let expected = TreeDigest.sorted(tree)
        var found = expected
        found[4] = .file("bin/server", mode: 0o755, sha256: hexB)  // changed
        found.remove(at: 1)  // a-b missing
        found.append(.file("zzz", mode: 0o644, sha256: hexA))  // new
        let differences = TreeDigest.differences(expected: expected, found: TreeDigest.sorted(found))
        #expect(differences.map(\.path) == ["a-b", "bin/server", "zzz"])
        #expect(differences[0].found == nil && differences[2].expected == nil)
        #expect(differences[1].description == "expected file mode 0755 sha256:aaaaaaaaaaaa…, found file mode 0755 sha256:bbbbbbbbbbbb…")
        #expect(differences[1].absolutePath(under: "/srv/mcp") == "/srv/mcp/bin/server")
        #expect(PinDifference(path: ".", expected: nil, found: nil).absolutePath(under: "/srv/mcp") == "/srv/mcp")
    }

    var lock: PinLock {
        PinLock(
            command: PinLock.Command(path: "/srv/mcp/bin/server", digest: "sha256:" + hexA),
            code: [PinLock.Code(path: "/srv/mcp", entries: tree), PinLock.Code(path: "/opt/lib", entries: [.directory(".", mode: 0o755)])])
    }

    @Test("the lock is sorted JSON with a format version, and reads back to the same lock")
    func lockRoundTrip() throws {
        let bytes = lock.encoded()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("{\n  \"code\": {\n    \"/opt/lib\": {\n      \"digest\": \"sha256:"))
        #expect(text.hasSuffix("  \"command\": {\n    \"digest\": \"sha256:\(hexA)\",\n    \"path\": \"/srv/mcp/bin/server\"\n  },\n  \"format\": 1\n}\n"))
        #expect(text.contains("        \"bin/python\": \"l /usr/bin/python3\",\n"))
        // Any JSON reader agrees with it, keys sorted.
        let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        #expect(parsed?.keys.sorted() == ["code", "command", "format"])
        let decoded = try PinLock.decode(bytes, file: "t.lock")
        #expect(decoded == lock)
        #expect(decoded.encoded() == bytes)
        // Deterministic: the same input, the same bytes, whatever order it came in.
        let shuffled = PinLock(command: lock.command, code: lock.code.reversed())
        #expect(shuffled.encoded() == bytes)
    }

    @Test("a lock without code paths pins the command alone")
    func commandOnly() throws {
        let only = PinLock(command: lock.command, code: [])
        let text = String(decoding: only.encoded(), as: UTF8.self)
        #expect(text.contains("\"code\": {},"))
        #expect(try PinLock.decode(only.encoded(), file: "t.lock") == only)
    }

    @Test("another format, unknown keys, malformed entries and hand edits are refused", arguments: [
        ("\"format\": 1", "\"format\": 2", "format 2 is not one this mcpjail reads"),
        ("\"format\": 1", "\"format\": 1, \"tools\": {}", "unknown key \"tools\""),
        ("\"l /usr/bin/python3\"", "\"l /usr/bin/python4\"", "does not match its entries"),
        ("\"d 0755\"", "\"d 755\"", "is not \"f MODE SHA256\""),
        ("\"path\": \"/srv/mcp/bin/server\"", "\"path\": 7", "needs the strings"),
        ("{\n  \"code\"", "[{\n  \"code\"", "not JSON"),
    ])
    func refusals(original: String, replacement: String, message: String) {
        let text = String(decoding: lock.encoded(), as: UTF8.self)
        #expect(text.contains(original))
        let edited = Array(text.replacingOccurrences(of: original, with: replacement).utf8)
        do throws(MCPJailError) {
            _ = try PinLock.decode(edited, file: "t.lock")
            Issue.record("accepted an edited lock: \(replacement)")
        } catch {
            #expect(error.code == .invalidLock)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.hint?.contains("mcpjail pin") == true)
        }
    }

    @Test func lockSitsBesideTheProfile() {
        #expect(PinLock.path(forProfileAt: "/etc/mcpjail/profiles/time.toml", name: "time") == "/etc/mcpjail/profiles/time.lock")
        #expect(PinLock.path(forProfileAt: "/time.toml", name: "time") == "/time.lock")
    }

    // MARK: the cache

    func identity(inode: UInt64 = 7, size: Int64 = 10, mtime: Int64 = 1_000, ctime: Int64 = 1_000, ctimeNs: Int64 = 0) -> FileIdentity {
        FileIdentity(
            device: 1, inode: inode, size: size, mode: 0o100644, mtimeSeconds: mtime, mtimeNanoseconds: 0,
            ctimeSeconds: ctime, ctimeNanoseconds: ctimeNs)
    }

    @Test("the cache answers only for exactly the same identity")
    func cacheHits() {
        var cache = PinCache()
        let recorded1 = cache.record(identity(), digest: hexA, now: 10_000)
        #expect(recorded1)
        #expect(cache.digest(of: identity()) == hexA)
        #expect(cache.digest(of: identity(inode: 8)) == nil)  // another file (a rename over it)
        #expect(cache.digest(of: identity(size: 11)) == nil)
        #expect(cache.digest(of: identity(mtime: 1_001)) == nil)
        // Same size, same mtime (set back with utimes), new contents: only the ctime moved.
        #expect(cache.digest(of: identity(ctime: 1_000, ctimeNs: 1)) == nil)
    }

    @Test("files changed just before they were hashed are never cached")
    func racyFilesAreNotCached() {
        var cache = PinCache()
        let recorded2 = cache.record(identity(ctime: 9_999), digest: hexA, now: 10_000)
        #expect(!recorded2)
        #expect(cache.digest(of: identity(ctime: 9_999)) == nil)
        let recorded3 = cache.record(identity(mtime: 20_000, ctime: 5_000), digest: hexA, now: 10_000)
        #expect(!recorded3)  // mtime in the future
        let recorded4 = cache.record(identity(ctime: 9_997), digest: hexA, now: 10_000)
        #expect(recorded4)
    }

    @Test("the cache file round-trips, and a damaged one is simply empty")
    func cacheFile() {
        var cache = PinCache()
        cache.record(identity(), digest: hexA, now: 10_000)
        cache.record(identity(inode: 9), digest: hexB, now: 10_000)
        let bytes = cache.encoded()
        #expect(bytes.count == 8 + 8 + 2 * 96)  // magic, no lock summary, two records
        let read = PinCache(decoding: bytes)
        #expect(read.count == 2)
        #expect(read.digest(of: identity(inode: 9)) == hexB)
        #expect(read.encoded() == bytes)
        #expect(PinCache(decoding: Array(bytes.dropLast())).count == 0)
        #expect(PinCache(decoding: Array("garbage".utf8)).count == 0)
    }
}
