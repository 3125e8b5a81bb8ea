import CMCPJailShims
import Glibc

/// Reads newline-delimited messages from one fd into one reusable buffer, and hands
/// each complete line to the relay without copying it.
///
/// Lines longer than `maxLine` are never held whole: once the partial line passes the
/// limit the reader drops what it has and skips to the next newline, then reports the
/// line as oversize. Lines the relay forwards unchanged are written back out as
/// contiguous runs, so a burst of small messages costs one write, as `cat` would.
final class LineReader {
    /// What the relay does with a line.
    enum Disposition {
        /// Write the line (with its newline) onward unchanged.
        case forward
        /// Do not forward it (the relay answered it, or dropped it).
        case consume
        /// Forward these bytes (a newline is added) in the line's place, in order.
        case replace([UInt8])
        /// Flush the lines forwarded before this one, then ask again about the same line:
        /// for a decision that must write to the peer first (the relay's own requests).
        case flushFirst
    }

    private let fd: Int32
    private let maxLine: Int
    private var spin: ReadySpin
    private static let initialCapacity = 256 * 1024
    private static let minimumRead = 64 * 1024
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var end = 0
    /// Bytes before `end` already searched for a newline.
    private var searched = 0
    /// Bytes of an oversize line dropped so far, or nil when not inside one.
    private var discarding: Int? = nil
    /// The first bytes of the line being discarded, so the relay can still find its id.
    private var oversizePrefix: [UInt8] = []
    /// How much of an oversize line is kept for ``oversizePrefix``.
    static let prefixKept = 64 * 1024

    init(fd: Int32, maxLine: Int, spinBudget: UInt64 = 0) {
        self.fd = fd
        self.maxLine = maxLine
        self.spin = ReadySpin(budget: spinBudget)
        self.capacity = Self.initialCapacity
        self.storage = Self.map(capacity)
    }

    deinit { munmap(storage, capacity) }

    /// Reads once (blocking) and processes every complete line. `onLine` gets each line
    /// without its newline; `onOversize` gets the size of a dropped line and its first
    /// bytes (up to ``prefixKept``); `flush` gets runs
    /// of forwarded bytes, newlines included. Returns false at end of input, after
    /// handing a final unterminated line to `onLine`.
    func readAndProcess(
        onLine: (UnsafeRawBufferPointer) -> Disposition,
        onOversize: (Int, UnsafeRawBufferPointer) -> Void,
        flush: (UnsafeRawBufferPointer) throws(SystemCallError) -> Void
    ) throws(SystemCallError) -> Bool {
        makeRoom()
        spin.beforeRead(fd)
        defer { spin.afterRead() }
        let got = try FD.read(fd, into: UnsafeMutableRawBufferPointer(start: storage + end, count: capacity - end))
        if got == 0 {
            if let dropped = discarding {
                discarding = nil
                reportOversize(dropped + (end - start), onOversize)
            } else if end > start {
                let line = UnsafeRawBufferPointer(start: storage + start, count: end - start)
                var disposition = onLine(line)
                if case .flushFirst = disposition { disposition = onLine(line) }
                switch disposition {
                case .forward:
                    // Forward it terminated, as the protocol requires.
                    (storage + end).storeBytes(of: UInt8(ascii: "\n"), as: UInt8.self)
                    try flush(UnsafeRawBufferPointer(start: storage + start, count: end - start + 1))
                case .replace(let bytes):
                    try Self.flushTerminated(bytes, flush)
                case .consume, .flushFirst:
                    break
                }
            }
            start = 0
            end = 0
            return false
        }
        end += got

        var runStart = start
        var runEnd = start
        var lineStart = start
        while let newline = findNewline() {
            let lineEnd = newline
            searched = newline + 1
            defer { lineStart = newline + 1 }
            if let dropped = discarding {
                discarding = nil
                reportOversize(dropped + (lineEnd - lineStart), onOversize)
                try flushRun(&runStart, &runEnd, next: newline + 1, flush)
                continue
            }
            if lineEnd - lineStart > maxLine {  // arrived whole in one read, still too long
                onOversize(lineEnd - lineStart, UnsafeRawBufferPointer(start: storage + lineStart, count: min(lineEnd - lineStart, Self.prefixKept)))
                try flushRun(&runStart, &runEnd, next: newline + 1, flush)
                continue
            }
            let line = UnsafeRawBufferPointer(start: storage + lineStart, count: lineEnd - lineStart)
            var disposition = onLine(line)
            if case .flushFirst = disposition {
                try flushRun(&runStart, &runEnd, next: lineStart, flush)
                disposition = onLine(line)
            }
            switch disposition {
            case .forward:
                if runEnd != lineStart { try flushRun(&runStart, &runEnd, next: lineStart, flush) }
                runEnd = newline + 1
            case .consume, .flushFirst:
                try flushRun(&runStart, &runEnd, next: newline + 1, flush)
            case .replace(let bytes):
                try flushRun(&runStart, &runEnd, next: newline + 1, flush)
                try Self.flushTerminated(bytes, flush)
            }
        }
        try flushRun(&runStart, &runEnd, next: lineStart, flush)
        start = lineStart

        // A partial line over the limit: drop it and skip to the next newline.
        let partial = end - start
        if let dropped = discarding {
            discarding = dropped + partial
            start = 0
            end = 0
            searched = 0
        } else if partial > maxLine {
            keepPrefix()
            discarding = partial
            start = 0
            end = 0
            searched = 0
        }
        return true
    }

    private static func flushTerminated(
        _ bytes: [UInt8], _ flush: (UnsafeRawBufferPointer) throws(SystemCallError) -> Void
    ) throws(SystemCallError) {
        var line = bytes
        line.append(UInt8(ascii: "\n"))
        let result: Result<Void, SystemCallError> = line.withUnsafeBytes { raw in
            do throws(SystemCallError) {
                try flush(raw)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    private func keepPrefix() {
        oversizePrefix = Array(UnsafeRawBufferPointer(start: storage + start, count: min(end - start, Self.prefixKept)))
    }

    private func reportOversize(_ size: Int, _ onOversize: (Int, UnsafeRawBufferPointer) -> Void) {
        oversizePrefix.withUnsafeBytes { onOversize(size, $0) }
        oversizePrefix = []
    }

    private func findNewline() -> Int? {
        let from = max(searched, start)
        guard from < end, let hit = memchr(storage + from, Int32(UInt8(ascii: "\n")), end - from) else {
            searched = end
            return nil
        }
        return hit - storage
    }

    private func flushRun(
        _ runStart: inout Int, _ runEnd: inout Int, next: Int,
        _ flush: (UnsafeRawBufferPointer) throws(SystemCallError) -> Void
    ) throws(SystemCallError) {
        if runEnd > runStart {
            try flush(UnsafeRawBufferPointer(start: storage + runStart, count: runEnd - runStart))
        }
        runStart = next
        runEnd = next
    }

    /// Keeps the partial line at the front and at least `minimumRead` bytes free; grows up
    /// to the line limit while a long line arrives, and shrinks back once it has passed.
    private func makeRoom() {
        if start == end {
            start = 0
            end = 0
            searched = 0
            if capacity > Self.initialCapacity { resize(to: Self.initialCapacity) }
            return
        }
        if capacity - end >= Self.minimumRead { return }
        if start > 0 {
            let partial = end - start
            memmove(storage, storage + start, partial)
            searched -= start
            start = 0
            end = partial
        }
        if capacity - end < Self.minimumRead {
            resize(to: min(max(capacity * 2, end + Self.minimumRead), maxLine + 2 * Self.minimumRead))
        }
        if capacity == end {  // could not grow: handle the partial line as oversize
            if discarding == nil { keepPrefix() }
            discarding = (discarding ?? 0) + (end - start)
            start = 0
            end = 0
            searched = 0
        }
    }

    /// The buffer is its own mapping, not malloc memory: growing moves pages instead of
    /// copying them (mremap), and shrinking gives them back to the kernel at once, so a
    /// message of many megabytes costs its size once, and only while it is in flight.
    private func resize(to newCapacity: Int) {
        if start > 0 {
            memmove(storage, storage + start, end - start)
            end -= start
            searched = max(0, searched - start)
            start = 0
        }
        guard let moved = mcpjail_mremap(storage, capacity, newCapacity), moved != MAP_FAILED else {
            // Out of address space: keep the old buffer; the line will be treated as oversize.
            return
        }
        storage = moved
        capacity = newCapacity
    }

    private static func map(_ size: Int) -> UnsafeMutableRawPointer {
        guard let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            memory != MAP_FAILED
        else { fatalError("mcpjail: cannot map a \(size)-byte relay buffer: out of memory") }
        return memory
    }
}
