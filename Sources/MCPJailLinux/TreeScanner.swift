import Glibc
import MCPJailCore

/// Reads a pinned tree (a `[server] code` path) into its manifest, through file descriptors
/// only: the bytes ``TreeDigest`` hashes (`path NUL value NUL` per entry, in byte order of
/// the paths), from which the tree's digest and, when needed, its ``TreeEntry`` list follow.
///
/// The walk starts at an fd the caller opened (on the host, or inside the jail's root) and
/// opens every directory and file relative to its parent's fd with `O_NOFOLLOW`: a symlink
/// swapped in while it runs cannot lead it anywhere else, and what is hashed is the very
/// file that was stat'ed (its device and inode are checked again after opening). A file
/// whose identity is already known (``known``: a ``PinCache``) is not read at all; every
/// other regular file is hashed, and a file that changes while it is read is an error.
///
/// The manifest is written in byte order without sorting the tree: among siblings, a
/// name's own entry sorts at the key `name` and everything below a directory at `name/`
/// (no name holds a `/`), so sorting each directory's keys and expanding the `name/` ones
/// in place gives the global order ("a", then "a-b", then "a/x", since '-' < '/'); the
/// tree's own entry `.` is one more key among the top directory's.
struct TreeScanner {
    /// Digests known by identity; nil means: hash it.
    let known: (FileIdentity) -> String?
    /// Arms each directory before its entries are read (`mcpjail run`'s check), if set.
    var watch: CodeWatch? = nil
    /// Every regular file met, with its digest (to build the next cache from).
    private(set) var files: [(identity: FileIdentity, digest: String)] = []
    /// Entries written to manifests so far.
    private(set) var entryCount = 0
    /// How many files (and bytes) were actually read and hashed.
    private(set) var hashedFiles = 0
    private(set) var hashedBytes = 0
    private let buffer: UnsafeMutableRawBufferPointer
    /// The manifest of the tree being scanned.
    private var manifest: [UInt8] = []

    init(known: @escaping (FileIdentity) -> String?) {
        self.known = known
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    }

    /// Frees the read buffer; the scanner cannot be used afterwards.
    func release() {
        buffer.deallocate()
    }

    /// The tree at `root` (an fd the caller keeps owning): its ``TreeDigest`` and, with
    /// `entries`, every entry in order (`mcpjail pin`, and naming a difference).
    mutating func scan(root: Int32, entries wanted: Bool) throws(TreeScanError) -> (digest: String, entries: [TreeEntry]) {
        var info = stat()
        guard fstat(root, &info) == 0 else { throw TreeScanError(path: ".", "cannot stat: \(Self.reason(errno))") }
        manifest.removeAll(keepingCapacity: true)
        manifest.reserveCapacity(1 << 20)
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            let fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw TreeScanError(path: ".", "cannot open: \(Self.reason(errno))") }
            try walk(directory: fd, prefix: [], top: info)
        case S_IFREG:
            let identity = Self.identity(info)
            let digest = try knownOrHashed(root, path: ".", identity: identity)
            files.append((identity, digest))
            emit(prefix: [], name: [UInt8(ascii: ".")], kind: UInt8(ascii: "f"), mode: info.st_mode, value: digest)
        default:
            throw TreeScanError(path: ".", "is neither a directory nor a regular file")
        }
        var hashed = ContentHasher()
        TreeDigest.domain.withUnsafeBytes { hashed.update($0) }
        manifest.withUnsafeBytes { hashed.update($0) }
        return ("sha256:" + hashed.hexDigest(), wanted ? Self.entries(of: manifest) : [])
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

    /// Appends one entry, `prefix/name NUL kind SP mode|value NUL`, to the manifest (see
    /// ``TreeEntry`` for the values).
    private mutating func emit(prefix: [UInt8], name: some Collection<UInt8>, kind: UInt8, mode: mode_t, value: String?) {
        entryCount += 1
        if !prefix.isEmpty {
            manifest.append(contentsOf: prefix)
            manifest.append(UInt8(ascii: "/"))
        }
        manifest.append(contentsOf: name)
        manifest.append(0)
        manifest.append(kind)
        manifest.append(UInt8(ascii: " "))
        if kind != UInt8(ascii: "l") {
            let bits = UInt32(mode) & 0o7777
            for shift in [9, 6, 3, 0] { manifest.append(UInt8(ascii: "0") + UInt8((bits >> UInt32(shift)) & 7)) }
            if value != nil { manifest.append(UInt8(ascii: " ")) }
        }
        if let value { manifest.append(contentsOf: value.utf8) }
        manifest.append(0)
    }

    /// Adds the entries below the directory `fd` (consumed) whose path is `prefix`; for the
    /// tree's top directory (`top`), its own entry `.` too.
    private mutating func walk(directory fd: Int32, prefix: [UInt8], top: stat? = nil) throws(TreeScanError) {
        let pathText = prefix.isEmpty ? "." : String(decoding: prefix, as: UTF8.self)
        watch?.armTree(fd, path: pathText)
        guard let stream = fdopendir(fd) else {
            let code = errno
            Glibc.close(fd)
            throw TreeScanError(path: pathText, "cannot list: \(Self.reason(code))")
        }
        defer { closedir(stream) }
        let directoryFD = dirfd(stream)
        // The children's names, NUL-terminated, one after the other; and their stat.
        var names: [UInt8] = []
        var starts: [Int] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw TreeScanError(path: pathText, "cannot list: \(Self.reason(errno))") }
                break
            }
            withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                let name = raw.prefix { $0 != 0 }
                if name.elementsEqual([UInt8(ascii: ".")]) || name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { return }
                starts.append(names.count)
                names.append(contentsOf: name)
                names.append(0)
            }
        }
        if top != nil {
            starts.append(names.count)
            names.append(contentsOf: [UInt8(ascii: "."), 0])
        }
        starts.append(names.count)
        let count = starts.count - 1
        var infos = Array(repeating: stat(), count: count)
        // Item 2i is child i's own entry, 2i+1 what is below it (a directory's contents).
        var items: [Int] = []
        items.reserveCapacity(count + count / 4)
        for child in 0..<count {
            let name = names[starts[child]..<(starts[child + 1] - 1)]
            if top != nil && child == count - 1 {
                infos[child] = top!
                items.append(2 * child)
                continue
            }
            if !name.allSatisfy({ $0 < 0x80 }) && String(validating: name, as: UTF8.self) == nil {
                throw TreeScanError(path: Self.text(prefix, name), "the name is not valid UTF-8 (the lock is JSON)")
            }
            let status = names.withUnsafeBufferPointer { all in
                fstatat(directoryFD, UnsafeRawPointer(all.baseAddress! + starts[child]).assumingMemoryBound(to: CChar.self), &infos[child], AT_SYMLINK_NOFOLLOW)
            }
            guard status == 0 else { throw TreeScanError(path: Self.text(prefix, name), "cannot stat: \(Self.reason(errno))") }
            items.append(2 * child)
            if infos[child].st_mode & S_IFMT == S_IFDIR { items.append(2 * child + 1) }
        }
        items.sort { a, b in Self.precedes(a, b, names: names, starts: starts) }

        for item in items {
            let child = item / 2
            let name = names[starts[child]..<(starts[child + 1] - 1)]
            let info = infos[child]
            func cName<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
                names.withUnsafeBufferPointer { all in
                    body(UnsafeRawPointer(all.baseAddress! + starts[child]).assumingMemoryBound(to: CChar.self))
                }
            }
            if top != nil && child == count - 1 {
                emit(prefix: [], name: [UInt8(ascii: ".")], kind: UInt8(ascii: "d"), mode: info.st_mode, value: nil)
                continue
            }
            if item % 2 == 1 {
                let path = Self.path(prefix, name)
                let opened = cName { openat(directoryFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard opened >= 0 else { throw TreeScanError(path: Self.text(prefix, name), "cannot open: \(Self.reason(errno))") }
                var now = stat()
                guard fstat(opened, &now) == 0, now.st_dev == info.st_dev, now.st_ino == info.st_ino else {
                    Glibc.close(opened)
                    throw TreeScanError(path: Self.text(prefix, name), "changed while it was being read")
                }
                try walk(directory: opened, prefix: path)
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                emit(prefix: prefix, name: name, kind: UInt8(ascii: "d"), mode: info.st_mode, value: nil)
            case S_IFREG:
                let identity = Self.identity(info)
                var digest: String
                if let cached = known(identity) {
                    digest = cached
                } else {
                    let file = cName { openat(directoryFD, $0, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
                    guard file >= 0 else { throw TreeScanError(path: Self.text(prefix, name), "cannot open: \(Self.reason(errno))") }
                    defer { Glibc.close(file) }
                    digest = try hash(file, path: Self.text(prefix, name), expected: identity)
                }
                files.append((identity, digest))
                emit(prefix: prefix, name: name, kind: UInt8(ascii: "f"), mode: info.st_mode, value: digest)
            case S_IFLNK:
                var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = cName { readlinkat(directoryFD, $0, &target, target.count) }
                guard length >= 0 else { throw TreeScanError(path: Self.text(prefix, name), "cannot read the link: \(Self.reason(errno))") }
                guard length > 0, let text = String(validating: target[0..<length], as: UTF8.self) else {
                    throw TreeScanError(path: Self.text(prefix, name), "the link's target is not valid UTF-8 (the lock is JSON)")
                }
                emit(prefix: prefix, name: name, kind: UInt8(ascii: "l"), mode: info.st_mode, value: text)
            default:
                throw TreeScanError(
                    path: Self.text(prefix, name), "is a special file (device, FIFO or socket); code paths hold files, directories and links")
            }
        }
    }

    /// Byte order of two items' keys: child i's name for item 2i, its name and `/` for 2i+1.
    private static func precedes(_ a: Int, _ b: Int, names: [UInt8], starts: [Int]) -> Bool {
        names.withUnsafeBufferPointer { all in
            let (aStart, aEnd) = (starts[a / 2], starts[a / 2 + 1] - 1)
            let (bStart, bEnd) = (starts[b / 2], starts[b / 2 + 1] - 1)
            let aCount = aEnd - aStart + a % 2
            let bCount = bEnd - bStart + b % 2
            var i = 0
            while i < aCount && i < bCount {
                let x = aStart + i < aEnd ? all[aStart + i] : UInt8(ascii: "/")
                let y = bStart + i < bEnd ? all[bStart + i] : UInt8(ascii: "/")
                if x != y { return x < y }
                i += 1
            }
            return aCount < bCount
        }
    }

    private static func path(_ prefix: [UInt8], _ name: ArraySlice<UInt8>) -> [UInt8] {
        prefix.isEmpty ? Array(name) : prefix + [UInt8(ascii: "/")] + name
    }

    private static func text(_ prefix: [UInt8], _ name: ArraySlice<UInt8>) -> String {
        String(decoding: path(prefix, name), as: UTF8.self)
    }

    /// The entries a manifest lists.
    static func entries(of manifest: [UInt8]) -> [TreeEntry] {
        var out: [TreeEntry] = []
        var fields = manifest.split(separator: 0, omittingEmptySubsequences: false)[...]
        while fields.count >= 2 {
            let path = fields.removeFirst()
            let value = fields.removeFirst()
            out.append(TreeEntry(path: String(decoding: path, as: UTF8.self), value: String(decoding: value, as: UTF8.self)))
        }
        return out
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
