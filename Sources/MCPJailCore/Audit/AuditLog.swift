import Glibc
import Synchronization

/// The append-only, hash-chained audit log (format: ``AuditLine``).
///
/// Safe to share between threads (a mutex) and between processes: every `mcpjail run` of
/// a user appends to the same file. Each append takes `flock(LOCK_EX)` on the file, finds the
/// previous record's hash, and writes the whole line (or a batch of lines, see
/// ``append(contentsOf:)``) with one `write(2)` on an `O_APPEND` descriptor, so records from
/// different processes never interleave and each chains to the one physically before it.
///
/// Finding the previous hash: the instance remembers the hash and file size after its own
/// last write; when the size is unchanged nothing is read. When another process appended
/// meanwhile (or at the first append), the tail of the file is read back to the last line that
/// is a record whose hash verifies.
///
/// A crash mid-write can leave a torn last line (no newline). The next append first writes a
/// newline so the fragment becomes a line of its own, and chains from the last complete valid
/// record; ``AuditVerifier`` then reports the fragment as torn, and the chain around it verifies.
///
/// If the file is renamed or deleted (log rotation), the next append reopens the path and
/// starts a new chain there.
public final class AuditLog: Sendable {
    public let path: String
    private let state: Mutex<State>

    private struct State {
        var fd: Int32
        var device: UInt64
        var inode: UInt64
        /// Hash of the last record this instance wrote, and the file size right after it.
        var lastHash: String?
        var knownSize: Int64 = -1
    }

    /// Opens (creating it 0600, and missing parent directories 0700) the log at `path`.
    public init(path: String) throws(MCPJailError) {
        self.path = path
        let (fd, device, inode) = try Self.open(path)
        state = Mutex(State(fd: fd, device: device, inode: inode))
    }

    deinit {
        state.withLock { _ = Glibc.close($0.fd) }
    }

    /// Appends `record`, chained to the record before it.
    public func append(_ record: AuditRecord) throws(MCPJailError) {
        try append(contentsOf: [record])
    }

    /// Appends `records` in order, each chained to the one before, under one lock and with
    /// one `write(2)`. A crash mid-write still leaves at most one torn line, the last: the
    /// lines before it in the same write are complete.
    public func append(contentsOf records: [AuditRecord]) throws(MCPJailError) {
        guard !records.isEmpty else { return }
        // Everything after `prev` does not depend on the chain: build it outside the locks.
        let rests = records.map { $0.jsonMembersAfterPrev() }
        try state.withLock { (st: inout State) throws(MCPJailError) in
            try reopenIfReplaced(&st)
            guard Self.retryingEINTR({ flock(st.fd, LOCK_EX) }) == 0 else { throw failure() }
            defer { _ = flock(st.fd, LOCK_UN) }

            var info = stat()
            guard fstat(st.fd, &info) == 0 else { throw failure() }
            let size = Int64(info.st_size)
            var prev: String
            var tornTail = false
            if let last = st.lastHash, size == st.knownSize {
                prev = last
            } else {
                (prev, tornTail) = try Self.scanTail(fd: st.fd, size: size, path: path)
            }

            var lines: [UInt8] = []
            lines.reserveCapacity(rests.reduce(0) { $0 + $1.count } + rests.count * (AuditLine.bodyOffset + 80))
            if tornTail { lines.append(UInt8(ascii: "\n")) }
            for rest in rests {
                let body = AuditLine.body(prev: prev, rest: rest)
                let hash = SHA256Hex.digest(body)
                lines.append(contentsOf: AuditLine.hashPrefix)
                lines.append(contentsOf: hash.utf8)
                lines.append(contentsOf: #"","#.utf8)
                lines.append(contentsOf: body)
                lines.append(UInt8(ascii: "\n"))
                prev = hash
            }

            st.knownSize = -1  // unknown until the write completes
            let writeError: Int32? = lines.withUnsafeBytes { buffer in
                var done = 0
                while done < buffer.count {
                    let n = Glibc.write(st.fd, buffer.baseAddress! + done, buffer.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    done += n
                }
                return nil
            }
            if let writeError { throw failure(writeError) }
            st.lastHash = prev
            st.knownSize = size + Int64(lines.count)
        }
    }

    private func failure(_ code: Int32 = errno) -> MCPJailError {
        MCPJailError(.auditLog, "cannot write audit log \(path): \(String(cString: strerror(code)))")
    }

    /// After rotation (the path now names another file, or none), reopen the path.
    private func reopenIfReplaced(_ st: inout State) throws(MCPJailError) {
        var info = stat()
        if stat(path, &info) == 0, UInt64(info.st_dev) == st.device, UInt64(info.st_ino) == st.inode { return }
        let (fd, device, inode) = try Self.open(path)
        _ = Glibc.close(st.fd)
        st = State(fd: fd, device: device, inode: inode)
    }

    private static func open(_ path: String) throws(MCPJailError) -> (Int32, UInt64, UInt64) {
        func fail(_ code: Int32 = errno) -> MCPJailError {
            MCPJailError(.auditLog, "cannot write audit log \(path): \(String(cString: strerror(code)))")
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), fail: fail)
        }
        let fd = retryingEINTR { Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw fail() }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            throw fail(code)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            throw fail(EINVAL)
        }
        return (fd, UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// `mkdir -p` with mode 0700 for the directories it creates; existing ones are left alone.
    private static func makeDirectories(
        _ directory: String, fail: (Int32) -> MCPJailError
    ) throws(MCPJailError) {
        var info = stat()
        if stat(directory, &info) == 0 { return }
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            try makeDirectories(String(directory[..<slash]), fail: fail)
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw fail(errno) }
    }

    /// The hash to chain from, found by reading the file backwards to the last line that is a
    /// record whose hash verifies (the genesis hash if there is none), and whether the file
    /// ends in a torn line (no final newline).
    static func scanTail(fd: Int32, size: Int64, path: String) throws(MCPJailError) -> (String, Bool) {
        guard size > 0 else { return (AuditLine.genesisHash, false) }
        let chunkSize: Int64 = 64 * 1024
        /// Lines longer than this cannot be records the relay wrote; skip them.
        let maxLine = 64 * 1024 * 1024
        var chunkEnd = size
        var carry: [UInt8] = []
        var tornTail: Bool? = nil
        while chunkEnd > 0 {
            let chunkStart = max(0, chunkEnd - chunkSize)
            var chunk = try AuditFile.pread(fd: fd, offset: chunkStart, count: Int(chunkEnd - chunkStart), path: path)
            if tornTail == nil { tornTail = chunk.last != UInt8(ascii: "\n") }
            if carry.count <= maxLine { chunk.append(contentsOf: carry) }
            // Segments between newlines; the first is incomplete unless the chunk starts the file.
            let found: String? = chunk.withUnsafeBytes { buffer in
                var end = buffer.count
                var i = buffer.count - 1
                while i >= 0 {
                    if buffer[i] == UInt8(ascii: "\n") || (i == 0 && chunkStart == 0) {
                        let start = buffer[i] == UInt8(ascii: "\n") ? i + 1 : i
                        if start < end, let framing = AuditLine.framing(UnsafeRawBufferPointer(rebasing: buffer[start..<end])),
                            framing.hashMatches
                        {
                            return framing.claimedHash
                        }
                        end = i
                    }
                    i -= 1
                }
                return nil
            }
            if let found { return (found, tornTail ?? false) }
            // Keep the incomplete first segment for the next (earlier) chunk.
            let firstNewline = chunk.firstIndex(of: UInt8(ascii: "\n")) ?? chunk.count
            carry = Array(chunk[..<firstNewline])
            chunkEnd = chunkStart
        }
        return (AuditLine.genesisHash, tornTail ?? false)
    }

    static func retryingEINTR(_ call: () -> Int32) -> Int32 {
        while true {
            let r = call()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }
}
