import Logging
import MCPJailCore

/// An audit record whose arguments digest is still to be computed.
struct AuditEntry: Sendable {
    var record: AuditRecord
    var arguments: PendingCall.Arguments
}

/// Writes audit records on a thread of its own, so that hashing arguments and appending
/// to the log never delay a response. ``drain()`` at session end writes what is queued.
public final class AuditWriter: @unchecked Sendable {
    private let log: AuditLog
    private let context: SessionContext
    private let logger: Logger
    private let condition = Condition()
    // Guarded by `condition`.
    private var queue: [AuditEntry] = []
    private var writing = false
    private var failures = 0

    public init(log: AuditLog, context: SessionContext, logger: Logger) {
        self.log = log
        self.context = context
        self.logger = logger
        Threads.start("mcpjail-audit") { [self] in run() }
    }

    func enqueue(_ entry: AuditEntry) {
        condition.lock()
        queue.append(entry)
        condition.signal()
        condition.unlock()
    }

    /// Blocks until every record enqueued so far is written. Returns how many records
    /// could not be written in this session.
    @discardableResult
    public func drain() -> Int {
        condition.lock()
        defer { condition.unlock() }
        while !queue.isEmpty || writing { condition.wait() }
        return failures
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            writing = true
            condition.unlock()

            var failed = 0
            for entry in batch where !write(entry) { failed += 1 }

            condition.lock()
            writing = false
            failures += failed
            condition.broadcast()
            condition.unlock()
        }
    }

    private func write(_ entry: AuditEntry) -> Bool {
        var record = entry.record
        record.server = context.profile.name
        record.profileDigest = context.profile.digest
        record.session = context.sessionID
        switch entry.arguments {
        case .none: break
        case .bytes(let bytes): record.argumentsDigest = try? CanonicalDigest.sha256Hex(ofJSON: bytes)
        case .digest(let digest): record.argumentsDigest = digest
        }
        do {
            try log.append(record)
            return true
        } catch {
            logger.error("\(error)")
            return false
        }
    }
}
