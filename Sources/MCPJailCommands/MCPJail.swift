import ArgumentParser
import Dispatch
import Glibc
import MCPJailLinux

/// The `mcpjail` root command: one subcommand per job, each in its own file.
public struct MCPJail: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "mcpjail",
        abstract: "Run MCP servers in a jail, behind a relay that checks every call.",
        discussion: """
            Each server has a profile, NAME.toml, in the profile directory (--profiles DIR, \
            else $MCPJAIL_PROFILES, else ~/.config/mcpjail/profiles, then /etc/mcpjail/profiles). \
            The profiles are the allowlist: a server without one never starts.

            Examples:
              mcpjail run time                     # what an MCP client launches
              mcpjail client-config claude time    # the client config snippet for it
              mcpjail check time                   # the effective policy
              mcpjail pin time                     # pin its command and code: time.lock
              mcpjail logs time --verify           # the audit log, hash chain checked
              mcpjail token issue --key ci.key --sub alice   # a bearer token for the relay
              mcpjail idempotency list             # recorded write calls, for retries
              mcpjail ps                           # the running sessions
              mcpjail revoke git                   # stop a server now and for good
              mcpjail diff git                     # its tools against the reviewed ones
            """,
        version: version,
        subcommands: [
            Run.self, List.self, Check.self, Pin.self, Logs.self, ClientConfig.self, Doctor.self, Token.self,
            Idempotency.self, Ps.self, Revoke.self, Diff.self, Approve.self,
        ]
    )

    public init() {}
}

extension MCPJail {
    /// `mcpjail`'s entry: `run` in its usual shapes (``Run/quickArguments(_:)``) goes
    /// straight to the session, every other command line through ArgumentParser.
    ///
    /// Synchronous on purpose. An `async` entry point starts dispatch's main loop, which ends
    /// the process's first thread with pthread_exit: a forced unwind of its stack that has
    /// the unwinder index every frame description of this 100 MB binary, at every client
    /// start. `run` never needs that; the other commands, some of them async, run as a task
    /// while this thread waits for it.
    public static func launch(_ arguments: [String] = CommandLine.arguments) -> Never {
        if arguments.count > 1, arguments[1] == "run",
            let (name, profiles) = Run.quickArguments(Array(arguments.dropFirst(2)))
        {
            // The jail's namespaces take the holder longer (~0.8 ms) than `run` takes to reach
            // the spawn: started before `main` (CMCPJailEarlyStart), adopted here.
            let namespaces = try? NamespaceHolder.start()
            let status = Run.execute(name: name, profiles: profiles, namespaces: namespaces)
            // Ended and reaped here when no jail took it (a missing profile, a refused name):
            // this thread never returns, so its deinit would not run.
            namespaces?.end()
            // The process ends from another thread while this one, the thread group's
            // leader, waits: when the leader itself called exit, the client's wait for
            // mcpjail took about 1 ms longer (the kernel's reaping of the process spent it
            // invalidating /proc entries), as measured from EOF to exit over 30 runs.
            guard Threads.tryStart("mcpjail-exit", { Glibc.exit(status) }) == 0 else { Glibc.exit(status) }
            while true { pause() }
        }
        // No other command line has a use for the holder started before `main` (`run` in an
        // unusual shape starts its own in Run.execute), and ArgumentParser may exit the
        // process without returning here.
        NamespaceHolder.discardEarly()
        let finished = DispatchSemaphore(value: 0)
        Task {
            await main(Array(arguments.dropFirst()))
            finished.signal()
        }
        finished.wait()
        Glibc.exit(0)
    }
}
