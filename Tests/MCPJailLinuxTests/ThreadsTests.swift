import Glibc
import Testing
@testable import MCPJailLinux

/// `Background`: the value is computed on a thread of its own, and `value()` waits for it.
@Suite struct BackgroundTests {
    @Test func computesOnItsOwnThreadAndValueWaitsForIt() {
        let callerThread = pthread_self()
        let started = monotonicNanoseconds()
        let background = Background("test-background") { () -> (pthread_t, UInt64) in
            usleep(50_000)
            return (pthread_self(), monotonicNanoseconds())
        }
        // The caller is not held up by the 50 ms body...
        #expect(monotonicNanoseconds() - started < 40_000_000)
        let (thread, finished) = background.value()
        // ...and value() returns what the body computed, after the body ran, on another thread.
        #expect(pthread_equal(thread, callerThread) == 0)
        #expect(finished - started >= 50_000_000)
        #expect(pthread_equal(background.value().0, thread) != 0)
    }

    @Test func computesOnTheCallersThreadWhenNoThreadCanStart() {
        let callerThread = pthread_self()
        // A stack no machine can map: the thread cannot start.
        let background = Background("test-no-thread", stackSize: 1 << 60) { pthread_self() }
        #expect(pthread_equal(background.value(), callerThread) != 0)
    }
}

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
