import Glibc
import MCPJailCore

/// A helper program started with posix_spawn, for the commands that run another program
/// (`pin` and `diff` drive `mcpjail run`; a test hook in debug builds). Servers are never
/// started this way: they go through ``JailSpawner``.
///
/// Foundation's `Process` would link Foundation (with ICU) into the binary that every
/// `mcpjail run` loads (README, Performance).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let condition = Condition()
    private var reaped = false  // guarded by `condition`: no signal goes to a reaped (reusable) pid

    /// Starts `path` with `arguments` (argv[1...]) and `environment`; each of `stdin`,
    /// `stdout`, `stderr` that is given becomes that fd of the child, the others are inherited.
    /// Every other fd of this process is close-on-exec (mcpjail opens all of them so).
    public init(
        _ path: String, _ arguments: [String], environment: [String: String],
        stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil
    ) throws(SystemCallError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, target) in [(stdin, STDIN_FILENO), (stdout, STDOUT_FILENO), (stderr, STDERR_FILENO)] {
            if let fd { posix_spawn_file_actions_adddup2(&actions, fd, target) }
        }
        let argv = CStringArray([path] + arguments)
        let envp = CStringArray(environment.map { $0.key + "=" + $0.value })
        var child: pid_t = 0
        let status = argv.withPointers { argvPointers in
            envp.withPointers { envPointers in
                posix_spawn(&child, path, &actions, nil, argvPointers, envPointers)
            }
        }
        guard status == 0 else { throw SystemCallError("posix_spawn \(path)", errno: status) }
        pid = child
    }

    /// Sends `signal` unless the child was already reaped.
    public func kill(_ signal: Int32) {
        condition.withLock {
            if !reaped { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Waits for the child to end and reaps it: its wait status.
    @discardableResult
    public func wait() -> Int32 {
        var info = siginfo_t()
        // Wait without reaping first, so that `kill` never signals a pid the system reused.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        condition.withLock {
            reaped = true
            condition.broadcast()
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Ends the child with SIGTERM if it is still running `seconds` from now; ``wait()``
    /// makes this a no-op.
    public func terminate(after seconds: Double) {
        Threads.start("mcpjail-watch") { [self] in
            let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
            condition.withLock {
                while !reaped, monotonicNanoseconds() < deadline { condition.wait(untilMonotonic: deadline) }
                if !reaped { _ = Glibc.kill(pid, SIGTERM) }
            }
        }
    }
}
