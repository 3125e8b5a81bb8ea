import Glibc
import MCPJailCore

/// Reads a pinned tree (a `[server] code` path) into its ``TreeEntry`` list, through file
/// descriptors only.
///
/// The walk starts at an fd the caller opened (on the host, or inside the jail's root) and
/// opens every directory and file relative to its parent's fd with `O_NOFOLLOW`: a symlink
/// swapped in while it runs cannot lead it anywhere else, and what is hashed is the very
/// file that was stat'ed (its device and inode are checked again after opening). A file
/// whose identity is already known (``known``: a ``PinCache``) is not read at all; every
/// other regular file is hashed, and a file that changes while it is read is an error.
struct TreeScanner {
    /// Digests known by identity; nil means: hash it.
    let known: (FileIdentity) -> String?
    /// Every regular file met, with its digest (to build the next cache from).
    private(set) var files: [(identity: FileIdentity, digest: String)] = []
    /// How many files (and bytes) were actually read and hashed.
    private(set) var hashedFiles = 0
    private(set) var hashedBytes = 0
    private let buffer: UnsafeMutableRawBufferPointer

    init(known: @escaping (FileIdentity) -> String?) {
        self.known = known
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    }

    /// Frees the read buffer; the scanner cannot be used afterwards.
    func release() {
        buffer.deallocate()
    }

    /// The entries of the tree at `root` (an fd the caller keeps owning), in byte order of
    /// their paths (see ``walk(directory:prefix:into:)``; only a name that sorts before "."
    /// at the top, like "-x", leaves the order to ``TreeDigest/sorted(_:)`` to fix).
    mutating func scan(root: Int32) throws(TreeScanError) -> [TreeEntry] {
        var info = stat()
        guard fstat(root, &info) == 0 else { throw TreeScanError(path: ".", "cannot stat: \(Self.reason(errno))") }
        var entries: [TreeEntry] = []
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            entries.append(.directory(".", mode: info.st_mode))
            let fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw TreeScanError(path: ".", "cannot open: \(Self.reason(errno))") }
            try walk(directory: fd, prefix: [], into: &entries)
        case S_IFREG:
            let identity = Self.identity(info)
            let digest = try knownOrHashed(root, path: ".", identity: identity)
            files.append((identity, digest))
            entries.append(.file(".", mode: info.st_mode, sha256: digest))
        default:
            throw TreeScanError(path: ".", "is neither a directory nor a regular file")
        }
        return entries
    }

    /// The digest of the regular file `fd` (the caller keeps owning it) and its identity.
    mutating func digest(of fd: Int32, path: String) throws(TreeScanError) -> (identity: FileIdentity, digest: String) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw TreeScanError(path: path, "cannot stat: \(Self.reason(errno))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw TreeScanError(path: path, "is not a regular file") }
        let identity = Self.identity(info)
        let digest = try knownOrHashed(fd, path: path, identity: identity)
        files.append((identity, digest))
        return (identity, digest)
    }

    private mutating func knownOrHashed(_ fd: Int32, path: String, identity: FileIdentity) throws(TreeScanError) -> String {
        if let digest = known(identity) { return digest }
        return try hash(fd, path: path, expected: identity)
    }

    /// Adds the entries below the directory `fd` (consumed) whose path is `prefix`, in byte
    /// order of their paths.
    ///
    /// That order needs no sort of the whole tree: among siblings, a name's own entry sorts
    /// at the key `name` and everything below a directory at `name/` (no name holds a `/`),
    /// so sorting each directory's keys and expanding the `name/` ones in place gives the
    /// global order ("a", then "a-b", then "a/x", since '-' < '/').
    private mutating func walk(directory fd: Int32, prefix: [UInt8], into entries: inout [TreeEntry]) throws(TreeScanError) {
        let pathText = prefix.isEmpty ? "." : String(decoding: prefix, as: UTF8.self)
        guard let stream = fdopendir(fd) else {
            let code = errno
            Glibc.close(fd)
            throw TreeScanError(path: pathText, "cannot list: \(Self.reason(code))")
        }
        defer { closedir(stream) }
        let directoryFD = dirfd(stream)
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw TreeScanError(path: pathText, "cannot list: \(Self.reason(errno))") }
                break
            }
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        // Every child's own entry, and for a directory the key its contents sort at.
        var items: [(key: [UInt8], child: Int, isContents: Bool)] = []
        items.reserveCapacity(names.count + 8)
        var children: [(name: [UInt8], path: String, info: stat)] = []
        children.reserveCapacity(names.count)
        for name in names {
            let pathBytes = prefix.isEmpty ? name : prefix + [UInt8(ascii: "/")] + name
            guard let path = String(validating: pathBytes, as: UTF8.self) else {
                throw TreeScanError(path: String(decoding: pathBytes, as: UTF8.self), "the name is not valid UTF-8 (the lock is JSON)")
            }
            var info = stat()
            let status = name.withUnsafeBufferPointer { buffer in
                Self.withCString(buffer) { fstatat(directoryFD, $0, &info, AT_SYMLINK_NOFOLLOW) }
            }
            guard status == 0 else { throw TreeScanError(path: path, "cannot stat: \(Self.reason(errno))") }
            items.append((name, children.count, false))
            if info.st_mode & S_IFMT == S_IFDIR { items.append((name + [UInt8(ascii: "/")], children.count, true)) }
            children.append((name, path, info))
        }
        items.sort { Self.precedes($0.key, $1.key) }
        for item in items {
            let (name, path, info) = children[item.child]
            if item.isContents {
                let child = name.withUnsafeBufferPointer { buffer in
                    Self.withCString(buffer) { openat(directoryFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                }
                guard child >= 0 else { throw TreeScanError(path: path, "cannot open: \(Self.reason(errno))") }
                var opened = stat()
                guard fstat(child, &opened) == 0, opened.st_dev == info.st_dev, opened.st_ino == info.st_ino else {
                    Glibc.close(child)
                    throw TreeScanError(path: path, "changed while it was being read")
                }
                try walk(directory: child, prefix: Array(path.utf8), into: &entries)
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                entries.append(.directory(path, mode: info.st_mode))
            case S_IFREG:
                let identity = Self.identity(info)
                var digest: String
                if let cached = known(identity) {
                    digest = cached
                } else {
                    let file = name.withUnsafeBufferPointer { buffer in
                        Self.withCString(buffer) { openat(directoryFD, $0, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
                    }
                    guard file >= 0 else { throw TreeScanError(path: path, "cannot open: \(Self.reason(errno))") }
                    defer { Glibc.close(file) }
                    digest = try hash(file, path: path, expected: identity)
                }
                files.append((identity, digest))
                entries.append(.file(path, mode: info.st_mode, sha256: digest))
            case S_IFLNK:
                var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = name.withUnsafeBufferPointer { buffer in
                    Self.withCString(buffer) { readlinkat(directoryFD, $0, &target, target.count) }
                }
                guard length >= 0 else { throw TreeScanError(path: path, "cannot read the link: \(Self.reason(errno))") }
                guard let text = String(validating: target[0..<length], as: UTF8.self), length > 0 else {
                    throw TreeScanError(path: path, "the link's target is not valid UTF-8 (the lock is JSON)")
                }
                entries.append(.symlink(path, target: text))
            default:
                throw TreeScanError(path: path, "is a special file (device, FIFO or socket); code paths hold files, directories and links")
            }
        }
    }

    /// Byte order.
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                let count = Swift.min(x.count, y.count)
                var i = 0
                while i < count {
                    if x[i] != y[i] { return x[i] < y[i] }
                    i += 1
                }
                return x.count < y.count
            }
        }
    }

    /// SHA-256 of the open regular file `fd`, which must still be the file `expected`
    /// describes, before and after it is read.
    private mutating func hash(_ fd: Int32, path: String, expected: FileIdentity) throws(TreeScanError) -> String {
        var before = stat()
        guard fstat(fd, &before) == 0 else { throw TreeScanError(path: path, "cannot stat: \(Self.reason(errno))") }
        guard Self.identity(before) == expected else { throw TreeScanError(path: path, "changed while it was being read") }
        var hasher = ContentHasher()
        var total = 0
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw TreeScanError(path: path, "cannot read: \(Self.reason(errno))")
            }
            if count == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += count
        }
        var after = stat()
        guard fstat(fd, &after) == 0, Self.identity(after) == expected, total == Int(after.st_size) else {
            throw TreeScanError(path: path, "changed while it was being read")
        }
        hashedFiles += 1
        hashedBytes += total
        return hasher.hexDigest()
    }

    static func identity(_ info: stat) -> FileIdentity {
        FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size), mode: UInt32(info.st_mode),
            mtimeSeconds: Int64(info.st_mtim.tv_sec), mtimeNanoseconds: Int64(info.st_mtim.tv_nsec),
            ctimeSeconds: Int64(info.st_ctim.tv_sec), ctimeNanoseconds: Int64(info.st_ctim.tv_nsec))
    }

    /// `bytes` as a NUL-terminated C string (names from readdir never contain NUL).
    private static func withCString<R>(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafePointer<CChar>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { out in
            for i in 0..<bytes.count { out[i] = CChar(bitPattern: bytes[i]) }
            out[bytes.count] = 0
            return body(out.baseAddress!)
        }
    }

    static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// Why a tree could not be read, at which path (relative to the tree's root).
struct TreeScanError: Error {
    var path: String
    var message: String

    init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }
}
