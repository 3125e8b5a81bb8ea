import CMCPJailShims
import Glibc
import MCPJailCore
import Synchronization

/// Relay threads and their hand-offs, on pthreads directly.
///
/// Foundation's `Thread` and `NSCondition` start CoreFoundation, which alone makes a
/// large part of the relay's resident memory; the relay needs none of it.
public enum Threads {
    /// Starts `body` on a new detached thread named `name` (shown in /proc, `top -H`).
    /// `background` threads (audit, logs) run at nice 10, so that on a busy machine the
    /// relay threads preempt them and their bursts of work do not become the relay's latency.
    public static func start(
        _ name: String, stackSize: Int = 1 << 20, background: Bool = false, _ body: @escaping @Sendable () -> Void
    ) {
        let status = tryStart(name, stackSize: stackSize, background: background, body)
        precondition(status == 0, "mcpjail: cannot start thread \(name): \(String(cString: strerror(status)))")
    }

    /// ``start(_:stackSize:background:_:)`` for callers that have a way on without the
    /// thread: pthread_create's error number, 0 when the thread runs.
    public static func tryStart(
        _ name: String, stackSize: Int = 1 << 20, background: Bool = false, _ body: @escaping @Sendable () -> Void
    ) -> Int32 {
        final class Box: @unchecked Sendable {
            let name: String
            let background: Bool
            let body: @Sendable () -> Void
            init(_ name: String, _ background: Bool, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.background = background
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(name, background, body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = mcpjail_set_thread_name(String(box.name.prefix(15)))
            if box.background { _ = mcpjail_lower_thread_priority(10) }
            box.body()
            return nil
        }, box.toOpaque())
        if status != 0 { box.release() }
        return status
    }
}

/// A one-shot gate: ``wait(seconds:)`` returns once ``open()`` was called or time is up.
public final class Latch: @unchecked Sendable {
    private let condition = Condition()
    private var isOpen = false  // guarded by `condition`

    public init() {}

    public func open() {
        condition.withLock {
            isOpen = true
            condition.broadcast()
        }
    }

    /// Waits until ``open()`` is called.
    public func wait() {
        condition.withLock {
            while !isOpen { condition.wait() }
        }
    }

    /// True if the latch opened in time.
    @discardableResult
    public func wait(seconds: Double) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        return condition.withLock {
            while !isOpen, monotonicNanoseconds() < deadline { condition.wait(untilMonotonic: deadline) }
            return isOpen
        }
    }
}

/// Keeps mcpjail's own start-up work off the CPU the server starts on (the one its jail was
/// built on): the session's set-up after the spawn, and the threads it starts, run on
/// mcpjail's other CPUs until ``restore()`` (at the server's first output), when every
/// thread gets its mask back. Without it, the main thread, woken by the server's exec from
/// the server's CPU (a pipe's wake-up pulls the woken thread to the waker's CPU), stayed
/// there and took 0.37-0.5 ms of the server's start (sched_switch, 100 launches each).
final class StartupPlacement: @unchecked Sendable {
    private let restricted: Bool
    private let restoredOnce = Mutex<Bool>(false)

    /// Moves the calling thread off `cpu`, by default the last jail's build CPU (nothing when
    /// there is none, or no other CPU).
    init(cpu: Int32 = mcpjail_last_build_cpu()) {
        restricted = mcpjail_keep_thread_off_cpu(cpu) == 0
    }

    /// Gives every thread of this process its mask back. Once; later calls do nothing.
    func restore() {
        guard restricted, restoredOnce.withLock({ done in
            defer { done = true }
            return !done
        }) else { return }
        for task in FD.directoryNames("/proc/self/task") ?? [] {
            if let tid = pid_t(task) { _ = mcpjail_restore_thread_affinity(tid) }
        }
    }
}
