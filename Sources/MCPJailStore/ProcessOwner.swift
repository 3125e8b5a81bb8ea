import Glibc
import MCPJailCore

/// Linux process identities for the idempotency store: who holds an in-flight call, and
/// whether that process still runs.
///
/// A pid alone is not an identity (pids are reused), so an owner is (boot id, pid, start
/// time from `/proc/PID/stat` field 22). Liveness is judged in the caller's pid namespace:
/// mcpjail processes that share a state directory must share a pid namespace too, or they see
/// each other's live calls as dead (answered `outcome_unknown`, never re-executed).
public enum ProcessOwner {
    /// The calling process.
    public static func current() throws(MCPJailError) -> IdempotencyOwner {
        let pid = getpid()
        guard let info = ProcessStat.read(pid: pid) else {
            throw MCPJailError(.internalError, "cannot read /proc/\(pid)/stat (is /proc mounted?)")
        }
        return IdempotencyOwner(bootID: bootID, pid: pid, startTime: info.startTime)
    }

    /// The running process `pid`, nil when there is none (or only a zombie).
    public static func of(pid: Int32) -> IdempotencyOwner? {
        guard let info = ProcessStat.read(pid: pid), info.isRunning else { return nil }
        return IdempotencyOwner(bootID: bootID, pid: pid, startTime: info.startTime)
    }

    /// This boot's id (`/proc/sys/kernel/random/boot_id`), empty if unreadable.
    public static let bootID: String = {
        guard let bytes = ProcessStat.readSmallFile("/proc/sys/kernel/random/boot_id") else { return "" }
        return String(decoding: bytes, as: UTF8.self).trimmingASCIIWhitespace()
    }()
}

/// Liveness from `/proc`: the owner runs when its boot is this boot, its pid exists, is not
/// a zombie, and started at the recorded time (else the pid was reused).
public struct ProcessLiveness: IdempotencyOwnerLiveness {
    public init() {}

    public func isAlive(_ owner: IdempotencyOwner) -> Bool {
        guard owner.bootID == ProcessOwner.bootID, owner.pid > 0 else { return false }
        guard let info = ProcessStat.read(pid: owner.pid) else { return false }
        return info.isRunning && info.startTime == owner.startTime
    }
}

/// The two fields of `/proc/PID/stat` that identify a process.
struct ProcessStat {
    /// Field 3: R, S, D, Z (zombie), X (dead), ...
    var state: UInt8
    /// Field 22: start time in clock ticks after boot.
    var startTime: UInt64

    var isRunning: Bool { state != UInt8(ascii: "Z") && state != UInt8(ascii: "X") }

    static func read(pid: Int32) -> ProcessStat? {
        guard let bytes = readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parse(bytes)
    }

    /// Parses `pid (comm) state ppid ...`: the command name may hold spaces and parentheses,
    /// so fields are counted from the last `)`.
    static func parse(_ bytes: [UInt8]) -> ProcessStat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19, let state = fields[0].first else { return nil }
        let digits = fields[19].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, let start = UInt64(String(decoding: digits, as: UTF8.self)) else { return nil }
        return ProcessStat(state: state, startTime: start)
    }

    /// The contents of a small `/proc` file, nil when it cannot be read.
    static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            total += n
        }
        return Array(buffer[..<total])
    }
}

extension String {
    fileprivate func trimmingASCIIWhitespace() -> String {
        let bytes = Array(utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
