import Testing

@testable import MCPJailCore

private let owner = IdempotencyOwner(bootID: "boot", pid: 42, startTime: 1000)

private func record(
    _ state: IdempotencyState, fingerprint: String = "fp", expiresAt: Double = 200, result: [UInt8]? = nil
) -> IdempotencyRecord {
    IdempotencyRecord(
        key: "k", fingerprint: fingerprint, state: state, owner: owner, subject: "s", server: "srv", tool: "t",
        suppliedKey: nil, createdAt: 100, updatedAt: 100, expiresAt: expiresAt, resolvedByOperator: false,
        resultSize: result?.count ?? 0, result: result)
}

private func decide(_ existing: IdempotencyRecord?, fingerprint: String = "fp", now: Double = 150, alive: Bool = true)
    -> IdempotencyDecision
{
    IdempotencyDecision.decide(existing: existing, fingerprint: fingerprint, now: now, isAlive: { _ in alive })
}

@Suite("Idempotency decisions")
struct IdempotencyDecisionTests {
    @Test func absentOrExpiredExecutes() {
        #expect(decide(nil) == .execute)
        #expect(decide(record(.completed, result: [1]), now: 200) == .execute)  // expiry is exclusive
        // Only completed calls expire: one in flight or of unknown outcome may have written.
        #expect(decide(record(.inFlight), now: 250, alive: true) == .inFlight)
        #expect(decide(record(.inFlight), now: 250, alive: false) == .outcomeUnknown)
        #expect(decide(record(.unknown), now: 200.001) == .outcomeUnknown)
        // An expired key with other arguments is absent too, not a mismatch.
        #expect(decide(record(.completed), fingerprint: "other", now: 300) == .execute)
    }

    @Test func byState() {
        #expect(decide(record(.completed, result: Array("{}".utf8))) == .replay(Array("{}".utf8)))
        #expect(decide(record(.inFlight), alive: true) == .inFlight)
        #expect(decide(record(.inFlight), alive: false) == .outcomeUnknown)
        #expect(decide(record(.unknown), alive: true) == .outcomeUnknown)
    }

    @Test("a different fingerprint is a mismatch in every state, checked before liveness")
    func mismatchFirst() {
        for state in IdempotencyState.allCases {
            for alive in [true, false] {
                #expect(decide(record(state), fingerprint: "other", alive: alive) == .mismatch)
            }
        }
    }

    @Test("the refusals the model sees")
    func refusals() {
        #expect(IdempotencyDecision.execute.refusal == nil)
        #expect(IdempotencyDecision.replay([]).refusal == nil)
        let conflict = IdempotencyDecision.inFlight.refusal
        #expect(conflict?.kind.rawValue == "conflict" && conflict?.retryable == true)
        let mismatch = IdempotencyDecision.mismatch.refusal
        #expect(mismatch?.kind.rawValue == "idempotency_mismatch" && mismatch?.retryable == false)
        let unknown = IdempotencyDecision.outcomeUnknown.refusal
        #expect(unknown?.kind.rawValue == "outcome_unknown" && unknown?.retryable == false)
    }

    @Test("the operator's resolution is a one-line error tool result")
    func operatorResult() throws {
        let bytes = IdempotencyErrors.operatorResolvedResult
        #expect(!bytes.contains(UInt8(ascii: "\n")))
        let value = try JSONParser.parse(bytes)
        #expect(value["isError"] == .bool(true))
        #expect(value["structuredContent"]?["error"]?["type"] == "outcome_unknown")
        #expect(value["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("resolved by an operator") == true)
    }

    @Test("polling backs off from 1 ms, doubling, to at most 20 ms")
    func backoff() {
        var delays: [Duration] = []
        var previous: Duration? = nil
        for _ in 0..<7 {
            let next = IdempotencyDefaults.nextPoll(after: previous)
            delays.append(next)
            previous = next
        }
        #expect(delays == [1, 2, 4, 8, 16, 20, 20].map { Duration.milliseconds($0) })
    }
}
