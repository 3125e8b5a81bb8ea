/// One path of a pinned tree, as `mcpjail pin` records it in the lock and `mcpjail run`
/// compares it.
///
/// `path` is relative to the code path (`.` for the code path itself, `lib/x.py` below it).
/// `value` says what is there, in the lock's spelling:
/// - `f MODE SHA256`: a regular file; MODE is its permission bits (setuid, setgid and sticky
///   included) as four octal digits, SHA256 the lowercase hex digest of its contents;
/// - `d MODE`: a directory;
/// - `l TARGET`: a symlink, by its target as written (never followed).
///
/// Paths and targets are compared byte for byte (their UTF-8), never by Swift's `String`
/// equality, which treats canonically equivalent spellings (NFC and NFD) as equal although
/// the file system holds them as two different names.
public struct TreeEntry: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var value: String

    public init(path: String, value: String) {
        self.path = path
        self.value = value
    }

    public static func file(_ path: String, mode: UInt32, sha256: String) -> TreeEntry {
        TreeEntry(path: path, value: "f \(octal(mode)) \(sha256)")
    }

    public static func directory(_ path: String, mode: UInt32) -> TreeEntry {
        TreeEntry(path: path, value: "d \(octal(mode))")
    }

    public static func symlink(_ path: String, target: String) -> TreeEntry {
        TreeEntry(path: path, value: "l \(target)")
    }

    /// The permission bits as four octal digits: `0644`, `4755`.
    public static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Whether `value` is spelled as one of the three kinds (a lock read from disk is checked
    /// with this, so that a hand-edited entry is an error rather than a silent mismatch).
    public static func isWellFormed(value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 3, bytes[1] == UInt8(ascii: " ") else { return false }
        func isMode(_ slice: ArraySlice<UInt8>) -> Bool {
            slice.count == 4 && slice.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
        }
        switch bytes[0] {
        case UInt8(ascii: "d"):
            return bytes.count == 6 && isMode(bytes[2..<6])
        case UInt8(ascii: "f"):
            return bytes.count == 7 + 64 && isMode(bytes[2..<6]) && bytes[6] == UInt8(ascii: " ")
                && bytes[7...].allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
        case UInt8(ascii: "l"):
            return bytes.count > 2 && !bytes.contains(0)
        default:
            return false
        }
    }

    /// `value` for a message: a file's digest shortened to its first 12 hex digits.
    public static func brief(_ value: String?) -> String {
        guard let value else { return "nothing" }
        let bytes = Array(value.utf8)
        if bytes.first == UInt8(ascii: "f"), bytes.count == 7 + 64 {
            let mode = String(decoding: bytes[2..<6], as: UTF8.self)
            let digest = String(decoding: bytes[7..<19], as: UTF8.self)
            return "file mode \(mode) sha256:\(digest)…"
        }
        if bytes.first == UInt8(ascii: "d"), bytes.count == 6 {
            return "directory mode \(String(decoding: bytes[2..<6], as: UTF8.self))"
        }
        if bytes.first == UInt8(ascii: "l"), bytes.count > 2 {
            return "symlink to \(String(decoding: bytes[2...], as: UTF8.self))"
        }
        return value
    }

    public var description: String { "\(path): \(value)" }

    public static func == (lhs: TreeEntry, rhs: TreeEntry) -> Bool {
        compareBytes(lhs.path, rhs.path) == 0 && compareBytes(lhs.value, rhs.value) == 0
    }

    public func hash(into hasher: inout Hasher) {
        for byte in path.utf8 { hasher.combine(byte) }
        hasher.combine(0 as UInt8)
        for byte in value.utf8 { hasher.combine(byte) }
    }

    /// Byte order of the paths' UTF-8: the one order of the lock and of the tree digest.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        compareBytes(a, b) < 0
    }

    public static func samePath(_ a: String, _ b: String) -> Bool {
        compareBytes(a, b) == 0
    }

    /// -1, 0 or 1 as `a`'s UTF-8 bytes sort before, equal or after `b`'s. (On the strings'
    /// contiguous storage: the generic `utf8.lexicographicallyPrecedes` was most of the
    /// time a warm verification of a 5,000-file tree took.)
    @inline(__always)
    static func compareBytes(_ a: String, _ b: String) -> Int {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in compare(x, y) }
        }
        if let fast, let result = fast { return result }
        return compare(Array(a.utf8), Array(b.utf8))
    }

    @inline(__always)
    private static func compare(_ x: some RandomAccessCollection<UInt8>, _ y: some RandomAccessCollection<UInt8>) -> Int {
        var (i, j) = (x.startIndex, y.startIndex)
        while i != x.endIndex && j != y.endIndex {
            let (p, q) = (x[i], y[j])
            if p != q { return p < q ? -1 : 1 }
            i = x.index(after: i)
            j = y.index(after: j)
        }
        return i == x.endIndex ? (j == y.endIndex ? 0 : -1) : 1
    }
}
