import Glibc
import MCPJailCore
import Synchronization
import Testing
@testable import MCPJailLinux

/// `Threads.tryStart`: runs the body on a new thread, or returns pthread_create's error
/// without crashing, so a caller can go on without the thread.
@Suite struct ThreadStartTests {
    @Test func runsTheBodyOrReportsTheError() {
        let ran = Latch()
        #expect(Threads.tryStart("test-start") { ran.open() } == 0)
        #expect(ran.wait(seconds: 10))
        // A stack no machine can map: pthread_create fails, and the body never runs.
        let never = Latch()
        let status = Threads.tryStart("test-too-big", stackSize: 1 << 60) { never.open() }
        #expect(status != 0)
        #expect(!never.wait(seconds: 0.1))
    }
}

/// StartupPlacement keeps a thread, and the threads it starts, off one CPU until restore().
@Suite struct StartupPlacementTests {
    /// The calling thread's Cpus_allowed_list, expanded ("0-2,5" -> [0, 1, 2, 5]).
    static func ownCPUs() -> [Int] {
        guard let bytes = FileContents.bytes("/proc/thread-self/status") else { return [] }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [] }
        return line.dropFirst("Cpus_allowed_list:".count).trimmingWhitespace().split(separator: ",").flatMap { range -> [Int] in
            let ends = range.split(separator: "-").compactMap { Int($0) }
            return ends.count == 2 ? Array(ends[0]...ends[1]) : ends
        }
    }

    @Test func keepsThreadsOffTheCPUUntilRestored() throws {
        let all = Self.ownCPUs()
        try #require(all.count > 1, "needs a machine with two CPUs or more")
        let off = Int32(all[0])
        let done = Latch()
        let seen = Mutex<[String: [Int]]>([:])
        Threads.start("test-placement") {
            let placement = StartupPlacement(cpu: off)
            let started = Latch()
            let restored = Latch()
            let finished = Latch()
            seen.withLock { $0["restricted"] = Self.ownCPUs() }
            Threads.start("test-placement-child") {
                seen.withLock { $0["child before"] = Self.ownCPUs() }
                started.open()
                restored.wait()
                seen.withLock { $0["child after"] = Self.ownCPUs() }
                finished.open()
            }
            started.wait()
            placement.restore()
            seen.withLock { $0["restored"] = Self.ownCPUs() }
            restored.open()
            finished.wait()
            done.open()
        }
        #expect(done.wait(seconds: 10))
        let masks = seen.withLock { $0 }
        let without = all.filter { $0 != Int(off) }
        #expect(masks["restricted"] == without)
        #expect(masks["child before"] == without)
        #expect(masks["restored"] == all)
        #expect(masks["child after"] == all)
    }
}

