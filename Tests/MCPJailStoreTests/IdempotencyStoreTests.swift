import Foundation
import MCPJailCore
import Testing

@testable import MCPJailStore

@Suite("Idempotency store: states and transitions")
struct IdempotencyStoreTests {
    @Test("first begin executes; a repeat is in flight; after complete every instance replays the same bytes")
    func executeThenReplay() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let call = writeCall(1)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
        let inFlight = try #require(try store.record(key: call.key, now: t0))
        #expect(inFlight.state == .inFlight && inFlight.owner == me && inFlight.result == nil)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 1) == .inFlight)

        #expect(try store.complete(key: call.key, owner: me, result: okResult, now: t0 + 2))
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 3) == .replay(okResult))
        #expect(try store.peek(key: call.key, fingerprint: call.fingerprint, now: t0 + 3) == .replay(okResult))
        // Completing twice stores nothing more.
        #expect(try !store.complete(key: call.key, owner: me, result: errorResult, now: t0 + 4))

        let other = try temp.open()  // another connection, as another process would have
        #expect(try other.begin(call, owner: me, ttl: 60, now: t0 + 5) == .replay(okResult))
        let done = try #require(try other.record(key: call.key, now: t0 + 5))
        #expect(done.state == .completed && done.result == okResult && done.resultSize == okResult.count)
        #expect(done.subject == "local" && done.server == "github" && done.tool == "create_issue")
        #expect(done.createdAt == t0 && done.updatedAt == t0 + 2 && done.expiresAt == t0 + 62)
    }

    @Test("a tool error is stored and replayed like a success")
    func toolErrorsReplay() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let call = writeCall(2)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.complete(key: call.key, owner: me, result: errorResult, now: t0))
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .replay(errorResult))
    }

    @Test("the same key with other arguments is a mismatch, in flight or completed, and changes nothing")
    func mismatch() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let first = writeCall(1, suppliedKey: "order-7")
        let second = writeCall(2, suppliedKey: "order-7")
        #expect(first.key == second.key && first.fingerprint != second.fingerprint)
        #expect(try store.begin(first, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.begin(second, owner: me, ttl: 60, now: t0) == .mismatch)
        #expect(try store.complete(key: first.key, owner: me, result: okResult, now: t0))
        #expect(try store.begin(second, owner: me, ttl: 60, now: t0) == .mismatch)
        #expect(try store.begin(first, owner: me, ttl: 60, now: t0) == .replay(okResult))
        let stored = try #require(try store.record(key: first.key, now: t0))
        #expect(stored.fingerprint == first.fingerprint && stored.suppliedKey == "order-7")
    }

    @Test("an owner that was reaped makes its call's outcome unknown, durably")
    func reapedOwner() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        let owner = try #require(ProcessOwner.of(pid: sleeper.processIdentifier))
        #expect(ProcessLiveness().isAlive(owner))

        let call = writeCall(3)
        #expect(try store.begin(call, owner: owner, ttl: 60, now: t0) == .execute)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .inFlight)
        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
        #expect(!ProcessLiveness().isAlive(owner))
        #expect(ProcessOwner.of(pid: sleeper.processIdentifier) == nil)

        #expect(try store.peek(key: call.key, fingerprint: call.fingerprint, now: t0) == .outcomeUnknown)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 1) == .outcomeUnknown)
        let record = try #require(try store.record(key: call.key, now: t0 + 1))
        #expect(record.state == .unknown && record.updatedAt == t0 + 1)
        // Recorded: even a liveness that claims everyone alive now sees it unknown.
        let trusting = try temp.open(liveness: SwitchableLiveness(alive: true))
        #expect(try trusting.begin(call, owner: me, ttl: 60, now: t0 + 2) == .outcomeUnknown)
    }

    @Test("a reused pid (other start time) or another boot is not the owner")
    func reusedPidIsDead() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        var impostor = me
        impostor.startTime += 1
        #expect(!ProcessLiveness().isAlive(impostor))
        var otherBoot = me
        otherBoot.bootID = "00000000-0000-0000-0000-000000000000"
        #expect(!ProcessLiveness().isAlive(otherBoot))
        #expect(ProcessLiveness().isAlive(me))

        for (n, owner) in [(4, impostor), (5, otherBoot)] {
            let call = writeCall(n)
            #expect(try store.begin(call, owner: owner, ttl: 60, now: t0) == .execute)
            #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .outcomeUnknown)
        }
    }

    @Test("markUnknown: only the owner, only in flight; a late result from the owner still completes it")
    func markUnknown() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let call = writeCall(6)
        var stranger = me
        stranger.pid = 1
        #expect(try !store.markUnknown(key: call.key, owner: me, now: t0))  // absent
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try !store.markUnknown(key: call.key, owner: stranger, now: t0))
        #expect(try !store.complete(key: call.key, owner: stranger, result: okResult, now: t0))
        #expect(try store.markUnknown(key: call.key, owner: me, now: t0 + 1))
        #expect(try !store.markUnknown(key: call.key, owner: me, now: t0 + 1))
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 2) == .outcomeUnknown)
        #expect(try store.begin(call, owner: stranger, ttl: 60, now: t0 + 2) == .outcomeUnknown)

        #expect(try store.complete(key: call.key, owner: me, result: okResult, now: t0 + 3))
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 4) == .replay(okResult))
    }

    @Test("resolve: the operator's result, or the default error result; a late result does not overwrite it")
    func resolve() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        #expect(try !store.resolve(key: writeCall(7).key, result: nil, now: t0))

        let unknown = writeCall(7)
        #expect(try store.begin(unknown, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.markUnknown(key: unknown.key, owner: me, now: t0))
        #expect(try store.resolve(key: unknown.key, result: nil, now: t0 + 10))
        #expect(try store.begin(unknown, owner: me, ttl: 60, now: t0 + 11) == .replay(IdempotencyErrors.operatorResolvedResult))
        #expect(try !store.complete(key: unknown.key, owner: me, result: okResult, now: t0 + 12))
        let record = try #require(try store.record(key: unknown.key, now: t0 + 12))
        #expect(record.resolvedByOperator && record.state == .completed && record.expiresAt == t0 + 70)

        let given = writeCall(8)
        #expect(try store.begin(given, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.resolve(key: given.key, result: okResult, now: t0))
        #expect(try store.begin(given, owner: me, ttl: 60, now: t0) == .replay(okResult))
    }

    @Test("forget: the next begin executes again")
    func forget() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let call = writeCall(10)
        #expect(try !store.forget(key: call.key))
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.markUnknown(key: call.key, owner: me, now: t0))
        #expect(try store.forget(key: call.key))
        #expect(try store.record(key: call.key, now: t0) == nil)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
    }

    @Test("a key past its ttl counts as absent; prune deletes exactly the expired ones")
    func ttlAndPrune() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let call = writeCall(11)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.complete(key: call.key, owner: me, result: okResult, now: t0 + 5))
        // The ttl restarts at completion.
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 64.999) == .replay(okResult))
        #expect(try store.record(key: call.key, now: t0 + 65) == nil)
        #expect(try store.list(now: t0 + 65).isEmpty)
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0 + 65) == .execute)  // replaces the expired row
        #expect(try store.record(key: call.key, now: t0 + 65)?.state == .inFlight)

        for (n, ttl) in [(12, 10.0), (13, 20.0), (14, 30.0)] {
            #expect(try store.begin(writeCall(n), owner: me, ttl: ttl, now: t0) == .execute)
            #expect(try store.complete(key: writeCall(n).key, owner: me, result: okResult, now: t0))
        }
        #expect(try store.list(now: t0 + 15).count == 3)  // 11 (new), 13, 14
        #expect(try store.prune(now: t0 + 15) == 1)
        #expect(try store.prune(now: t0 + 15) == 0)
        #expect(try store.prune(now: t0 + 30) == 2)
        #expect(try store.list(now: t0 + 30).map(\.key) == [call.key])
    }

    @Test("a call in flight or of unknown outcome never expires: past its ttl it is still refused, listed and kept")
    func unsettledCallsDoNotExpire() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let lost = writeCall(15), running = writeCall(16)
        #expect(try store.begin(lost, owner: me, ttl: 10, now: t0) == .execute)
        #expect(try store.markUnknown(key: lost.key, owner: me, now: t0 + 1))
        #expect(try store.begin(running, owner: me, ttl: 10, now: t0) == .execute)
        let later = t0 + 86_400 * 30
        #expect(try store.prune(now: later) == 0)
        #expect(try store.begin(lost, owner: me, ttl: 10, now: later) == .outcomeUnknown)
        #expect(try store.begin(running, owner: me, ttl: 10, now: later) == .inFlight)  // its owner (this process) lives
        #expect(Set(try store.list(now: later).map(\.key)) == [lost.key, running.key])
        #expect(try store.record(key: lost.key, now: later)?.state == .unknown)
        // Settled, the ttl runs from the settlement.
        #expect(try store.resolve(key: lost.key, result: nil, now: later))
        #expect(try store.complete(key: running.key, owner: me, result: okResult, now: later))
        #expect(try store.prune(now: later + 9) == 0)
        #expect(try store.prune(now: later + 10) == 2)
    }

    @Test("begin prunes on its own every pruneInterval calls, and opening prunes")
    func opportunisticPrune() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try SQLiteIdempotencyStore(path: temp.path, pruneInterval: 4, now: t0)
        // Three completed calls whose keys expire at t0 + 1.
        for n in 0..<3 {
            #expect(try store.begin(writeCall(n), owner: me, ttl: 1, now: t0) == .execute)
            #expect(try store.complete(key: writeCall(n).key, owner: me, result: okResult, now: t0))
        }
        // forget finds a row whether or not it expired: nothing has pruned 0 yet.
        #expect(try store.forget(key: writeCall(0).key))
        // The fourth begin (at t0 + 2) prunes first: 1 and 2 are gone.
        #expect(try store.begin(writeCall(100), owner: me, ttl: 60, now: t0 + 2) == .execute)
        #expect(try !store.forget(key: writeCall(1).key))
        #expect(try !store.forget(key: writeCall(2).key))
        // Opening a store prunes too.
        #expect(try store.begin(writeCall(101), owner: me, ttl: 1, now: t0) == .execute)
        #expect(try store.complete(key: writeCall(101).key, owner: me, result: okResult, now: t0))
        _ = try SQLiteIdempotencyStore(path: temp.path, now: t0 + 5)
        #expect(try !store.forget(key: writeCall(101).key))
        #expect(try store.forget(key: writeCall(100).key))
    }

    @Test("list: unexpired records, oldest first, without result bytes")
    func list() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let a = writeCall(20, suppliedKey: "client-key")
        let b = writeCall(21, tool: "close_issue")
        #expect(try store.begin(a, owner: me, ttl: 60, now: t0) == .execute)
        #expect(try store.begin(b, owner: me, ttl: 60, now: t0 + 1) == .execute)
        #expect(try store.complete(key: a.key, owner: me, result: okResult, now: t0 + 2))
        let records = try store.list(now: t0 + 3)
        #expect(records.map(\.key) == [a.key, b.key])
        #expect(records[0].state == .completed && records[0].result == nil && records[0].resultSize == okResult.count)
        #expect(records[0].suppliedKey == "client-key" && records[1].suppliedKey == nil)
        #expect(records[1].state == .inFlight && records[1].tool == "close_issue" && records[1].resultSize == 0)
    }

    @Test("waitForCompletion returns the replay once the owner completes")
    func waitSeesCompletion() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let owner = try temp.open()
        let waiter = try temp.open()
        let call = writeCall(30)
        #expect(try owner.begin(call, owner: me) == .execute)
        let finisher = Thread {
            Thread.sleep(forTimeInterval: 0.05)
            _ = try? owner.complete(key: call.key, owner: me, result: okResult, now: IdempotencyDefaults.now())
        }
        finisher.start()
        let started = ContinuousClock.now
        let decision = try waiter.waitForCompletion(call, owner: me, timeout: .seconds(10))
        #expect(decision == .replay(okResult))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("waitForCompletion: timeout is in flight (conflict); a dead owner is unknown; a forgotten key executes")
    func waitOutcomes() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let liveness = SwitchableLiveness(alive: true)
        let store = try temp.open(liveness: liveness)
        let call = writeCall(31)
        #expect(try store.begin(call, owner: me) == .execute)

        let pauses = PauseLog()
        let started = ContinuousClock.now
        let timedOut = try store.waitForCompletion(call, owner: me, timeout: .milliseconds(60), pause: pauses.sleep)
        #expect(timedOut == .inFlight && timedOut.refusal?.kind == .conflict && timedOut.refusal?.retryable == true)
        #expect(ContinuousClock.now - started >= .milliseconds(60))
        #expect(Array(pauses.all.prefix(5)) == [1, 2, 4, 8, 16].map { Duration.milliseconds($0) })
        #expect(pauses.all.allSatisfy { $0 <= .milliseconds(20) })

        liveness.alive.store(false, ordering: .sequentiallyConsistent)
        #expect(try store.waitForCompletion(call, owner: me, timeout: .seconds(5)) == .outcomeUnknown)

        let other = writeCall(32)
        liveness.alive.store(true, ordering: .sequentiallyConsistent)
        #expect(try store.begin(other, owner: me) == .execute)
        let forgetter = Thread {
            Thread.sleep(forTimeInterval: 0.03)
            _ = try? store.forget(key: other.key)
        }
        forgetter.start()
        #expect(try store.waitForCompletion(other, owner: me, timeout: .seconds(5)) == .execute)
        #expect(try store.record(key: other.key, now: IdempotencyDefaults.now())?.state == .inFlight)
    }
}

/// Records the pauses of a wait, and sleeps them.
final class PauseLog: @unchecked Sendable {
    private let lock = NSLock()
    private var pauses: [Duration] = []
    var all: [Duration] { lock.withLock { pauses } }
    func sleep(_ duration: Duration) {
        lock.withLock { pauses.append(duration) }
        IdempotencyDefaults.sleep(duration)
    }
}
