import Foundation
import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

/// The relay's spin before a blocking read: it returns once data is there, gives up after its
/// budget, and stops spinning for a peer that has been slow, so an idle session sleeps.
@Suite struct ReadySpinTests {
    private static let budget: UInt64 = 50_000_000  // 50 ms: far above scheduling noise

    private func elapsed(_ body: () -> Void) -> UInt64 {
        let start = monotonicNanoseconds()
        body()
        return monotonicNanoseconds() - start
    }

    /// A spin that has seen one quick wait, so its next wait spins.
    private func primed(budget: UInt64, _ fd: Int32) -> ReadySpin {
        var spin = ReadySpin(budget: budget)
        spin.beforeRead(fd)
        spin.afterRead()
        return spin
    }

    @Test func theFirstWaitBlocksAtOnce() throws {
        // The first wait is for the server's start-up or the client's first message: never
        // quick, so spinning then would only take a CPU from the starting server.
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        var spin = ReadySpin(budget: Self.budget)
        #expect(elapsed { spin.beforeRead(readFD) } < Self.budget / 2)
        spin.afterRead()
        #expect(elapsed { spin.beforeRead(readFD) } >= Self.budget)
    }

    @Test func returnsAtOnceWhenDataIsWaiting() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        try FD.writeAll(writeFD, Array("x\n".utf8))
        var spin = ReadySpin(budget: 10 * Self.budget)
        #expect(elapsed { spin.beforeRead(readFD) } < Self.budget)
    }

    @Test func returnsWhenDataArrivesDuringTheSpin() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        let writer = Thread {
            usleep(20_000)
            try? FD.writeAll(writeFD, Array("x\n".utf8))
        }
        var spin = primed(budget: 100 * Self.budget, readFD)  // 5 s: only the data ends it early
        writer.start()
        let waited = elapsed { spin.beforeRead(readFD) }
        #expect(waited >= 15_000_000 && waited < 50 * Self.budget)
        var probe = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        #expect(poll(&probe, 1, 0) == 1)
    }

    @Test func givesUpAfterItsBudget() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        var spin = primed(budget: Self.budget, readFD)
        let waited = elapsed { spin.beforeRead(readFD) }
        #expect(waited >= Self.budget && waited < 20 * Self.budget)
    }

    @Test func stopsSpinningAfterALongWaitAndResumesAfterAShortOne() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        var spin = primed(budget: Self.budget, readFD)
        spin.beforeRead(readFD)
        usleep(UInt32(2 * Self.budget / 1000))  // the read that followed blocked long
        spin.afterRead()
        // The peer is slow: the next wait blocks at once instead of spinning.
        #expect(elapsed { spin.beforeRead(readFD) } < Self.budget / 2)
        spin.afterRead()  // this wait was short
        #expect(elapsed { spin.beforeRead(readFD) } >= Self.budget)
    }

    @Test func aZeroBudgetNeverSpins() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        var spin = ReadySpin(budget: 0)
        #expect(elapsed { spin.beforeRead(readFD) } < 10_000_000)
    }

    @Test func growsPipesAndLeavesOtherFilesAlone() throws {
        let (readFD, writeFD) = try FD.pipe()
        defer { FD.close(readFD); FD.close(writeFD) }
        #expect(fcntl(readFD, 1032) == 65536)  // F_GETPIPE_SZ: the kernel's default
        let grown: Int32? = FD.growPipe(readFD, to: 256 * 1024)
        #expect(grown == Int32(256 * 1024))
        #expect(fcntl(writeFD, 1032) == 256 * 1024)  // one pipe, both ends
        let file = open("/proc/self/status", O_RDONLY)
        defer { close(file) }
        #expect(FD.growPipe(file, to: 256 * 1024) == nil)
    }
}
