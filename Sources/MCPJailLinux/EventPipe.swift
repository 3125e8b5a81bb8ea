import CMCPJailShims
import Glibc

/// What wakes the supervisor: a signal, or news from a relay thread.
public enum SessionEvent: Equatable, Sendable {
    case signal(Int32)
    case clientClosed
    case serverOutputClosed
}

/// A non-blocking self-pipe that signal handlers (in C, async-signal-safe) and relay
/// threads write one byte to, and the supervisor polls.
public final class EventPipe: @unchecked Sendable {
    public let readFD: Int32
    private let writeFD: Int32
    private static let clientClosedByte: UInt8 = 200
    private static let serverOutputClosedByte: UInt8 = 201

    public init() throws(SystemCallError) {
        let (read, write) = try FD.pipe()
        try FD.setNonBlocking(read)
        try FD.setNonBlocking(write)
        readFD = read
        writeFD = write
    }

    /// Routes `signals` to this pipe (the handler writes the signal number).
    public func captureSignals(_ signals: [Int32]) throws(SystemCallError) {
        let status = signals.withUnsafeBufferPointer {
            mcpjail_install_signal_pipe(writeFD, $0.baseAddress, Int32($0.count))
        }
        if status != 0 { throw SystemCallError("sigaction", errno: errno) }
    }

    public func post(_ event: SessionEvent) {
        var byte: UInt8
        switch event {
        case .signal(let number): byte = UInt8(truncatingIfNeeded: number)
        case .clientClosed: byte = Self.clientClosedByte
        case .serverOutputClosed: byte = Self.serverOutputClosedByte
        }
        _ = Glibc.write(writeFD, &byte, 1)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns the events that arrived.
    public func wait(timeoutMilliseconds: Int32) -> [SessionEvent] {
        var poller = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMilliseconds)
        guard ready > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 256)
        let got = Glibc.read(readFD, &buffer, buffer.count)
        guard got > 0 else { return [] }
        return buffer[0..<got].map { byte in
            switch byte {
            case Self.clientClosedByte: .clientClosed
            case Self.serverOutputClosedByte: .serverOutputClosed
            default: .signal(Int32(byte))
            }
        }
    }
}
