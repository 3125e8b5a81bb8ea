import Glibc
import MCPJailCore

/// Copies the server's stderr into its log file in the state directory, never to the
/// client. The file is capped: past `maxBytes` it is rotated to `NAME.stderr.log.1`,
/// so at most twice the cap is kept.
public final class StderrLog: @unchecked Sendable {
    private let source: Int32
    private let path: String
    private let maxBytes: Int
    private var fd: Int32 = -1
    private var size = 0
    private let closed = Latch()

    public static let defaultMaxBytes = 1 << 20

    public init(source: Int32, path: String, maxBytes: Int = StderrLog.defaultMaxBytes, banner: String) {
        self.source = source
        self.path = path
        self.maxBytes = maxBytes
        openLog()
        append(Array(banner.utf8))
    }

    /// Starts copying on a thread of its own until the server's stderr closes.
    public func start() {
        Threads.start("mcpjail-stderr", background: true) { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let got = buffer.withUnsafeMutableBytes { (try? FD.read(source, into: $0)) ?? 0 }
                if got <= 0 { break }
                append(Array(buffer[0..<got]))
            }
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
