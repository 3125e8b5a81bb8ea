import FoundationEssentials
import Glibc
import Logging
import MCPJailCore

/// Idempotency for the profile's write tools (`[tools.NAME] write = true`): a retried
/// write never runs twice, whatever the server does.
///
/// Before a write is forwarded its key is recorded as in flight, durably, in the user's
/// ``IdempotencyStore`` (shared by every `mcpjail run` of the user); its result is stored
/// before the client sees it. A repeat gets the stored result without reaching the server
/// (marked `_meta["dev.mcpjail/replayed"]: true`); a repeat while the first runs waits for
/// it; a key whose call had no result when its relay died, or whose server died or timed
/// out, is `outcome_unknown` until an operator settles it (`mcpjail idempotency`).
public final class WriteGate: Sendable {
    /// What to do with a write call.
    enum Start {
        /// First of its key: forward it (its key is now in flight).
        case execute(IdempotentCall)
        /// Done before: answer with the stored result.
        case replay(IdempotentCall, [UInt8])
        /// The same operation is running: wait for its result (off the client's thread).
        case wait(IdempotentCall)
        /// Refused before the server: mismatch, unknown outcome, bad key, store failure.
        case refuse(IdempotentCall?, Refusal)
    }

    static let replayedKey = "dev.mcpjail/replayed"
    static let checkName = "idempotency"

    private let store: any IdempotencyStore
    private let owner: IdempotencyOwner
    private let server: String
    private let logger: Logger

    init(store: any IdempotencyStore, owner: IdempotencyOwner, server: String, logger: Logger) {
        self.store = store
        self.owner = owner
        self.server = server
        self.logger = logger
    }

    func start(
        tool: String, policy: Profile.ToolPolicy, subject: String, arguments: JSONValue?, suppliedKey: JSONValue?
    ) -> Start {
        let call: IdempotentCall
        do {
            call = try IdempotencyKeys.call(
                subject: subject, server: server, tool: tool, arguments: arguments,
                meta: suppliedKey.map { .object(JSONObject([(IdempotencyKeys.metaName, $0)])) },
                fields: policy.idempotencyFields)
        } catch {
            return .refuse(nil, Refusal(error.safeError, decidedBy: Self.checkName))
        }
        let decision: IdempotencyDecision
        do {
            decision = try store.begin(call, owner: owner, ttl: policy.idempotencyTTL.secondsValue, now: IdempotencyDefaults.now())
        } catch {
            return .refuse(call, storeFailure(error))
        }
        return start(call, after: decision)
    }

    /// Waits (on the calling thread) for the running call with the same key.
    func wait(for call: IdempotentCall, policy: Profile.ToolPolicy, timeout: Duration) -> Start {
        let decision: IdempotencyDecision
        do {
            decision = try store.waitForCompletion(call, owner: owner, ttl: policy.idempotencyTTL.secondsValue, timeout: timeout)
        } catch {
            return .refuse(call, storeFailure(error))
        }
        if decision == .inFlight { return .refuse(call, Refusal(IdempotencyErrors.conflict, decidedBy: Self.checkName)) }
        return start(call, after: decision)
    }

    private func start(_ call: IdempotentCall, after decision: IdempotencyDecision) -> Start {
        switch decision {
        case .execute: return .execute(call)
        case .replay(let stored): return .replay(call, stored)
        case .inFlight: return .wait(call)
        case .mismatch: return .refuse(call, Refusal(IdempotencyErrors.mismatch, decidedBy: Self.checkName))
        case .outcomeUnknown:
            var error = IdempotencyErrors.outcomeUnknown
            error.message += " (key \(call.key); an operator settles it with `mcpjail idempotency resolve` or `forget`)"
            return .refuse(call, Refusal(error, decidedBy: Self.checkName))
        }
    }

    /// Stores the answer to an executed write before the client gets it: the `result`, or
    /// the JSON-RPC `error` (a repeat must not run it again, and gets the same answer).
    func finish(_ call: IdempotentCall, response: UnsafeRawBufferPointer) {
        let stored = Self.storedResult(response)
        do {
            if try !store.complete(key: call.key, owner: owner, result: stored, now: IdempotencyDefaults.now()) {
                logger.warning("the result of write \(call.tool) (key \(call.key)) was not stored: an operator settled the key meanwhile")
            }
        } catch {
            logger.error("could not store the result of write \(call.tool) (key \(call.key)): \(error)")
        }
    }

    /// The write's outcome is unknown (timeout, the server died): never run it again.
    func abandon(_ call: IdempotentCall) {
        do {
            _ = try store.markUnknown(key: call.key, owner: owner, now: IdempotencyDefaults.now())
        } catch {
            logger.error("could not mark write \(call.tool) (key \(call.key)) as unknown: \(error)")
        }
    }

    private func storeFailure(_ error: MCPJailError) -> Refusal {
        logger.error("idempotency store: \(error)")
        return Refusal(
            SafeError(.internal, "the idempotency store is unavailable, so the write was not run", retryable: true),
            decidedBy: Self.checkName)
    }

    /// A stored answer replayed: the line for the client and what the audit record says.
    struct Replay {
        var line: [UInt8]
        var outcome: AuditRecord.Outcome
        var errorCode: Int?
    }

    /// Replays a stored answer: a result, marked as a replay in its `_meta`; or a stored
    /// JSON-RPC error, marked in its `data` when that is absent or an object.
    static func replay(id: RequestID, stored: [UInt8]) -> Replay {
        let parsed = try? JSONParser.parse(stored)
        let member: String
        let value: JSONObject
        var outcome = AuditRecord.Outcome.ok
        var errorCode: Int? = nil
        if var error = storedError(parsed) {
            switch error["data"] {
            case nil:
                error["data"] = .object(JSONObject([(replayedKey, .bool(true))]))
            case .object(var data)?:
                data[replayedKey] = .bool(true)
                error["data"] = .object(data)
            default:
                break
            }
            (member, value, outcome) = ("error", error, .protocolError)
            if case .number(let code)? = error["code"] { errorCode = Int(code.description) }
        } else {
            var object = parsed?.objectValue ?? JSONObject()
            if object["isError"] == .bool(true) { outcome = .toolError }
            var meta = object["_meta"]?.objectValue ?? JSONObject()
            meta[replayedKey] = .bool(true)
            object["_meta"] = .object(meta)
            (member, value) = ("result", object)
        }
        var line = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + Array(id.json.utf8) + Array(",\"\(member)\":".utf8)
        JSONWriter.append(.object(value), to: &line)
        line += Array("}\n".utf8)
        return Replay(line: line, outcome: outcome, errorCode: errorCode)
    }

    /// How a JSON-RPC error answer is stored: `{"dev.mcpjail/jsonrpcError": ERROR}`, the
    /// error object as the client got it (a result is stored as itself, always an object
    /// without that key of mcpjail's namespace).
    static let storedErrorKey = "dev.mcpjail/jsonrpcError"

    /// The error object of a stored JSON-RPC error answer, or nil for a stored result.
    static func storedError(_ stored: JSONValue?) -> JSONObject? {
        guard case .object(let object)? = stored, object.count == 1, case .object(let error)? = object[storedErrorKey] else {
            return nil
        }
        return error
    }

    static func storedResult(_ response: UnsafeRawBufferPointer) -> [UInt8] {
        guard let scanned = try? JSONScanner.scan(response) else { return IdempotencyErrors.operatorResolvedResult }
        if let result = scanned.member("result"), result.kind == .object {
            return Array(response[result.value.start..<result.value.end])
        }
        if let error = scanned.member("error"), error.kind == .object {
            var stored = Array("{\"\(storedErrorKey)\":".utf8)
            stored += response[error.value.start..<error.value.end]
            stored += Array("}".utf8)
            return stored
        }
        return IdempotencyErrors.operatorResolvedResult
    }
}
