import Dispatch
import Foundation
import MCPJailCore
import Synchronization
import Testing

@testable import MCPJailStore

/// Values appended from many threads.
final class Collector<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
}

/// Runs `body(i)` on `count` threads released at the same instant (each spins, yielding,
/// until all are ready and the flag drops); returns when all are done. `released` runs just
/// before the release.
func race(_ count: Int, _ body: @escaping @Sendable (Int) -> Void, whileWaiting released: () -> Void = {}) {
    let gate = RaceGate()
    let done = DispatchGroup()
    for i in 0..<count {
        done.enter()
        Thread {
            gate.ready.add(1, ordering: .sequentiallyConsistent)
            while !gate.go.load(ordering: .sequentiallyConsistent) { sched_yield() }
            body(i)
            done.leave()
        }.start()
    }
    while gate.ready.load(ordering: .sequentiallyConsistent) < count { sched_yield() }
    released()
    gate.go.store(true, ordering: .sequentiallyConsistent)
    done.wait()
}

final class RaceGate: Sendable {
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
}

@Suite("Idempotency store: racing threads and processes", .serialized)
struct IdempotencyRaceTests {
    @Test("50 threads, each with its own connection, race on one key: exactly one executes")
    func fiftyThreads() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let stores = try (0..<50).map { _ in try temp.open() }
        for round in 0..<10 {
            let call = writeCall(1000 + round)
            let decisions = Collector<(Int, IdempotencyDecision)>()
            let failures = Collector<String>()
            race(stores.count) { i in
                do {
                    decisions.append((i, try stores[i].begin(call, owner: me, ttl: 60, now: t0)))
                } catch {
                    failures.append("\(error)")
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
            let executed = decisions.all.filter { $0.1 == .execute }
            #expect(executed.count == 1)
            #expect(decisions.all.filter { $0.1 == .inFlight }.count == stores.count - 1)

            let executor = try #require(executed.first?.0)
            #expect(try stores[executor].complete(key: call.key, owner: me, result: okResult, now: t0 + 1))
            let replays = Collector<Bool>()
            race(stores.count) { i in
                replays.append((try? stores[i].begin(call, owner: me, ttl: 60, now: t0 + 2)) == .replay(okResult))
            }
            #expect(replays.all.count == stores.count && replays.all.allSatisfy { $0 })
        }
    }

    @Test("other processes race too: exactly one of them all executes, and all replay its result")
    func processesAndThreads() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        _ = try temp.open()  // creates the schema once; the probes open the same file
        guard FileManager.default.isExecutableFile(atPath: ProbeProcess.executable) else {
            Issue.record("no probe at \(ProbeProcess.executable)")
            return
        }
        let probes = try (0..<4).map { _ in try ProbeProcess(database: temp.path) }
        defer { probes.forEach { $0.stop() } }
        // Each answers once its store is open: all are ready.
        let probeOwners = probes.map { $0.ask("owner") }
        #expect(probeOwners.allSatisfy { $0?.split(separator: " ").count == 2 }, "\(probeOwners)")
        let stores = try (0..<16).map { _ in try temp.open() }

        for round in 0..<5 {
            let call = writeCall(2000 + round)
            let decisions = Collector<(Int, IdempotencyDecision)>()
            race(stores.count, { i in
                if let d = try? stores[i].begin(call, owner: me, ttl: 60, now: IdempotencyDefaults.now()) {
                    decisions.append((i, d))
                }
            }, whileWaiting: {
                probes.forEach { $0.send("begin \(call.key) \(call.fingerprint)") }
            })
            let answers = probes.map { $0.readLine() ?? "(no answer)" }
            let threadExecutors = decisions.all.filter { $0.1 == .execute }.map(\.0)
            let probeExecutors = answers.indices.filter { answers[$0] == "execute" }
            #expect(decisions.all.count == stores.count)
            #expect(threadExecutors.count + probeExecutors.count == 1, "threads \(threadExecutors), probes \(answers)")
            #expect(decisions.all.filter { $0.1 == .inFlight }.count == stores.count - threadExecutors.count)
            #expect(answers.filter { $0 == "in_flight" }.count == probes.count - probeExecutors.count, "\(answers)")

            if let thread = threadExecutors.first {
                #expect(try stores[thread].complete(key: call.key, owner: me, result: okResult, now: IdempotencyDefaults.now()))
            } else if let probe = probeExecutors.first {
                #expect(probes[probe].ask("complete \(call.key) \(hex(okResult))") == "stored")
            }
            for probe in probes {
                #expect(probe.ask("begin \(call.key) \(call.fingerprint)") == "replay \(hex(okResult))")
            }
            for store in stores {
                #expect(try store.begin(call, owner: me, ttl: 60, now: IdempotencyDefaults.now()) == .replay(okResult))
            }
        }
    }

    /// Two `mcpjail run` started together both open a file that does not exist yet. SQLite
    /// answers one of two connections that both switch a new file to WAL with SQLITE_BUSY at
    /// once, without waiting (its deadlock avoidance): the store must wait that out itself.
    @Test("processes and threads opening a new file at the same instant all open it")
    func openingTogether() throws {
        for _ in 0..<20 {
            let temp = try TempStore()
            defer { temp.cleanup() }
            let failures = Collector<String>()
            let probes = try (0..<6).map { _ in try ProbeProcess(database: temp.path, mode: "open") }
            usleep(100_000)  // all six started and waiting for the go
            race(4, { _ in
                do { _ = try temp.open() } catch { failures.append("\(error)") }
            }, whileWaiting: {
                probes.forEach { $0.send("go") }
            })
            for probe in probes {
                let answer = probe.readLine() ?? "nothing"
                if answer != "opened" { failures.append("a probe answered \(answer)") }
                probe.stop()
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
            if !failures.all.isEmpty { break }
        }
    }

    @Test("a probe killed mid-call leaves an unknown outcome, not a re-execution")
    func killedProcess() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open()
        let probe = try ProbeProcess(database: temp.path)
        let call = writeCall(3000)
        #expect(probe.ask("begin \(call.key) \(call.fingerprint)") == "execute")
        #expect(try store.begin(call, owner: me) == .inFlight)
        kill(probe.process.processIdentifier, SIGKILL)
        probe.stop()
        #expect(try store.begin(call, owner: me) == .outcomeUnknown)
        #expect(try store.record(key: call.key, now: IdempotencyDefaults.now())?.state == .unknown)
    }
}
