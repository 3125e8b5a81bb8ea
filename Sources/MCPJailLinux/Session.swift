import CMCPJailShims
import FoundationEssentials
import Glibc
import Logging
import MCPJailCore
import MCPJailStore

/// One `mcpjail run`: starts the server through a ``ServerSpawner``, relays its stdio,
/// and tears everything down so that nothing of it outlives the call.
///
/// Shutdown is one sequence whatever starts it (client EOF, SIGINT/SIGTERM/SIGHUP, a
/// client that stops reading): close the server's stdin, SIGTERM its process group after
/// `stop_timeout`, SIGKILL after another. The server's death ends the session: what it
/// wrote is delivered, requests still in flight get `server_unavailable`, any process it
/// left (mcpjail is their subreaper) is killed, and `run` exits with the server's status.
public final class Session {
    private let profile: Profile
    private let state: StateDirectory
    private let spawner: any ServerSpawner
    private let logger: Logger
    /// The environment `mcpjail run` got from the client: where `MCPJAIL_TOKEN(_FILE)` and
    /// `[secrets] NAME = { env = ... }` come from. Never passed to the server.
    private let clientEnvironment: [String: String]

    public init(
        profile: Profile, state: StateDirectory, spawner: any ServerSpawner, logger: Logger,
        clientEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.profile = profile
        self.state = state
        self.spawner = spawner
        self.logger = logger
        self.clientEnvironment = clientEnvironment
    }

    /// Runs the session to its end and returns the exit status for `mcpjail run`.
    public func run(clientInput: Int32 = 0, clientOutput: Int32 = 1) throws(MCPJailError) -> Int32 {
        let sessionID = UUID().uuidString.lowercased()
        let context = SessionContext(profile: profile, sessionID: sessionID)
        // Before the jail is cloned: only what its first process takes along (a copy of this
        // process's memory and fds: the server's pipes, environment, limits) or what decides
        // how it is built. Everything else is prepared while it builds its file system
        // (`whileTheJailBuilds` below), off the path of every client start; a failure there
        // still ends the jail before anything of the server ran.
        try createStateDirectories()
        // A pinned profile needs a lock that pins its command and code.
        let pins = try preparePins()
        let secretValues = try SecretLoader.load(profile.secrets, environment: clientEnvironment)
        var serverProfile = profile
        for (name, value) in secretValues { serverProfile.server.env[name] = value }
        let (rlimits, rlimitNotes) = ResourceLimits.applicable(for: profile.limits)
        for note in rlimitNotes { logger.notice("\(note)") }
        let stdinPipe, stdoutPipe, stderrPipe: (read: Int32, write: Int32)
        do throws(SystemCallError) {
            stdinPipe = try FD.pipe()
            stdoutPipe = try FD.pipe()
            stderrPipe = try FD.pipe()
        } catch {
            throw MCPJailError(.io, "cannot set up the relay: \(error)")
        }
        signal(SIGPIPE, SIG_IGN)
        _ = mcpjail_set_child_subreaper()
        // Pinned code is watched from its check to the session's end.
        let codeWatch = pins == nil ? nil : CodeWatch()
        defer { codeWatch?.stop() }

        // A v2 cgroup comes before the clone: the jail is cloned into it, since moving a
        // process into a v2 cgroup afterwards waits for an RCU grace period (8-13 ms). v1
        // cgroups (and a v2 one on a hybrid host, moved into late) are planned and made
        // while the jail builds: the plan reads /proc and /sys (~0.2 ms), making them ~0.17 ms.
        let cgroupBeforeClone = CgroupHost.isUnifiedOnly()
        var cgroupPlan = cgroupBeforeClone ? CgroupPlan.make(for: profile.limits) : nil
        var madeCgroup = try cgroupPlan.flatMap { (plan) throws(MCPJailError) in
            try SessionCgroup.create(for: profile, session: sessionID, plan: plan)
        }
        let bridge: EgressBridge?
        do {
            bridge = try EgressBridge.make(policy: profile.network.policy)
        } catch {
            madeCgroup?.killAll()
            _ = madeCgroup?.remove()
            throw error
        }
        let restrictions = ChildRestrictions(
            cgroupProcsFDs: madeCgroup?.v2ProcsFDs ?? [], cgroupV2DirectoryFD: madeCgroup?.v2DirectoryFD ?? -1, rlimits: rlimits, pins: pins,
            codeWatch: codeWatch, egress: bridge)

        var preparedSession: Prepared? = nil
        let server: SpawnedServer
        let prepared: Prepared
        let cgroupPlanUsed: CgroupPlan
        let egressSockets: [(EgressBridge.Socket, Int32)]
        do throws(MCPJailError) {
            server = try spawner.spawn(
                serverProfile, stdio: ServerStdio(stdin: stdinPipe.read, stdout: stdoutPipe.write, stderr: stderrPipe.write),
                restrictions: restrictions
            ) { () throws(MCPJailError) -> StartRestrictions in
                preparedSession = try prepare(secretValues: secretValues.map(\.value))
                let seccomp = try SeccompPolicy.compile(profile)
                var lateProcsFDs: [Int32] = []
                if !cgroupBeforeClone {
                    let plan = CgroupPlan.make(for: profile.limits)
                    cgroupPlan = plan
                    madeCgroup = try SessionCgroup.create(for: profile, session: sessionID, plan: plan)
                    // A v2 cgroup on a host that is not v2 only: moved into, the slow way.
                    lateProcsFDs = madeCgroup?.procsFDs ?? []
                }
                return StartRestrictions(
                    cgroupTasksFDs: madeCgroup?.tasksFDs ?? [], cgroupProcsFDs: lateProcsFDs,
                    seccompProgram: seccomp.program)
            }
            do throws(MCPJailError) {
                guard let preparedSession, let cgroupPlan else {
                    throw MCPJailError(.internalError, "the spawner started the server without preparing the session")
                }
                prepared = preparedSession
                cgroupPlanUsed = cgroupPlan
                egressSockets = try bridge?.receive() ?? []
            } catch {
                kill(-server.pid, SIGKILL)
                kill(server.pid, SIGKILL)
                var status: Int32 = 0
                waitpid(server.pid, &status, 0)
                throw error
            }
        } catch {
            bridge?.close()
            madeCgroup?.killAll()
            _ = madeCgroup?.remove()
            throw error
        }
        let (auditLog, policy, writes, events) = (prepared.auditLog, prepared.policy, prepared.writes, prepared.events)
        let cgroup = madeCgroup
        // Off the server's CPU until its first output (the relay restores the mask).
        let placement = StartupPlacement()
        if let missing = cgroup?.plan.missingDescription { logger.warning("limits not enforced (best-effort): \(missing)") }
        FD.close(stdinPipe.read)
        FD.close(stdoutPipe.write)
        FD.close(stderrPipe.write)
        logger.debug("session \(sessionID): server \(profile.name) started as pid \(server.pid)")
        recordPinCheck(server)

        let stderrLog = StderrLog(
            source: stderrPipe.read, path: state.serverLog(profile.name),
            banner: "--- mcpjail session \(sessionID) \(profile.name) pid \(server.pid) started \(AuditTime.format(wallClockSeconds())) ---\n",
            redactor: policy.sanitizer.redactor)
        stderrLog.start()
        let audit = AuditWriter(log: auditLog, context: context, logger: logger)
        var egress: EgressProxy? = nil
        if let bridge {
            do {
                egress = try EgressProxy(bridge: bridge, sockets: egressSockets, settings: profile.network, audit: audit, logger: logger)
            } catch {
                logger.error("\(error)")
                for (_, fd) in egressSockets { FD.close(fd) }
            }
            egress?.start()
        }
        let relay = Relay(
            context: context, policy: policy, writes: writes, audit: audit, events: events,
            logger: logger, clientInput: clientInput, clientOutput: clientOutput,
            serverInput: stdinPipe.write, serverOutput: stdoutPipe.read)
        relay.afterFirstServerOutput = { placement.restore() }
        let outputClosed = Latch()
        // Revocation: removing or renaming the profile stops this session within a second.
        let watch: ProfileWatch?
        do {
            watch = try ProfileWatch(path: profile.path)
        } catch {
            watch = nil
            logger.warning("cannot watch \(profile.path) for revocation: \(error)")
        }
        startThread("mcpjail-from-client") { relay.runClientToServer() }
        startThread("mcpjail-to-client") {
            relay.runServerToClient()
            outputClosed.open()
        }
        // Housekeeping once the relay runs, while the server starts: empty cgroups that
        // killed sessions left (not before the spawn: no client start should wait for it).
        let stale = CgroupJanitor.sweep(cgroupPlanUsed)
        if !stale.isEmpty { logger.notice("removed \(stale.count) cgroups left by sessions that were killed") }
        // Registered once the relay runs: the client's first message need not wait for it.
        let registration = SessionRegistry(state: state).register(
            session: sessionID, server: profile.name, profilePath: profile.path, profileDigest: profile.digest, serverPID: server.pid)
        defer { registration?.remove() }
        // The code only start-up needed leaves the resident set after the first tool call
        // (Relay), not here: released now, while the server starts, the relay faulted its
        // own code back in on the path of the handshake's first answer.

        let (status, timedOut, revoked) = supervise(server: server, relay: relay, events: events, watch: watch, codeWatch: codeWatch)
        watch?.stop()
        codeWatch?.stop()

        // The server is gone: kill what it left, deliver what it wrote, answer the rest.
        cgroup?.killAll()
        killLeftovers(group: server.pid)
        let limit = timedOut ? "wall_time" : cgroup?.limitReport().map { $0.limit }
        if let limit { logger.error("server \(profile.name) stopped: its \(limit) limit was reached") }
        outputClosed.wait(seconds: 2)
        relay.failInFlight(limit: limit)
        if let cgroup {
            let left = cgroup.remove()
            if !left.isEmpty { logger.error("could not remove cgroups: \(left.joined(separator: ", "))") }
        }
        stderrLog.waitUntilClosed(seconds: 1)
        recordToolsSeen(policy.review)
        egress?.stop()
        let lost = audit.drain()
        if lost > 0 { logger.error("\(lost) audit records could not be written to \(state.auditLog)") }
        switch revoked {
        case .profileRemoved?:
            logger.error("server \(profile.name) was revoked: its profile \(profile.path) was removed")
            return Self.revokedStatus
        case .pinnedCodeChanged?:
            return Self.revokedStatus
        case nil:
            return status
        }
    }

    /// Keeps what the server offered this session (state/tools-seen/NAME.json) for `mcpjail
    /// pin`, `diff` and `approve`.
    private func recordToolsSeen(_ review: ToolReview) {
        guard let seen = review.observed else { return }
        let path = state.toolsSeen(profile.name)
        let bytes = seen.encoded()
        // Usually the same tools as last time: then the file is left as it is (rewriting and
        // renaming it made teardown 1.4-2.5 ms longer, EOF to exit, interleaved medians).
        if FileContents.bytes(path) == bytes { return }
        try? FD.makeDirectories(state.toolsSeenDirectory, mode: 0o700)
        _ = FD.replaceFile(path, with: bytes, mode: 0o600)
    }

    /// `mcpjail run`'s exit status when the profile was removed, or the pinned code changed,
    /// while it ran (EX_CONFIG).
    public static let revokedStatus: Int32 = 78

    /// Waits for the server to exit, driving the shutdown sequence; returns the exit status
    /// for `mcpjail run` (the server's code, or 128 + signal).
    /// Also returns whether `[limits] wall_time` ended the session.
    /// And why the server was revoked, if it was: its profile removed (`watch` looks at the
    /// profile as its signal and its schedule ask), or its pinned code changed (`codeWatch`).
    private func supervise(
        server: SpawnedServer, relay: Relay, events: EventPipe, watch: ProfileWatch?, codeWatch: CodeWatch?
    ) -> (Int32, Bool, Relay.Revocation?) {
        enum Phase { case running, stdinClosed, terminated, killed }
        var phase = Phase.running
        var deadline: UInt64 = .max
        var timedOut = false
        var revoked: Relay.Revocation? = nil
        let wallDeadline: UInt64 = profile.limits.wallTime.map { monotonicNanoseconds() + $0.wholeNanoseconds } ?? .max
        let grace = profile.server.stopTimeout.wholeNanoseconds

        func beginStop(_ why: String) {
            guard phase == .running else { return }
            logger.debug("stopping the server: \(why)")
            relay.closeServerInput()
            phase = .stdinClosed
            deadline = monotonicNanoseconds() + grace
        }

        func revoke(_ why: Relay.Revocation) {
            guard revoked == nil else { return }
            revoked = why
            relay.revoke(why)
            relay.closeServerInput()
            kill(-server.pid, SIGKILL)
            phase = .killed
            deadline = .max
        }

        func look(now: UInt64) {
            switch watch?.look(now: now) {
            case .revoked:
                logger.debug("the profile was removed: revoking")
                revoke(.profileRemoved)
            case .edited: relay.noteProfileChanged()
            case nil: break
            }
        }

        while true {
            if let status = reap(server.pid) { return (status, timedOut, revoked) }
            let now = monotonicNanoseconds()
            let callDeadline = relay.expireCalls(now: now)
            if let watch, now >= watch.nextLook { look(now: now) }
            if now >= wallDeadline, !timedOut {
                logger.error("server \(profile.name) reached its wall_time limit; stopping it")
                timedOut = true
                relay.closeServerInput()
                kill(-server.pid, SIGKILL)
                phase = .killed
                deadline = .max
                continue
            }
            if now >= deadline {
                switch phase {
                case .stdinClosed:
                    logger.notice("server \(profile.name) did not exit after its stdin closed; sending SIGTERM")
                    kill(-server.pid, SIGTERM)
                    phase = .terminated
                    deadline = now + grace
                case .terminated:
                    logger.warning("server \(profile.name) ignored SIGTERM; sending SIGKILL")
                    kill(-server.pid, SIGKILL)
                    phase = .killed
                    deadline = .max
                case .running, .killed:
                    deadline = .max
                }
                continue
            }
            // Call deadlines are checked at least every 100 ms (a new call does not wake
            // this loop), and exactly when the earliest known one falls due.
            let next = min(
                deadline, timedOut ? .max : wallDeadline, callDeadline, now + Self.callTimeoutGranularity,
                max(watch?.nextLook ?? .max, now))
            let timeout = Int32(min((next - now) / 1_000_000 + 1, 60_000))
            for event in events.wait(timeoutMilliseconds: timeout) {
                switch event {
                case .clientClosed: beginStop("the client closed the connection")
                case .signal(SIGCHLD), .serverOutputClosed: break  // reaped at the top of the loop
                case .signal(ProfileWatch.signal): look(now: monotonicNanoseconds())
                case .signal(CodeWatch.treeSignal), .signal(CodeWatch.pathSignal):
                    guard let codeWatch, revoked == nil else { break }
                    let changed = event == .signal(CodeWatch.treeSignal) ? "a file under its code paths" : codeWatch.changedPath()
                    if let changed {
                        logger.error("server \(profile.name) stopped: its pinned code changed on the host while it ran (\(changed))")
                        revoke(.pinnedCodeChanged)
                    }
                case .signal(let number): beginStop("received signal \(number)")
                }
            }
        }
    }

    static let callTimeoutGranularity: UInt64 = 100_000_000

    /// The idempotency store, opened only when the profile has write tools: a store that
    /// cannot be opened (locked, corrupted) stops `run` before the server starts.
    /// What the relay needs that the jail does not: prepared while the jail builds.
    private struct Prepared {
        let auditLog: AuditLog
        let policy: RelayPolicy
        let writes: WriteGate?
        let events: EventPipe
    }

    /// The audit log, the relay's policy (keys, schemas' compiler), the idempotency store and
    /// the event pipe with the signals it captures. Run while the jail builds: anything
    /// failing here ends the jail before the server starts.
    private func prepare(secretValues: [String]) throws(MCPJailError) -> Prepared {
        let auditLog: AuditLog
        do {
            auditLog = try AuditLog(path: state.auditLog)
        } catch {
            throw MCPJailError(.auditLog, "cannot open audit log \(state.auditLog): \(error)")
        }
        let policy = try SessionPolicy.make(profile: profile, secretValues: secretValues, clientEnvironment: clientEnvironment)
        let writes = try openWriteGate()
        let events: EventPipe
        do throws(SystemCallError) {
            events = try EventPipe()
            try events.captureSignals([SIGINT, SIGTERM, SIGHUP, SIGCHLD, ProfileWatch.signal, CodeWatch.treeSignal, CodeWatch.pathSignal])
        } catch {
            throw MCPJailError(.io, "cannot set up the relay: \(error)")
        }
        return Prepared(auditLog: auditLog, policy: policy, writes: writes, events: events)
    }

    private func openWriteGate() throws(MCPJailError) -> WriteGate? {
        guard profile.tools.values.contains(where: \.write) else { return nil }
        let store = try SQLiteIdempotencyStore(stateDirectory: state)
        return WriteGate(store: store, owner: try ProcessOwner.current(), server: profile.name, logger: logger)
    }

    /// Reaps every exited child (orphans adopted as subreaper included); returns the
    /// server's exit status once it has exited.
    private func reap(_ serverPID: pid_t) -> Int32? {
        var serverStatus: Int32? = nil
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            if pid == serverPID { serverStatus = Self.exitStatus(status) }
        }
        return serverStatus
    }

    /// `mcpjail run`'s exit status for a wait status: the code, or 128 + the signal.
    static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Kills the server's process group and every process reparented to mcpjail, until
    /// none is left.
    private func killLeftovers(group: pid_t) {
        kill(-group, SIGKILL)
        for _ in 0..<100 {
            let children = Self.childProcesses()
            if children.isEmpty { return }
            for child in children {
                kill(child, SIGKILL)
                var status: Int32 = 0
                waitpid(child, &status, 0)
            }
        }
        logger.error("processes of server \(profile.name) survived teardown")
    }

    /// The pids of this process's children, from /proc/self/task/*/children.
    static func childProcesses() -> [pid_t] {
        guard let tasks = FD.directoryNames("/proc/self/task") else { return [] }
        return tasks.flatMap { task -> [pid_t] in
            guard let text = FileContents.bytes("/proc/self/task/\(task)/children") else { return [] }
            return text.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
                .compactMap { pid_t(String(decoding: $0, as: UTF8.self)) }
        }
    }

    /// The lock of a pinned profile, read and checked before anything starts (its files are
    /// verified in the jail, by the spawner, once the jail's mounts are complete).
    private func preparePins() throws(MCPJailError) -> PinCheck? {
        let started = monotonicNanoseconds()
        guard let check = try PinVerifier.prepare(profile, state: state) else {
            logger.notice("profile \(profile.name) is unpinned ([server] pinned = false): its code is not verified")
            return nil
        }
        logger.debug("lock of \(profile.name) read and checked in \((monotonicNanoseconds() - started) / 1000) µs")
        return check
    }

    /// After a pinned start: keeps the updated pin cache (a cache that cannot be written
    /// only costs re-hashing next time).
    private func recordPinCheck(_ server: SpawnedServer) {
        guard let verification = server.pinVerification else { return }
        let statistics = verification.statistics
        logger.debug(
            "pins of \(profile.name) verified in the jail in \(server.pinCheckMicros) µs: \(statistics.entries) entries, \(statistics.hashedFiles) files (\(statistics.hashedBytes) bytes) hashed")
        if let cache = verification.updatedCache { try? cache.save(path: state.pinCache(profile.name)) }
    }

    private func createStateDirectories() throws(MCPJailError) {
        for directory in [state.path, state.serverLogs] {
            do throws(SystemCallError) {
                try FD.makeDirectories(directory, mode: 0o700)
            } catch {
                throw MCPJailError(.io, "cannot create state directory \(directory): \(error)",
                    hint: "set MCPJAIL_STATE_DIR or XDG_STATE_HOME to a writable directory")
            }
        }
    }

    private func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
        // JSON nesting is bounded (512), but give the recursive scanner room.
        Threads.start(name, stackSize: 8 << 20, body)
    }
}
