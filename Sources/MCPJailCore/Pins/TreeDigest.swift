import Crypto

/// The digest of a whole tree, and where two trees first differ.
///
/// The tree digest is `sha256:` and the SHA-256 (lowercase hex) of the bytes
/// `mcpjail-tree-v1` NUL, then for every entry in byte order of its path: the path, NUL, the
/// value (see ``TreeEntry``), NUL. Paths, targets and values never contain NUL, so the
/// encoding is unambiguous: two trees have the same digest only if they have the same
/// paths, kinds, modes, contents and link targets. Owners, timestamps and extended
/// attributes are not part of it (they differ between machines that hold the same code).
public enum TreeDigest {
    /// What the hashed bytes start with (the version of this definition).
    public static let domain: [UInt8] = Array("mcpjail-tree-v1".utf8) + [0]

    /// The digest of `entries`, which must be sorted (``sorted(_:)``).
    public static func of(_ entries: [TreeEntry]) -> String {
        var bytes = domain
        bytes.reserveCapacity(entries.reduce(domain.count) { $0 + $1.path.utf8.count + $1.value.utf8.count + 2 })
        for entry in entries {
            bytes.append(contentsOf: entry.path.utf8)
            bytes.append(0)
            bytes.append(contentsOf: entry.value.utf8)
            bytes.append(0)
        }
        return "sha256:" + SHA256Hex.digest(bytes)
    }

    /// `entries` in byte order of their paths (as they are, when they already are: a tree
    /// read back from a lock is).
    public static func sorted(_ entries: [TreeEntry]) -> [TreeEntry] {
        var inOrder = true
        var index = 1
        while inOrder && index < entries.count {
            inOrder = TreeEntry.precedes(entries[index - 1].path, entries[index].path)
            index += 1
        }
        return inOrder ? entries : entries.sorted { TreeEntry.precedes($0.path, $1.path) }
    }

    /// Every path where `found` differs from `expected` (both sorted), in path order.
    public static func differences(expected: [TreeEntry], found: [TreeEntry]) -> [PinDifference] {
        var out: [PinDifference] = []
        var (i, j) = (0, 0)
        while i < expected.count || j < found.count {
            if j == found.count || (i < expected.count && TreeEntry.precedes(expected[i].path, found[j].path)) {
                out.append(PinDifference(path: expected[i].path, expected: expected[i].value, found: nil))
                i += 1
            } else if i == expected.count || TreeEntry.precedes(found[j].path, expected[i].path) {
                out.append(PinDifference(path: found[j].path, expected: nil, found: found[j].value))
                j += 1
            } else {
                if !expected[i].value.utf8.elementsEqual(found[j].value.utf8) {
                    out.append(PinDifference(path: expected[i].path, expected: expected[i].value, found: found[j].value))
                }
                i += 1
                j += 1
            }
        }
        return out
    }
}

/// One path where the files differ from their pins.
public struct PinDifference: Sendable, Equatable, CustomStringConvertible {
    /// Relative to its code path (`.` for the code path itself).
    public var path: String
    /// The lock's value; nil when the path is not in the lock (a new file).
    public var expected: String?
    /// What is there now; nil when the path is gone.
    public var found: String?

    public init(path: String, expected: String?, found: String?) {
        self.path = path
        self.expected = expected
        self.found = found
    }

    /// `expected file mode 0644 sha256:0a1b2c3d4e5f…, found file mode 0644 sha256:9f8e7d6c5b4a…`
    public var description: String {
        switch (expected, found) {
        case (nil, let found?): "not pinned (a new \(TreeEntry.brief(found)))"
        case (let expected?, nil): "missing (expected \(TreeEntry.brief(expected)))"
        default: "expected \(TreeEntry.brief(expected)), found \(TreeEntry.brief(found))"
        }
    }

    /// The path under `root`, for messages: `/srv/mcp/time/lib/x.py`.
    public func absolutePath(under root: String) -> String {
        if path == "." { return root }
        return root == "/" ? "/" + path : root + "/" + path
    }
}

/// SHA-256 of a file's contents, fed in pieces as they are read (`sha256:` + hex is the
/// command's digest; the bare hex is a file entry's).
public struct ContentHasher {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    /// 64 lowercase hex digits.
    public func hexDigest() -> String {
        SHA256Hex.hex(hasher.finalize())
    }
}
