import FoundationEssentials
import Glibc

/// Durable memory of write calls, so that a retried call never executes twice.
///
/// The relay calls ``begin(_:owner:ttl:now:)`` before forwarding a write `tools/call` and
/// forwards only on ``IdempotencyDecision/execute``; it calls ``complete(key:owner:result:now:)``
/// before answering the client, and ``markUnknown(key:owner:now:)`` when the server dies or
/// the call times out. The states and transitions are those of ``IdempotencyDecision``.
///
/// Every method is synchronous (the relay runs on its own threads, not Swift concurrency) and
/// safe to call from any thread. A method that cannot reach or trust its storage throws an
/// ``MCPJailError`` naming it: never guess `.execute`. Times are seconds since the epoch,
/// passed in so tests control them. SQLite implements it today (`SQLiteIdempotencyStore`,
/// one file per user); a shared database can implement it for several hosts without changing
/// the relay.
public protocol IdempotencyStore: Sendable {
    /// Decides `call` and, for `.execute`, records it durably as in flight for `owner` before
    /// returning, atomically with respect to every other process using the store: of all the
    /// callers racing on one key, exactly one gets `.execute`. A key older than its ttl counts
    /// as absent. An in-flight record whose owner is dead becomes `unknown` here.
    func begin(_ call: IdempotentCall, owner: IdempotencyOwner, ttl: Double, now: Double) throws(MCPJailError)
        -> IdempotencyDecision

    /// What ``begin(_:owner:ttl:now:)`` would decide, without claiming or changing anything
    /// (`.execute` means the key is absent). For polling.
    func peek(key: String, fingerprint: String, now: Double) throws(MCPJailError) -> IdempotencyDecision

    /// Stores `result` (the `result` object of the `tools/call` response as one line of JSON;
    /// a tool error is stored like a success) durably, when `owner` holds the key in flight or
    /// marked it unknown (a late result). The ttl restarts at `now`. Returns false, storing
    /// nothing, when the key is absent, held by someone else, already completed or resolved.
    @discardableResult
    func complete(key: String, owner: IdempotencyOwner, result: [UInt8], now: Double) throws(MCPJailError) -> Bool

    /// Marks the key's outcome unknown (the server died or the call timed out mid-call: the
    /// write may have happened, so it must never run again). Only while `owner` holds it in
    /// flight; returns whether it did.
    @discardableResult
    func markUnknown(key: String, owner: IdempotencyOwner, now: Double) throws(MCPJailError) -> Bool

    /// The record of `key` with its result, nil when absent or expired.
    func record(key: String, now: Double) throws(MCPJailError) -> IdempotencyRecord?

    /// Every unexpired record, oldest first, without result bytes (``IdempotencyRecord/resultSize`` says how many).
    func list(now: Double) throws(MCPJailError) -> [IdempotencyRecord]

    /// Operator: completes `key` with `result`, or with ``IdempotencyErrors/operatorResolvedResult``
    /// when nil, whatever its state; retries then replay it. Returns false when the key is absent.
    @discardableResult
    func resolve(key: String, result: [UInt8]?, now: Double) throws(MCPJailError) -> Bool

    /// Operator: deletes `key`, so the next call with it executes. Returns false when absent.
    @discardableResult
    func forget(key: String) throws(MCPJailError) -> Bool

    /// Deletes expired records; returns how many. Stores also run it on their own, cheaply.
    @discardableResult
    func prune(now: Double) throws(MCPJailError) -> Int
}

/// Defaults shared by every store.
public enum IdempotencyDefaults {
    /// How long a key is remembered after its call began or completed: 24 hours.
    public static let ttl: Double = 24 * 60 * 60
    /// The first and the longest pause between polls of ``IdempotencyStore/waitForCompletion(_:owner:ttl:timeout:now:pause:)``.
    public static let firstPoll: Duration = .milliseconds(1)
    public static let longestPoll: Duration = .milliseconds(20)

    /// The wall clock, seconds since the epoch.
    public static func now() -> Double { Date().timeIntervalSince1970 }

    /// Blocks the calling thread for `duration`.
    public static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var pause = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&pause, &remaining) != 0 && errno == EINTR { pause = remaining }
    }

    /// The pause after `previous` (nil: the first): doubling from 1 ms, at most 20 ms.
    public static func nextPoll(after previous: Duration?) -> Duration {
        guard let previous else { return firstPoll }
        return min(previous * 2, longestPoll)
    }
}

extension IdempotencyStore {
    /// For a duplicate that found its key `.inFlight`: polls (1 ms, doubling to 20 ms) until
    /// the call completes (`.replay`), becomes unknown or its owner dies (`.outcomeUnknown`),
    /// or `timeout` passes (`.inFlight`: answer ``IdempotencyErrors/conflict``, retryable). If
    /// the key disappears meanwhile (an operator forgot it), this call begins it and may get
    /// `.execute`.
    public func waitForCompletion(
        _ call: IdempotentCall, owner: IdempotencyOwner, ttl: Double = IdempotencyDefaults.ttl,
        timeout: Duration, now: () -> Double = IdempotencyDefaults.now,
        pause: (Duration) -> Void = IdempotencyDefaults.sleep
    ) throws(MCPJailError) -> IdempotencyDecision {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var delay: Duration? = nil
        while true {
            var decision = try peek(key: call.key, fingerprint: call.fingerprint, now: now())
            if decision == .execute {
                decision = try begin(call, owner: owner, ttl: ttl, now: now())
            }
            guard decision == .inFlight else { return decision }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return .inFlight }
            let next = IdempotencyDefaults.nextPoll(after: delay)
            delay = next
            pause(min(next, remaining))
        }
    }

    /// ``begin(_:owner:ttl:now:)`` with the default ttl and the wall clock.
    public func begin(_ call: IdempotentCall, owner: IdempotencyOwner) throws(MCPJailError) -> IdempotencyDecision {
        try begin(call, owner: owner, ttl: IdempotencyDefaults.ttl, now: IdempotencyDefaults.now())
    }
}
