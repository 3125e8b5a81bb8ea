import Glibc
import MCPJailCore
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
