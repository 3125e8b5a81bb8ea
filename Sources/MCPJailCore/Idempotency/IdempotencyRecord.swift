/// The process that holds an in-flight call, named so that a reused pid does not pass for it:
/// the boot, the pid, and the process's start time (`/proc/PID/stat` field 22, clock ticks
/// since boot). A pid is reused only by a process that starts later, so the pair is unique
/// within a boot; the boot id makes it unique across reboots.
public struct IdempotencyOwner: Sendable, Hashable, CustomStringConvertible {
    /// `/proc/sys/kernel/random/boot_id`.
    public var bootID: String
    public var pid: Int32
    public var startTime: UInt64

    public init(bootID: String, pid: Int32, startTime: UInt64) {
        self.bootID = bootID
        self.pid = pid
        self.startTime = startTime
    }

    public var description: String { "pid \(pid) (started at tick \(startTime))" }
}

/// Tells whether the owner of an in-flight call is still running (the store asks it before
/// declaring a call's outcome unknown). The Linux answer reads `/proc`; tests substitute theirs.
public protocol IdempotencyOwnerLiveness: Sendable {
    func isAlive(_ owner: IdempotencyOwner) -> Bool
}

/// Where a recorded call stands.
public enum IdempotencyState: String, Sendable, Equatable, CaseIterable {
    /// Claimed by ``IdempotencyRecord/owner`` and (possibly) forwarded to the server.
    case inFlight = "in_flight"
    /// The result is stored (a tool error is a result too); retries replay it.
    case completed
    /// Started, but the server died or the call timed out: the write may or may not have
    /// happened, so the call is never run again (an operator can resolve or forget it).
    case unknown
}

/// What the store holds for one key.
public struct IdempotencyRecord: Sendable, Equatable {
    public var key: String
    public var fingerprint: String
    public var state: IdempotencyState
    /// Who began the call (and, while ``state`` is in flight, holds it).
    public var owner: IdempotencyOwner
    public var subject: String
    public var server: String
    public var tool: String
    public var suppliedKey: String?
    /// Seconds since the epoch.
    public var createdAt: Double
    public var updatedAt: Double
    /// After this the key counts as absent (and ``IdempotencyStore/prune(now:)`` deletes it).
    public var expiresAt: Double
    /// The stored result was written by an operator (`mcpjail idempotency resolve`).
    public var resolvedByOperator: Bool
    /// The size of the stored result, 0 when there is none.
    public var resultSize: Int
    /// The stored result's bytes; nil when there is none or when the record comes from
    /// ``IdempotencyStore/list(now:)``, which leaves results out.
    public var result: [UInt8]?

    public init(
        key: String, fingerprint: String, state: IdempotencyState, owner: IdempotencyOwner, subject: String,
        server: String, tool: String, suppliedKey: String?, createdAt: Double, updatedAt: Double, expiresAt: Double,
        resolvedByOperator: Bool, resultSize: Int, result: [UInt8]?
    ) {
        self.key = key
        self.fingerprint = fingerprint
        self.state = state
        self.owner = owner
        self.subject = subject
        self.server = server
        self.tool = tool
        self.suppliedKey = suppliedKey
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.expiresAt = expiresAt
        self.resolvedByOperator = resolvedByOperator
        self.resultSize = resultSize
        self.result = result
    }

    /// Only a completed call expires. One in flight or of unknown outcome stays until it
    /// completes or an operator settles it (`mcpjail idempotency resolve|forget`): expiring
    /// it would let a retry run a write that may have happened.
    public func isExpired(now: Double) -> Bool { state == .completed && now >= expiresAt }
}

/// What the relay does with a write call, as ``IdempotencyStore/begin(_:owner:ttl:now:)``
/// decides it.
///
/// The state machine of one key ("absent" includes expired; the ttl runs from begin, and
/// again from complete or resolve):
///
///     absent    ──begin──────────────────────────────▶ in_flight(owner)   decision .execute
///     in_flight ──begin, owner alive─────────────────▶ (unchanged)        decision .inFlight
///     in_flight ──complete(owner)────────────────────▶ completed
///     in_flight ──markUnknown(owner)─────────────────▶ unknown
///     in_flight ──begin, owner dead──────────────────▶ unknown            decision .outcomeUnknown
///     unknown   ──begin──────────────────────────────▶ (unchanged)        decision .outcomeUnknown
///     unknown   ──complete(owner), a late result─────▶ completed
///     completed ──begin──────────────────────────────▶ (unchanged)        decision .replay(result)
///     any       ──resolve (operator)─────────────────▶ completed (an operator's result)
///     any       ──forget (operator), or the ttl──────▶ absent
///
/// A begin whose fingerprint differs from the stored one gets `.mismatch` in every state and
/// changes nothing.
public enum IdempotencyDecision: Sendable, Equatable {
    /// This call now holds the key (recorded durably): forward it, then ``IdempotencyStore/complete(key:owner:result:now:)``.
    case execute
    /// The call already ran: answer with these result bytes, do not contact the server.
    case replay([UInt8])
    /// A live process is running this call right now: wait for it
    /// (``IdempotencyStore/waitForCompletion(_:owner:ttl:timeout:now:pause:)``) or answer `conflict`.
    case inFlight
    /// The key was used for different arguments: answer `idempotency_mismatch`.
    case mismatch
    /// The call started but its outcome is unknown: answer `outcome_unknown`, never re-run.
    case outcomeUnknown

    /// The decision for a call with `fingerprint` given what the store holds for its key.
    /// Pure: the store runs it inside its transaction and persists what it implies (a new
    /// in-flight record for `.execute`, the unknown state when an in-flight owner is dead).
    public static func decide(
        existing: IdempotencyRecord?, fingerprint: String, now: Double,
        isAlive: (IdempotencyOwner) -> Bool
    ) -> IdempotencyDecision {
        guard let existing, !existing.isExpired(now: now) else { return .execute }
        guard existing.fingerprint == fingerprint else { return .mismatch }
        switch existing.state {
        case .completed: return .replay(existing.result ?? [])
        case .unknown: return .outcomeUnknown
        case .inFlight: return isAlive(existing.owner) ? .inFlight : .outcomeUnknown
        }
    }

    /// What the model gets instead of a result, for the decisions that refuse the call. For
    /// `.inFlight` this is the answer after waiting has timed out. nil for `.execute` and `.replay`.
    public var refusal: SafeError? {
        switch self {
        case .execute, .replay: return nil
        case .inFlight: return IdempotencyErrors.conflict
        case .mismatch: return IdempotencyErrors.mismatch
        case .outcomeUnknown: return IdempotencyErrors.outcomeUnknown
        }
    }
}

/// The model-facing errors of idempotency, and the result an operator's resolution stores.
public enum IdempotencyErrors {
    public static let conflict = SafeError(
        .conflict, "a call with the same idempotency key is still running; retry later to get its result",
        retryable: true)
    public static let mismatch = SafeError(
        .idempotencyMismatch,
        "this idempotency key was already used for a call with different arguments; use a new key",
        retryable: false)
    public static let outcomeUnknown = SafeError(
        .outcomeUnknown,
        "a call with this idempotency key started but its outcome is unknown (the server stopped or timed out "
            + "mid-call); it will not be run again: check whether it took effect before using a new key",
        retryable: false)

    /// The tool result `mcpjail idempotency resolve KEY` stores when the operator gives none:
    /// an error result saying an operator resolved the outcome, so retries get this instead of
    /// `outcome_unknown`. One line of compact JSON (the `result` object of a `tools/call`).
    public static let operatorResolvedResult: [UInt8] = {
        let message = "the outcome of this call was resolved by an operator without a recorded result; "
            + "check whether it took effect before acting on it"
        let result: JSONValue = [
            "content": [["type": "text", "text": .string("outcome_unknown: " + message)]],
            "structuredContent": [
                "error": ["type": "outcome_unknown", "message": .string(message), "retryable": false]
            ],
            "isError": true,
            "resultType": "complete",
        ]
        return JSONWriter.bytes(result)
    }()
}
