import Logging
import MCPJailCore

/// An audit record whose arguments digest is still to be computed.
struct AuditEntry: Sendable {
    var record: AuditRecord
    var arguments: PendingCall.Arguments

    /// Replaces a copy of the arguments by their canonical digest.
    mutating func digestArguments() {
        if case .bytes(let bytes) = arguments {
            arguments = .digest(try? CanonicalDigest.sha256Hex(ofValidatedJSON: bytes))
        }
    }
}

/// Writes audit records on a thread of its own, so that hashing arguments and appending
/// to the log never delay a response. ``drain()`` at session end writes what is queued.
///
/// Records are written in batches: the thread wakes when ``batchSize`` records wait or
/// ``maxDelay`` after the first of them, and appends them with one lock and one write. A
/// busy session then costs one wake-up per batch instead of one per call; a record reaches
/// the file at most ``maxDelay`` after its response reached the client.
public final class AuditWriter: @unchecked Sendable {
    private let log: AuditLog
    private let context: SessionContext
    private let logger: Logger
    private let condition = Condition()
    // Guarded by `condition`.
    private var queue: [AuditEntry] = []
    private var writing = false
    private var draining = false
    private var failures = 0

    static let batchSize = 256
    static let maxDelay: UInt64 = 20_000_000  // ns

    public init(log: AuditLog, context: SessionContext, logger: Logger) {
        self.log = log
        self.context = context
        self.logger = logger
        Threads.start("mcpjail-audit", background: true) { [self] in run() }
    }

    func enqueue(contentsOf entries: [AuditEntry]) {
        guard !entries.isEmpty else { return }
        condition.lock()
        let wasEmpty = queue.isEmpty
        queue.append(contentsOf: entries)
        if wasEmpty || queue.count >= Self.batchSize { condition.signal() }
        condition.unlock()
    }

    func enqueue(_ entry: AuditEntry) {
        condition.lock()
        queue.append(entry)
        // Wake the writer for the first record (it starts its delay) and for a full batch.
        if queue.count == 1 || queue.count >= Self.batchSize { condition.signal() }
        condition.unlock()
    }

    /// Blocks until every record enqueued so far is written. Returns how many records
    /// could not be written in this session.
    @discardableResult
    public func drain() -> Int {
        condition.lock()
        defer { condition.unlock() }
        draining = true
        condition.broadcast()
        while !queue.isEmpty || writing { condition.wait() }
        draining = false
        return failures
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let deadline = monotonicNanoseconds() + Self.maxDelay
            while queue.count < Self.batchSize, !draining, monotonicNanoseconds() < deadline {
                condition.wait(untilMonotonic: deadline)
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            writing = true
            condition.unlock()

            let failed = write(batch)

            condition.lock()
            writing = false
            failures += failed
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Completes and appends `batch`; returns how many records were lost.
    private func write(_ batch: [AuditEntry]) -> Int {
        let records = batch.map { entry in
            var entry = entry
            entry.digestArguments()  // refusals arrive undigested
            var record = entry.record
            record.server = context.profile.name
            record.profileDigest = context.profile.digest
            record.session = context.sessionID
            record.auth = context.profile.auth.required ? "required" : "off"
            record.pinned = context.profile.server.pinned
            if case .digest(let digest) = entry.arguments { record.argumentsDigest = digest }
            return record
        }
        do {
            try log.append(contentsOf: records)
            return 0
        } catch {
            logger.error("\(error)")
            return records.count
        }
    }
}
