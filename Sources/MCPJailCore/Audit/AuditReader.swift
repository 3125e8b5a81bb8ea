import Glibc

/// One record read back from the audit log.
public struct AuditEntry: Sendable, Equatable {
    /// 1-based line number in the file.
    public var line: Int
    public var hash: String
    public var prev: String
    public var record: AuditRecord
    /// The line as written, without its newline.
    public var text: String
}

/// Reads the audit log: every record in order, optionally one server's, and new ones as they
/// are appended (``follow(server:from:pollInterval:until:_:)``, like `tail -f`).
///
/// Reading does not check the chain (that is ``AuditVerifier``); a line that is not a readable
/// record is handed over as ``Item/unreadable(line:text:)``. A last line without its newline is
/// not read yet: it may be a record still being written.
public struct AuditReader: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public enum Item: Sendable, Equatable {
        case record(AuditEntry)
        /// A complete line that is not a readable record (torn by a crash, or damaged).
        case unreadable(line: Int, text: String)
    }

    /// Where reading stopped: the byte offset after the last complete line, and its line number.
    public struct Position: Sendable, Equatable {
        public var offset: Int64
        public var line: Int
        public static let start = Position(offset: 0, line: 0)
        public init(offset: Int64, line: Int) {
            self.offset = offset
            self.line = line
        }
    }

    /// Whether the log file exists.
    public var exists: Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Reads the complete lines from `position` to the current end of the file, calling `body`
    /// for each record of `server` (all servers when nil) and each unreadable line; returns the
    /// position to continue from. A missing file reads as empty.
    @discardableResult
    public func read(
        server: String? = nil, from position: Position = .start, _ body: (Item) throws -> Void
    ) throws -> Position {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return position }
            throw AuditFile.readError(path)
        }
        defer { _ = Glibc.close(fd) }
        var lineNumber = position.line
        var bodyError: (any Error)?
        let consumed = try AuditFile.forEachLine(fd: fd, from: position.offset, path: path) { bytes, terminated in
            guard terminated else { return false }
            lineNumber += 1
            guard let item = Self.item(bytes, line: lineNumber, server: server) else { return true }
            do { try body(item) } catch {
                bodyError = error
                return false
            }
            return true
        }
        if let bodyError { throw bodyError }
        return Position(offset: position.offset + consumed, line: lineNumber)
    }

    /// Reads from `position`, then keeps polling for appended lines every `pollInterval`
    /// until `stop()` returns true or the task is cancelled. If the file shrinks or is
    /// replaced (rotation), reading starts again at its beginning. A missing file is waited for.
    public func follow(
        server: String? = nil, from position: Position = .start, pollInterval: Duration = .milliseconds(200),
        until stop: @Sendable () -> Bool = { false }, _ body: (Item) throws -> Void
    ) async throws {
        var position = position
        var identity = fileIdentity()
        while true {
            let now = fileIdentity()
            if let now, let before = identity, now.device != before.device || now.inode != before.inode {
                position = .start
            } else if let now, now.size < position.offset {
                position = .start
            }
            identity = now
            position = try read(server: server, from: position, body)
            if stop() || Task.isCancelled { return }
            do { try await Task.sleep(for: pollInterval) } catch { return }
        }
    }

    private func fileIdentity() -> (device: UInt64, inode: UInt64, size: Int64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino), Int64(info.st_size))
    }

    /// The item for one complete line, or nil when it is a record of another server.
    static func item(_ bytes: UnsafeRawBufferPointer, line: Int, server: String?) -> Item? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let framing = AuditLine.framing(bytes), let json = try? JSONParser.parse(bytes),
            let record = try? AuditRecord(json: json)
        else { return .unreadable(line: line, text: text) }
        if let server, record.server != server { return nil }
        return .record(AuditEntry(line: line, hash: framing.claimedHash, prev: framing.prev, record: record, text: text))
    }
}

/// File reading for the audit log: chunked, line by line, EINTR-safe.
enum AuditFile {
    static func readError(_ path: String, _ code: Int32 = errno) -> MCPJailError {
        MCPJailError(.auditLog, "cannot read audit log \(path): \(String(cString: strerror(code)))")
    }

    /// Reads exactly `count` bytes at `offset` (fewer only at end of file).
    static func pread(fd: Int32, offset: Int64, count: Int, path: String) throws(MCPJailError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        let failure: Int32? = out.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = Glibc.pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                done += n
            }
            return nil
        }
        if let failure { throw readError(path, failure) }
        out.removeLast(count - done)
        return out
    }

    /// Calls `body` with each line from `offset` (without its newline) and whether it ended in
    /// a newline (only the last one may not). `body` returns false to stop. Returns the bytes
    /// consumed: through the last line for which `body` returned true.
    static func forEachLine(
        fd: Int32, from offset: Int64, path: String,
        _ body: (UnsafeRawBufferPointer, _ terminated: Bool) -> Bool
    ) throws(MCPJailError) -> Int64 {
        let chunkSize = 1 << 20
        var pending: [UInt8] = []
        var fileOffset = offset
        var consumed: Int64 = 0
        while true {
            let chunk = try pread(fd: fd, offset: fileOffset, count: chunkSize, path: path)
            fileOffset += Int64(chunk.count)
            let atEnd = chunk.count < chunkSize
            pending.append(contentsOf: chunk)
            var stopped = false
            let used: Int = pending.withUnsafeBytes { buffer in
                var start = 0
                while start < buffer.count {
                    guard let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }
                    if !body(UnsafeRawBufferPointer(rebasing: buffer[start..<newline]), true) {
                        stopped = true
                        return start
                    }
                    start = newline + 1
                }
                return start
            }
            consumed += Int64(used)
            pending.removeFirst(used)
            if stopped { return consumed }
            if atEnd {
                if !pending.isEmpty {
                    let accepted = pending.withUnsafeBytes { body($0, false) }
                    if accepted { consumed += Int64(pending.count) }
                }
                return consumed
            }
        }
    }
}
