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
}
