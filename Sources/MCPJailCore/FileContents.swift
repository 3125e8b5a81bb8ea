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
