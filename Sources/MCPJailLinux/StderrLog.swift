import Glibc
import MCPJailCore

/// Copies the server's stderr into its log file in the state directory, never to the
/// client. The file is capped: past `maxBytes` it is rotated to `NAME.stderr.log.1`,
/// so at most twice the cap is kept. Secret values are redacted line by line, so a value
/// split across two reads is still found (lines longer than 64 KiB are cut there).
public final class StderrLog: @unchecked Sendable {
    private let source: Int32
    private let path: String
    private let maxBytes: Int
    private let redactor: SecretRedactor
    private var fd: Int32 = -1
    private var size = 0
    private let closed = Latch()

    public static let defaultMaxBytes = 1 << 20

    public init(
        source: Int32, path: String, maxBytes: Int = StderrLog.defaultMaxBytes, banner: String,
        redactor: SecretRedactor = SecretRedactor(secrets: [])
    ) {
        self.source = source
        self.path = path
        self.maxBytes = maxBytes
        self.redactor = redactor
        openLog()
        append(Array(banner.utf8))
    }

    /// Starts copying on a thread of its own until the server's stderr closes.
    public func start() {
        Threads.start("mcpjail-stderr", background: true) { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var partial: [UInt8] = []
            while true {
                let got = buffer.withUnsafeMutableBytes { (try? FD.read(source, into: $0)) ?? 0 }
                if got <= 0 { break }
                if redactor.isEmpty {
                    append(Array(buffer[0..<got]))
                    continue
                }
                partial += buffer[0..<got]
                let cut = partial.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? (partial.count > 64 * 1024 ? partial.count : 0)
                if cut > 0 {
                    appendRedacted(Array(partial[0..<cut]))
                    partial.removeFirst(cut)
                }
            }
            if !partial.isEmpty { appendRedacted(partial) }
            FD.close(source)
            if fd >= 0 { FD.close(fd) }
            closed.open()
        }
    }

    /// Waits up to `seconds` for the copy to finish (the server's stderr to close).
    public func waitUntilClosed(seconds: Double) {
        closed.wait(seconds: seconds)
    }

    private func openLog() {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        var info = stat()
        size = fd >= 0 && fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    private func appendRedacted(_ bytes: [UInt8]) {
        append(bytes.withUnsafeBytes { redactor.redact($0) } ?? bytes)
    }

    private func append(_ bytes: [UInt8]) {
        guard fd >= 0 else { return }
        if size + bytes.count > maxBytes {
            FD.close(fd)
            _ = rename(path, path + ".1")
            openLog()
        }
        if (try? FD.writeAll(fd, bytes)) != nil { size += bytes.count }
    }
}
