import FoundationEssentials
import Glibc

/// What `stat` says about a file: enough to tell that it has not changed since it was hashed.
///
/// Any write to a file's contents changes its mtime and ctime, any rename over it gives the
/// path a different inode, and any chmod, chown, link or `touch` (even one that sets the
/// mtime back) changes its ctime, which no unprivileged process can set.
public struct FileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// `st_mode`, type bits included.
    public var mode: UInt32
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64
    public var ctimeSeconds: Int64
    public var ctimeNanoseconds: Int64

    public init(
        device: UInt64, inode: UInt64, size: Int64, mode: UInt32, mtimeSeconds: Int64, mtimeNanoseconds: Int64,
        ctimeSeconds: Int64, ctimeNanoseconds: Int64
    ) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mode = mode
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
        self.ctimeSeconds = ctimeSeconds
        self.ctimeNanoseconds = ctimeNanoseconds
    }

    public init(_ info: stat) {
        self.init(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size), mode: UInt32(info.st_mode),
            mtimeSeconds: Int64(info.st_mtim.tv_sec), mtimeNanoseconds: Int64(info.st_mtim.tv_nsec),
            ctimeSeconds: Int64(info.st_ctim.tv_sec), ctimeNanoseconds: Int64(info.st_ctim.tv_nsec))
    }

    /// What `stat(path)` says (symlinks followed); nil when it fails.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }
}

/// Digests of files by their ``FileIdentity``, so that verifying a tree re-hashes only what
/// changed. Kept per profile in the state directory (`pins-cache/NAME.bin`).
///
/// An entry is used only when every field of the identity is the same: device, inode,
/// size, mode, mtime and ctime, to the nanosecond. A file changed within the same clock tick
/// as it was hashed could keep both times (timestamps are coarse on older kernels), so a
/// file whose mtime or ctime is within ``racyWindowSeconds`` of the moment it was hashed is
/// never cached ("racily clean", as git calls it): it is hashed again next time.
///
/// The cache is as trusted as the lock: whoever can write it could vouch for changed files.
/// It lives in the state directory, which no jail can see.
public struct PinCache: Sendable {
    struct Key: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    struct Entry {
        var identity: FileIdentity
        /// 64 lowercase hex digits.
        var digest: String
    }

    private var entries: [Key: Entry] = [:]
    /// The summary of the lock these files were last verified against.
    public var lock: PinSummary?

    /// Files changed less than this long before they were hashed are not cached.
    public static let racyWindowSeconds: Int64 = 2

    public init() {}

    public var count: Int { entries.count }

    /// The digest recorded for exactly this identity, if any.
    public func digest(of identity: FileIdentity) -> String? {
        guard let entry = entries[Key(device: identity.device, inode: identity.inode)], entry.identity == identity else {
            return nil
        }
        return entry.digest
    }

    /// Records `digest` for `identity`, unless the file changed too recently before `now`
    /// (seconds since the epoch, taken before the file was read). Returns whether it did.
    @discardableResult
    public mutating func record(_ identity: FileIdentity, digest: String, now: Int64) -> Bool {
        let key = Key(device: identity.device, inode: identity.inode)
        guard !Self.isRacy(identity, now: now) else {
            entries[key] = nil
            return false
        }
        entries[key] = Entry(identity: identity, digest: digest)
        return true
    }

    static func isRacy(_ identity: FileIdentity, now: Int64) -> Bool {
        max(identity.mtimeSeconds, identity.ctimeSeconds) >= now - racyWindowSeconds
    }

    // MARK: the file

    /// `MCPJPIN2`; the length (little-endian 64 bits) and JSON of the lock's ``PinSummary``
    /// (0 for none); then per entry 8 little-endian 64-bit fields (device, inode, size, mode,
    /// mtime s, mtime ns, ctime s, ctime ns) and the 32 bytes of the digest.
    static let magic: [UInt8] = Array("MCPJPIN2".utf8)
    static let recordSize = 8 * 8 + 32

    public func encoded() -> [UInt8] {
        var out = Self.magic
        let summary = lock?.encoded() ?? []
        out.reserveCapacity(Self.magic.count + 8 + summary.count + entries.count * Self.recordSize)
        withUnsafeBytes(of: UInt64(summary.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: summary)
        // Sorted, so that equal caches are equal files.
        for (key, entry) in entries.sorted(by: { ($0.key.device, $0.key.inode) < ($1.key.device, $1.key.inode) }) {
            let id = entry.identity
            for field in [
                key.device, key.inode, UInt64(bitPattern: id.size), UInt64(id.mode), UInt64(bitPattern: id.mtimeSeconds),
                UInt64(bitPattern: id.mtimeNanoseconds), UInt64(bitPattern: id.ctimeSeconds), UInt64(bitPattern: id.ctimeNanoseconds),
            ] {
                withUnsafeBytes(of: field.littleEndian) { out.append(contentsOf: $0) }
            }
            out.append(contentsOf: Self.bytes(ofHex: entry.digest))
        }
        return out
    }

    /// A cache read from `bytes`; anything unreadable gives an empty cache (it only costs
    /// re-hashing).
    public init(decoding bytes: [UInt8]) {
        guard bytes.count >= Self.magic.count + 8, bytes.starts(with: Self.magic) else { return }
        let summaryLength = bytes.withUnsafeBytes { raw in
            Int(truncatingIfNeeded: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: Self.magic.count, as: UInt64.self)))
        }
        let recordsStart = Self.magic.count + 8 + summaryLength
        guard summaryLength >= 0, summaryLength <= bytes.count - Self.magic.count - 8,
            (bytes.count - recordsStart) % Self.recordSize == 0
        else { return }
        if summaryLength > 0 {
            guard let summary = PinSummary(decoding: bytes[(Self.magic.count + 8)..<recordsStart]) else { return }
            lock = summary
        }
        bytes.withUnsafeBytes { raw in
            var offset = recordsStart
            func next() -> UInt64 {
                defer { offset += 8 }
                return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            }
            entries.reserveCapacity((bytes.count - offset) / Self.recordSize)
            while offset < raw.count {
                let device = next(), inode = next()
                let identity = FileIdentity(
                    device: device, inode: inode, size: Int64(bitPattern: next()), mode: UInt32(truncatingIfNeeded: next()),
                    mtimeSeconds: Int64(bitPattern: next()), mtimeNanoseconds: Int64(bitPattern: next()),
                    ctimeSeconds: Int64(bitPattern: next()), ctimeNanoseconds: Int64(bitPattern: next()))
                let digest = Self.hex(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 32)]))
                offset += 32
                entries[Key(device: device, inode: inode)] = Entry(identity: identity, digest: digest)
            }
        }
    }

    /// The cache at `path`; empty when there is none or it cannot be read.
    public static func load(path: String) -> PinCache {
        guard let data = FileManager.default.contents(atPath: path) else { return PinCache() }
        return PinCache(decoding: [UInt8](data))
    }

    /// Writes the cache to `path` atomically (a temporary file renamed over it), creating
    /// its directory (mode 0700) when needed.
    public func save(path: String) throws(MCPJailError) {
        let directory = PathSyntax.directoryName(path)
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileContents.replace(path, with: encoded(), mode: 0o600)
        } catch {
            throw MCPJailError(.io, "cannot write the pin cache \(path): \(error)")
        }
    }

    static func bytes(ofHex hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var high: UInt8? = nil
        for c in hex.utf8 {
            let v: UInt8 = c >= UInt8(ascii: "a") ? c - UInt8(ascii: "a") + 10 : c - UInt8(ascii: "0")
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return out.count == 32 ? out : [UInt8](repeating: 0, count: 32)
    }

    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            digits.withUTF8Buffer { table in
                for (i, byte) in bytes.enumerated() {
                    out[2 * i] = table[Int(byte >> 4)]
                    out[2 * i + 1] = table[Int(byte & 0x0F)]
                }
            }
            return bytes.count * 2
        }
    }
}
