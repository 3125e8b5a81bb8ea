import CMCPJailShims
import FoundationEssentials
import Glibc
import MCPJailCore

/// One step of building the jail's file system, in the order the child applies them.
public enum JailMount: Sendable, Equatable {
    case bind(source: String, target: String, writable: Bool, isDirectory: Bool)
    case tmpfs(target: String, size: Int, mode: Int)
    case directory(target: String, mode: Int)
    case symlink(target: String, destination: String)
    case file(target: String, contents: String, mode: Int)
    case proc(target: String)
    case device(source: String, target: String)

    var target: String {
        switch self {
        case .bind(_, let target, _, _), .tmpfs(let target, _, _), .directory(let target, _),
            .symlink(let target, _), .file(let target, _, _), .proc(let target), .device(_, let target):
            target
        }
    }
}

/// Everything the jail's first process needs, computed from the profile before the clone.
public struct JailPlan: Sendable, Equatable {
    public var mounts: [JailMount]
    /// The ids the server runs as, mapped 1:1 to the same ids on the host.
    public var uid: uid_t
    public var gid: gid_t
    /// As root the launcher switches to `uid`/`gid` inside; an ordinary user already is them.
    public var switchIdentity: Bool
    /// The server's environment: the profile's, plus HOME when the profile sets none.
    public var environment: [String: String]
    public var hostname = "mcpjail"

    static func depth(_ path: String) -> Int { path.split(separator: "/").count }

    /// The uid root's servers run as.
    public static let nobody: uid_t = 65534

    /// Plans the jail for `profile`. Every host path the profile names must exist: a missing
    /// one is an error before anything starts.
    public static func make(
        for profile: Profile, isRoot: Bool, uid: uid_t, gid: gid_t, stateDirectory: String
    ) throws(MCPJailError) -> JailPlan {
        // Root's servers run as nobody; an ordinary user's as that user.
        let uid = isRoot ? nobody : uid
        let gid = isRoot ? gid_t(nobody) : gid
        var mounts: [JailMount] = []
        var problems: [String] = []
        func kind(_ path: String) -> mode_t? {
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
        }
        var bound: [String] = []
        let binds = profile.filesystem.readOnly.map { ($0, false) } + profile.filesystem.readWrite.map { ($0, true) }
        // Parents before children, so a writable path inside a read-only one stays visible.
        for (path, writable) in binds.sorted(by: { $0.0.split(separator: "/").count < $1.0.split(separator: "/").count }) {
            guard let type = kind(path) else {
                problems.append("filesystem.\(writable ? "read_write" : "read_only"): \(path) does not exist")
                continue
            }
            mounts.append(.bind(source: path, target: path, writable: writable, isDirectory: type == S_IFDIR))
            bound.append(path)
        }
        guard problems.isEmpty else {
            throw MCPJailError(.invalidProfile, "profile \(profile.path): " + problems.joined(separator: "; "))
        }
        func covered(_ path: String) -> Bool {
            bound.contains { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
        }

        // The server's code (pinned, so never writable), if the profile did not bind it.
        for path in profile.server.code where !covered(path) {
            guard let type = kind(path) else {
                throw MCPJailError(.invalidProfile, "profile \(profile.path): server.code: \(path) does not exist")
            }
            mounts.append(.bind(source: path, target: path, writable: false, isDirectory: type == S_IFDIR))
            bound.append(path)
        }
        // The server's command, if the profile did not bind it (or what its links lead to).
        let resolvedCommand = realpath(profile.server.command, nil).map { pointer -> String in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? profile.server.command
        if !covered(profile.server.command) && !covered(resolvedCommand) {
            mounts.append(.bind(source: profile.server.command, target: profile.server.command, writable: false, isDirectory: false))
        }
        // mcpjail's state directory stays invisible even under a bound parent.
        if covered(stateDirectory) {
            mounts.append(.tmpfs(target: stateDirectory, size: 4096, mode: 0o700))
        }
        // Merged-/usr hosts: /bin, /lib, ... are links into /usr.
        if covered("/usr") {
            for link in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] where !covered(link) {
                if let destination = FD.symbolicLinkDestination(link) {
                    mounts.append(.symlink(target: link, destination: destination))
                }
            }
        }
        for (target, size) in profile.filesystem.tmpfs.sorted(by: { $0.key < $1.key }) {
            mounts.append(.tmpfs(target: target, size: size, mode: 0o1777))
        }
        var environment = profile.server.env
        if environment["HOME"] == nil {
            let home = "/home/mcpjail"
            mounts.append(.tmpfs(target: home, size: 64 << 20, mode: 0o700))
            environment["HOME"] = home
        }
        // Mount points nest: a parent first, so that a tmpfs at /tmp does not hide a bind at
        // /tmp/project (stable, so equal depths keep the order above).
        mounts = mounts.enumerated().sorted { a, b in
            let (da, db) = (Self.depth(a.element.target), Self.depth(b.element.target))
            return da != db ? da < db : a.offset < b.offset
        }.map(\.element)
        if !covered(profile.server.workdir), profile.server.workdir != "/" {
            mounts.append(.directory(target: profile.server.workdir, mode: 0o755))
        }
        let namesEgress = profile.network.egress.contains { if case .address = $0.host { false } else { true } }
        if namesEgress && (covered("/etc") || covered("/etc/resolv.conf")) {
            // The host's resolver configuration would bypass the DNS stub: names would not resolve.
            throw MCPJailError(
                .invalidProfile,
                "profile \(profile.path): [network] egress names hosts, so the jail's /etc/resolv.conf must be mcpjail's; do not bind /etc or /etc/resolv.conf",
                hint: "bind the parts of /etc the server needs (/etc/ssl, ...) instead")
        }
        if !covered("/etc/passwd") && !covered("/etc") {
            let home = environment["HOME"] ?? "/"
            let name = isRoot ? "nobody" : "mcpjail"
            mounts.append(.file(target: "/etc/passwd", contents: "\(name):x:\(uid):\(gid):\(name):\(home):/bin/sh\n", mode: 0o644))
            mounts.append(.file(target: "/etc/group", contents: "\(isRoot ? "nogroup" : "mcpjail"):x:\(gid):\n", mode: 0o644))
            mounts.append(.file(target: "/etc/hosts", contents: "127.0.0.1 localhost mcpjail\n::1 localhost ip6-localhost ip6-loopback\n", mode: 0o644))
            if !profile.network.egress.isEmpty {
                // The resolver is mcpjail's DNS stub (see EgressBridge); /etc/hosts first.
                mounts.append(.file(target: "/etc/resolv.conf", contents: "nameserver 127.0.0.53\noptions attempts:1 timeout:2\n", mode: 0o644))
                mounts.append(.file(target: "/etc/nsswitch.conf", contents: "passwd: files\ngroup: files\nhosts: files dns\n", mode: 0o644))
            }
        }
        if !profile.network.egress.isEmpty {
            for (name, value) in profile.network.policy.proxyEnvironment where environment[name] == nil {
                environment[name] = value
            }
        }
        // A minimal /dev and a /proc of the jail's own pid namespace.
        mounts.append(.tmpfs(target: "/dev", size: 64 << 10, mode: 0o755))
        for device in ["null", "zero", "full", "random", "urandom"] {
            mounts.append(.device(source: "/dev/" + device, target: "/dev/" + device))
        }
        mounts.append(.symlink(target: "/dev/fd", destination: "/proc/self/fd"))
        mounts.append(.symlink(target: "/dev/stdin", destination: "/proc/self/fd/0"))
        mounts.append(.symlink(target: "/dev/stdout", destination: "/proc/self/fd/1"))
        mounts.append(.symlink(target: "/dev/stderr", destination: "/proc/self/fd/2"))
        mounts.append(.proc(target: "/proc"))
        return JailPlan(mounts: mounts, uid: uid, gid: gid, switchIdentity: isRoot, environment: environment)
    }
}

/// Starts every server in its own jail: new user, pid, mount, network, ipc, uts and cgroup
/// namespaces, a fresh read-only root holding only what the profile names, no capabilities,
/// no_new_privs and the seccomp filter, with a tiny init as pid 1. C children run the steps
/// (`mcpjail_jail.c`); this side plans them, has the user and network namespaces made ahead
/// (``NamespaceHolder``), writes the id maps, lets the jail build its file system while the
/// caller prepares the ``StartRestrictions`` (the seccomp filter, cgroups), places the jail
/// in its cgroups and only then lets the server start.
public struct JailSpawner: ServerSpawner {
    public let stateDirectory: String
    /// The jail's user and network namespaces, made ahead (see ``NamespaceHolder``); nil:
    /// ``spawn(_:stdio:restrictions:whileTheJailBuilds:)`` starts a holder itself.
    public let namespaces: NamespaceHolder?

    public init(stateDirectory: String, namespaces: NamespaceHolder? = nil) {
        self.stateDirectory = stateDirectory
        self.namespaces = namespaces
    }

    public func spawn(
        _ profile: Profile, stdio: ServerStdio, restrictions: ChildRestrictions,
        whileTheJailBuilds prepare: () throws(MCPJailError) -> StartRestrictions
    ) throws(MCPJailError) -> SpawnedServer {
        let isRoot = geteuid() == 0
        let plan = try JailPlan.make(for: profile, isRoot: isRoot, uid: getuid(), gid: getgid(), stateDirectory: stateDirectory)
        return try launch(profile, plan: plan, stdio: stdio, restrictions: restrictions, prepare: prepare)
    }

    private func launch(
        _ profile: Profile, plan: JailPlan, stdio: ServerStdio, restrictions: ChildRestrictions,
        prepare: () throws(MCPJailError) -> StartRestrictions
    ) throws(MCPJailError) -> SpawnedServer {
        let argv = [profile.server.command] + profile.server.args
        let envp = plan.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let rlimits = restrictions.rlimits.map { mcpjail_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        // Every string the child reads, kept alive (and NUL-terminated) until it has exec'd.
        var strings = CStringPool()
        let mounts = plan.mounts.map { step -> mcpjail_mount in
            var m = mcpjail_mount()
            m.target = strings.add(step.target)
            switch step {
            case .bind(let source, _, let writable, let isDirectory):
                m.kind = Int32(MCPJAIL_BIND.rawValue)
                m.source = strings.add(source)
                m.writable = writable ? 1 : 0
                m.is_directory = isDirectory ? 1 : 0
            case .tmpfs(_, let size, let mode):
                m.kind = Int32(MCPJAIL_TMPFS.rawValue)
                m.size = UInt64(size)
                m.mode = Int32(mode)
            case .directory(_, let mode):
                m.kind = Int32(MCPJAIL_DIR.rawValue)
                m.mode = Int32(mode)
            case .symlink(_, let destination):
                m.kind = Int32(MCPJAIL_SYMLINK.rawValue)
                m.source = strings.add(destination)
            case .file(_, let contents, let mode):
                m.kind = Int32(MCPJAIL_FILE.rawValue)
                m.data = strings.add(contents)
                m.size = UInt64(contents.utf8.count)
                m.mode = Int32(mode)
            case .proc:
                m.kind = Int32(MCPJAIL_PROC.rawValue)
            case .device(let source, _):
                m.kind = Int32(MCPJAIL_DEVICE.rawValue)
                m.source = strings.add(source)
            }
            return m
        }
        defer { strings.free() }
        let egressSockets = restrictions.egress?.cSockets() ?? []
        let failure = { (result: mcpjail_spawn_result) -> MCPJailError in
            SpawnFailure(stage: Int(result.stage), errno: result.error).error(command: profile.server.command, workdir: profile.server.workdir)
        }
        // The holder made the jail's namespaces and clones the jail into them; it exits then.
        let holder: NamespaceHolder
        if let namespaces { holder = namespaces } else { holder = try NamespaceHolder.start() }
        defer { holder.end() }
        var result = mcpjail_spawn_result()

        var pid: pid_t = -1
        var releaseFD: Int32 = -1
        var errorFD: Int32 = -1
        var controlFD: Int32 = -1
        var placedInCgroup: Int32 = 0
        let cloned: Int32 = CStringArray(argv).withPointers { argvPointers in
            CStringArray(envp).withPointers { envPointers in
                rlimits.withUnsafeBufferPointer { limits in
                    mounts.withUnsafeBufferPointer { steps in
                        egressSockets.withUnsafeBufferPointer { egressSocketList in
                            var config = mcpjail_jail_config()
                            config.process = mcpjail_spawn_config(
                                path: strings.add(profile.server.command), argv: argvPointers, envp: envPointers,
                                workdir: strings.add(profile.server.workdir),
                                stdin_fd: stdio.stdin, stdout_fd: stdio.stdout, stderr_fd: stdio.stderr,
                                cgroup_procs_fds: nil, cgroup_procs_fd_count: 0,
                                rlimits: limits.baseAddress, rlimit_count: Int32(limits.count),
                                seccomp_filter: nil, seccomp_filter_length: 0)
                            config.mounts = steps.baseAddress
                            config.mount_count = Int32(steps.count)
                            config.hostname = strings.add(plan.hostname)
                            config.uid = plan.uid
                            config.gid = plan.gid
                            config.switch_identity = plan.switchIdentity ? 1 : 0
                            config.inspect = restrictions.pins == nil ? 0 : 1
                            config.egress = mcpjail_egress_config(
                                channel_fd: restrictions.egress?.jailChannel ?? -1,
                                sockets: egressSocketList.baseAddress, socket_count: Int32(egressSocketList.count),
                                ipv6: restrictions.egress?.ipv6 == true ? 1 : 0)
                            config.cgroup_v2_fd = restrictions.cgroupV2DirectoryFD
                            // The cloned child works on a copy of this memory: the pointers stay valid there.
                            return holder.withState { state in
                                mcpjail_jail_clone(&config, state, &pid, &releaseFD, &errorFD, &controlFD, &placedInCgroup, &result)
                            }
                        }
                    }
                }
            }
        }
        guard cloned == 0 else { throw failure(result) }
        /// Ends the jail before anything of the server ran, for a failure on this side.
        func abandon() {
            FD.close(controlFD)
            FD.close(errorFD)
            Self.reap(pid)
        }
        do {
            try writeIDMaps(pid: pid, plan: plan)
            if placedInCgroup == 0 {
                for fd in restrictions.cgroupProcsFDs { try Self.write("\(pid)", to: fd, what: "cgroup.procs") }
            }
        } catch {
            var report = mcpjail_spawn_result()
            if mcpjail_jail_abandon(pid, releaseFD, errorFD, controlFD, &report) == 1 { throw failure(report) }
            throw error
        }
        guard mcpjail_jail_build(pid, releaseFD, errorFD, controlFD, &result) == 0 else { throw failure(result) }
        // While the jail builds its file system (about 1 ms): the filter, the cgroups.
        let start: StartRestrictions
        do {
            start = try prepare()
            // (v1 `tasks` files go to the jail, which joins them itself: see SessionCgroup.tasksFDs.)
            for fd in start.cgroupProcsFDs { try Self.write("\(pid)", to: fd, what: "cgroup.procs") }
        } catch {
            abandon()
            throw error
        }
        var verification: PinVerification? = nil
        var micros: UInt64 = 0
        if let pins = restrictions.pins {
            let started = monotonicNanoseconds()
            verification = try verifyInJail(
                pid: pid, pins: pins, watch: restrictions.codeWatch, profile: profile, errorFD: errorFD, controlFD: controlFD)
            micros = (monotonicNanoseconds() - started) / 1000
        }
        let started = start.seccompProgram.withUnsafeBytes { filter in
            start.cgroupTasksFDs.withUnsafeBufferPointer { tasks in
                mcpjail_jail_start(
                    pid, controlFD, errorFD, filter.baseAddress, filter.count, tasks.baseAddress, Int32(tasks.count), &result)
            }
        }
        guard started == 0 else { throw failure(result) }
        return SpawnedServer(pid: pid, pinVerification: verification, pinCheckMicros: micros)
    }

    /// Verifies the pins on exactly what the server will see: through an fd of the jail's
    /// root, once its file system is complete, with nothing of the server started. On a
    /// difference the jail is killed before its exec.
    private func verifyInJail(
        pid: pid_t, pins: PinCheck, watch: CodeWatch?, profile: Profile, errorFD: Int32, controlFD: Int32
    ) throws(MCPJailError) -> PinVerification {
        var result = mcpjail_spawn_result()
        var root: Int32 = -1
        guard mcpjail_jail_receive_root(pid, controlFD, errorFD, &root, &result) == 0 else {
            throw SpawnFailure(stage: Int(result.stage), errno: result.error).error(command: profile.server.command, workdir: profile.server.workdir)
        }
        defer { FD.close(root) }
        #if DEBUG
            Self.runDebugPinHook(profileName: profile.name)
        #endif
        do throws(MCPJailError) {
            let verification = try PinVerifier.verify(pins, inJailRoot: root, watch: watch)
            if let watch {
                if let failure = watch.failure {
                    throw MCPJailError(
                        .pinMismatch, "refusing to start '\(profile.name)': cannot watch its pinned code for changes: \(failure)",
                        hint: "the watch keeps one open file per directory of the code paths; a larger `ulimit -n` "
                            + "(the hard limit) lets it, as do narrower `code` paths")
                }
                if let changed = watch.changedBeforeExec() {
                    throw MCPJailError(
                        .pinMismatch,
                        "refusing to start '\(profile.name)': its pinned code changed on the host while it was verified: \(changed)",
                        hint: "start it again once nothing is changing its files; if the change is wanted, review it and run `mcpjail pin \(profile.name)`")
                }
            }
            return verification
        } catch {
            FD.close(controlFD)
            FD.close(errorFD)
            Self.reap(pid)
            throw error
        }
    }

    #if DEBUG
        /// Tests only (debug builds): `$MCPJAIL_DEBUG_PIN_HOOK`, a program run (and waited
        /// for) once the jail's file system is complete and before its pin check, so that a
        /// test can swap files in exactly that window.
        private static func runDebugPinHook(profileName: String) {
            guard let hook = ProcessInfo.processInfo.environment["MCPJAIL_DEBUG_PIN_HOOK"], !hook.isEmpty else { return }
            (try? ChildProcess(hook, [profileName], environment: ProcessInfo.processInfo.environment))?.wait()
        }
    #endif

    private static func reap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// The ids are mapped 1:1; an ordinary user must deny setgroups before writing gid_map.
    private func writeIDMaps(pid: pid_t, plan: JailPlan) throws(MCPJailError) {
        if !plan.switchIdentity { try Self.write("deny", toPath: "/proc/\(pid)/setgroups") }
        try Self.write("\(plan.uid) \(plan.uid) 1\n", toPath: "/proc/\(pid)/uid_map")
        try Self.write("\(plan.gid) \(plan.gid) 1\n", toPath: "/proc/\(pid)/gid_map")
    }

    private static func write(_ text: String, toPath path: String) throws(MCPJailError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw setupError(path, errno) }
        defer { FD.close(fd) }
        try write(text, to: fd, what: path)
    }

    private static func write(_ text: String, to fd: Int32, what: String) throws(MCPJailError) {
        do {
            try FD.writeAll(fd, Array(text.utf8))
        } catch {
            throw setupError(what, error.errno)
        }
    }

    private static func setupError(_ what: String, _ code: Int32) -> MCPJailError {
        let hint: String? =
            what.hasSuffix("_map") || what.hasSuffix("setgroups")
            ? "user namespaces may be restricted here; see `mcpjail doctor`" : nil
        return MCPJailError(.spawnFailed, "jail setup failed at writing \(what): \(String(cString: strerror(code)))", hint: hint)
    }
}

/// C strings that must outlive a call (the jail child reads them after the clone).
struct CStringPool {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    mutating func add(_ string: String) -> UnsafePointer<CChar> {
        let pointer = strdup(string)!
        pointers.append(pointer)
        return UnsafePointer(pointer)
    }

    func free() {
        for pointer in pointers { Glibc.free(pointer) }
    }
}

/// The jail's namespaces, made ahead of the jail by a small process of their own
/// (`mcpjail_namespace_holder_start`): `run` starts it before it reads the profile, so the
/// namespaces (~0.6 ms, the network namespace most of it) are made on another CPU while
/// mcpjail parses the profile and prepares the session; at the spawn the holder clones the
/// jail into them and exits. It shares mcpjail's memory and fds (it is no copy of mcpjail)
/// and runs a few raw system calls on a stack of its own. ``end()`` reaps it (at the latest
/// when this object goes); it dies with mcpjail. Used by the one thread that starts the
/// session.
public final class NamespaceHolder: @unchecked Sendable {
    private var state: mcpjail_namespace_holder

    private init(state: mcpjail_namespace_holder) {
        self.state = state
    }

    /// Starts a holder, or adopts the one mcpjail's executable started before `main`
    /// (`mcpjail_namespace_holder_start_early`); a failure (no user namespaces here) is the
    /// clone's, with its hint.
    public static func start() throws(MCPJailError) -> NamespaceHolder {
        var state = mcpjail_namespace_holder()
        let early = mcpjail_namespace_holder_take_early(&state)
        if early == 1 { return NamespaceHolder(state: state) }
        guard early == 0, mcpjail_namespace_holder_start(&state) == 0 else {
            throw SpawnFailure(stage: Int(MCPJAIL_STAGE_CLONE.rawValue), errno: errno).error(command: "", workdir: "")
        }
        return NamespaceHolder(state: state)
    }

    /// Ends the holder started before `main`, if there is one and no one adopted it.
    public static func discardEarly() {
        var state = mcpjail_namespace_holder()
        if mcpjail_namespace_holder_take_early(&state) == 1 { mcpjail_namespace_holder_end(&state) }
    }

    /// `body` with the holder's state, for `mcpjail_jail_clone`.
    func withState<Result>(_ body: (UnsafeMutablePointer<mcpjail_namespace_holder>) -> Result) -> Result {
        body(&state)
    }

    /// Ends the holder if it is still waiting, reaps it and frees its stack. Idempotent.
    public func end() {
        mcpjail_namespace_holder_end(&state)
    }

    deinit { end() }
}
