import CMCPJailShims
import Glibc
import MCPJailCore

/// A failed system call: which call, and errno (swift-subprocess's `SubprocessError` /
/// containerization's shape). Its description is the `what: why` half of a user message.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// Runs a system call, retrying on EINTR and capturing errno at once (swift-nio's
/// `syscall(blocking:where:)`). Returns the call's non-negative result.
@discardableResult
@inline(__always)
public func systemCall<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SystemCallError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let error = Glibc.errno
        if error == EINTR { continue }
        throw SystemCallError(name(), errno: error)
    }
}

/// Small file-descriptor helpers used by the relay and the spawner.
public enum FD {
    /// A pipe with both ends close-on-exec: `(read, write)`.
    public static func pipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try systemCall("pipe2") { mcpjail_pipe_cloexec(&fds) }
        return (fds[0], fds[1])
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let written = try systemCall("write") {
                Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            }
            offset += written
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
        // withUnsafeBytes rethrows untyped errors; carry the typed one out by hand.
        var failure: SystemCallError? = nil
        bytes.withUnsafeBytes { raw in
            do throws(SystemCallError) { try writeAll(fd, raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Reads into `buffer`; 0 at end of file.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        try systemCall("read") { Glibc.read(fd, buffer.baseAddress!, buffer.count) }
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)  // never retried: the fd is gone either way (Linux close semantics)
    }

    /// Replaces `path` with `bytes` (mode `mode`) by writing a temporary file beside it and
    /// renaming it over: readers see the old or the new content, never a torn one. No fsync:
    /// for state that describes running processes (the session registry, what a session saw),
    /// which a crash makes stale anyway; readers skip an entry they cannot decode. An fsync
    /// here cost 5-40 ms on the start and stop path of every session. False if it failed
    /// (nothing is left behind).
    public static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t) -> Bool {
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 { return false }
        let written = (try? writeAll(fd, bytes)) != nil
        close(fd)
        if written && rename(temporary, path) == 0 { return true }
        unlink(temporary)
        return false
    }

    /// Creates directory `path` and any missing parents, each with `mode` (`mkdir -p`); a
    /// directory that exists is left as it is. On `mcpjail run`'s path instead of FileManager,
    /// which sets itself up at its first use and takes several calls per directory.
    public static func makeDirectories(_ path: String, mode: mode_t) throws(SystemCallError) {
        // Usually all there: one mkdir, then a walk from the root only when a parent is missing.
        if try makeDirectory(path, mode: mode) { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            guard try makeDirectory(prefix, mode: mode) else { throw SystemCallError("mkdir \(prefix)", errno: ENOENT) }
        }
    }

    /// mkdir(2) of one directory: true if it is there now, false if its parent is missing.
    private static func makeDirectory(_ path: String, mode: mode_t) throws(SystemCallError) -> Bool {
        if mkdir(path, mode) == 0 {
            _ = chmod(path, mode)  // as asked, whatever the umask
            return true
        }
        let error = errno
        if error == ENOENT { return false }
        var info = stat()
        guard error == EEXIST, stat(path, &info) == 0 else { throw SystemCallError("mkdir \(path)", errno: error) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw SystemCallError("mkdir \(path)", errno: ENOTDIR) }
        return true
    }

    /// The names in directory `path` (without "." and ".."), or nil if it cannot be read.
    /// Used on `mcpjail run`'s path instead of FileManager, whose listing makes the runtime
    /// search every conformance record of the binary (~0.1 ms a start).
    public static func directoryNames(_ path: String) -> [String]? {
        guard let stream = opendir(path) else { return nil }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Where the symbolic link `path` points, or nil if it is not one (readlink(2); see
    /// ``directoryNames(_:)`` for why not FileManager).
    public static func symbolicLinkDestination(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let length = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, $0.count) }
        guard length >= 0 else { return nil }
        return String(decoding: buffer[..<length], as: UTF8.self)
    }

    /// Grows the pipe behind `fd` to at least `bytes` (F_SETPIPE_SZ), if it is a pipe that
    /// is smaller; returns the pipe's size after, or nil when `fd` is not a pipe or the
    /// kernel refused (an ordinary user over `/proc/sys/fs/pipe-user-pages-soft`).
    @discardableResult
    public static func growPipe(_ fd: Int32, to bytes: Int32) -> Int32? {
        let setPipeSize: Int32 = 1031, getPipeSize: Int32 = 1032  // F_SETPIPE_SZ, F_GETPIPE_SZ
        let size = fcntl(fd, getPipeSize)
        guard size > 0 else { return nil }
        if size >= bytes { return size }
        let grown = fcntl(fd, setPipeSize, bytes)
        return grown > 0 ? grown : size
    }

    public static func setNonBlocking(_ fd: Int32) throws(SystemCallError) {
        let flags = try systemCall("fcntl") { fcntl(fd, F_GETFL) }
        try systemCall("fcntl") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }
}
