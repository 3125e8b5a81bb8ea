import Glibc
import MCPJailCore

/// Waits a short while for an fd to become readable by polling it and yielding the CPU,
/// before the relay blocks in read(2).
///
/// Why: a thread asleep in read(2) costs a wake-up when its peer writes, and on a virtual
/// machine without guest halt polling that wake-up (an interprocessor interrupt and a
/// virtual CPU leaving its halt) is often longer than the whole relay hop. A relay that
/// spins for the next message while a call is in flight answers sooner than one that
/// sleeps. `sched_yield` inside the spin hands the CPU to any runnable task (the client,
/// the server), so the spin uses only time no one else wanted.
///
/// Adaptive, so that slow peers cost nothing: the reader spins only when its previous wait
/// ended within ``budget`` (the profile's `[limits] relay_spin`, default 200 µs); after a
/// longer one it blocks at once, until a wait is short again. An idle session sleeps in
/// read(2) as before. The first wait blocks: it is for the server's start-up or the
/// client's first message, never quick, and a spin then takes a CPU from the server
/// while it starts.
struct ReadySpin {
    /// Longest spin, in nanoseconds; 0 never spins.
    let budget: UInt64
    private var lastWaitWasShort = false
    private var waitStarted: UInt64 = 0

    init(budget: UInt64) { self.budget = budget }

    /// Call before a blocking read of `fd`: returns once `fd` is readable, or when the
    /// spin gives up (the read then blocks).
    mutating func beforeRead(_ fd: Int32) {
        guard budget > 0 else { return }
        waitStarted = monotonicNanoseconds()
        guard lastWaitWasShort else { return }
        var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = waitStarted + budget
        while true {
            if poll(&probe, 1, 0) != 0 { return }  // readable, end of file, or an error read(2) reports
            if monotonicNanoseconds() >= deadline { return }
            sched_yield()
        }
    }

    /// Call after the read returned.
    mutating func afterRead() {
        guard budget > 0 else { return }
        lastWaitWasShort = monotonicNanoseconds() - waitStarted <= budget
    }
}
