import Glibc

/// A whole file read with open(2) and read(2), for the small files `mcpjail run` reads on
/// its way in and out (the profile, cgroupfs and procfs files, what a session saw).
/// Foundation's `Data(contentsOf:)` and URL path resolution took 0.13 ms of every start, and
/// procfs and cgroupfs files report size 0, so this reads until end of file.
public enum FileContents {
    /// The file's bytes (reading stops once `limit` or more are in); nil on a failure,
    /// `errno` saying which.
    public static func bytes(_ path: String, limit: Int = .max) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer {
            let saved = errno
            close(fd)
            errno = saved
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}

extension FileContents {
    /// Why a write failed: the system call and its errno, `open: Permission denied`.
    public struct WriteError: Error, CustomStringConvertible {
        public var call: String
        public var errno: Int32
        public var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    /// Replaces `path` with `bytes` (permissions `mode`): a temporary file beside it,
    /// written, synced and renamed over, so a reader or a crash sees the old content or the
    /// new, never a torn one. For files the user keeps (lock files, the pin cache). `mode`
    /// is narrowed by the umask, as with any new file.
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t) throws(WriteError) {
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw WriteError(call: "open", errno: errno) }
        var failure: WriteError?
        var offset = 0
        while offset < bytes.count, failure == nil {
            let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 {
                if errno != EINTR { failure = WriteError(call: "write", errno: errno) }
            } else {
                offset += count
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = WriteError(call: "fsync", errno: errno) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = WriteError(call: "rename", errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }
}
