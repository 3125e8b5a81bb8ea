import CMCPJailShims
import Glibc
import MCPJailCore

/// The pipe ends a spawned server uses as its stdio (the spawner's side).
public struct ServerStdio: Sendable {
    public var stdin: Int32
    public var stdout: Int32
    public var stderr: Int32

    public init(stdin: Int32, stdout: Int32, stderr: Int32) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// What the child applies to itself between fork and exec, prepared before the fork.
public struct ChildRestrictions: Sendable {
    /// Open `cgroup.procs` files of a v2 cgroup made before the clone: the parent writes the
    /// child's pid into each only when the kernel could not clone it into
    /// ``cgroupV2DirectoryFD`` (before 5.7).
    public var cgroupProcsFDs: [Int32]
    /// The session's v2 cgroup directory (-1: none): the child is cloned into it.
    public var cgroupV2DirectoryFD: Int32
    /// (resource, soft, hard) for setrlimit.
    public var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)]
    /// For a pinned profile: its lock, against which the files are verified as the jail
    /// sees them, after its last mount and before the server's exec.
    public var pins: PinCheck?
    /// With `pins`: watches the verified files from the check on (see ``CodeWatch``).
    public var codeWatch: CodeWatch?
    /// The egress sockets the jail makes and hands over; nil: no network but loopback.
    public var egress: EgressBridge?

    public init(
        cgroupProcsFDs: [Int32] = [], cgroupV2DirectoryFD: Int32 = -1, rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)] = [],
        pins: PinCheck? = nil, codeWatch: CodeWatch? = nil, egress: EgressBridge? = nil
    ) {
        self.codeWatch = codeWatch
        self.cgroupProcsFDs = cgroupProcsFDs
        self.cgroupV2DirectoryFD = cgroupV2DirectoryFD
        self.rlimits = rlimits
        self.pins = pins
        self.egress = egress
    }
}

/// What the server starts under that is prepared while the jail builds its file system:
/// the spawner places the jail in these cgroups, then hands it the filter, and only then
/// does anything of the server run.
public struct StartRestrictions: Sendable {
    /// Open v1 `tasks` files, sent to the jail's first process with its start message: still
    /// one thread, it writes "0" into each (see ``SessionCgroup/tasksFDs``).
    public var cgroupTasksFDs: [Int32]
    /// Open `cgroup.procs` files the parent writes the pid into (a v1 cgroup whose `tasks`
    /// we may not write).
    public var cgroupProcsFDs: [Int32]
    /// A compiled seccomp-BPF program, installed last; empty for none.
    public var seccompProgram: [UInt8]

    public init(cgroupTasksFDs: [Int32] = [], cgroupProcsFDs: [Int32] = [], seccompProgram: [UInt8] = []) {
        self.cgroupTasksFDs = cgroupTasksFDs
        self.cgroupProcsFDs = cgroupProcsFDs
        self.seccompProgram = seccompProgram
    }
}

/// A started server: its pid, which is also its process group and session id.
public struct SpawnedServer: Sendable {
    public var pid: pid_t
    /// For a pinned profile: the check of its files in the jail, and how long it took (µs).
    public var pinVerification: PinVerification?
    public var pinCheckMicros: UInt64

    public init(pid: pid_t, pinVerification: PinVerification? = nil, pinCheckMicros: UInt64 = 0) {
        self.pid = pid
        self.pinVerification = pinVerification
        self.pinCheckMicros = pinCheckMicros
    }
}

/// The seam between the session and how a server is started: ``JailSpawner`` in `run`;
/// tests may put another behind it.
public protocol ServerSpawner: Sendable {
    /// Starts the server `profile` names with `stdio` as its fds 0-2 and `restrictions`
    /// applied, calling `prepare` for the rest while the jail is being built; nothing of the
    /// server runs before `prepare` returned. On failure (`prepare`'s too) nothing is left
    /// running, and the error says which step failed and why.
    func spawn(
        _ profile: Profile, stdio: ServerStdio, restrictions: ChildRestrictions,
        whileTheJailBuilds prepare: () throws(MCPJailError) -> StartRestrictions
    ) throws(MCPJailError) -> SpawnedServer
}

/// A (stage, errno) pair from the child, turned into the user's one line and a hint.
public struct SpawnFailure: Sendable, Equatable {
    public var stage: Int
    public var errno: Int32

    public var stageName: String {
        switch stage {
        case Int(MCPJAIL_STAGE_SETSID.rawValue): "setsid"
        case Int(MCPJAIL_STAGE_PDEATHSIG.rawValue): "parent-death signal"
        case Int(MCPJAIL_STAGE_SIGNALS.rawValue): "signal reset"
        case Int(MCPJAIL_STAGE_STDIO.rawValue): "stdio"
        case Int(MCPJAIL_STAGE_CLOSE_FDS.rawValue): "closing inherited fds"
        case Int(MCPJAIL_STAGE_CHDIR.rawValue): "chdir"
        case Int(MCPJAIL_STAGE_EXEC.rawValue): "exec"
        case Int(MCPJAIL_STAGE_FORK.rawValue): "fork"
        case Int(MCPJAIL_STAGE_CGROUP.rawValue): "joining the cgroup"
        case Int(MCPJAIL_STAGE_RLIMITS.rawValue): "rlimits"
        case Int(MCPJAIL_STAGE_CAPABILITIES.rawValue): "dropping capabilities"
        case Int(MCPJAIL_STAGE_NO_NEW_PRIVS.rawValue): "no_new_privs"
        case Int(MCPJAIL_STAGE_SECCOMP.rawValue): "seccomp"
        case Int(MCPJAIL_STAGE_CLONE.rawValue): "clone (new namespaces)"
        case Int(MCPJAIL_STAGE_WAIT_FOR_PARENT.rawValue): "waiting for the parent"
        case Int(MCPJAIL_STAGE_IDENTITY.rawValue): "switching to the jail's ids"
        case Int(MCPJAIL_STAGE_MOUNT_PRIVATE.rawValue): "private mounts"
        case Int(MCPJAIL_STAGE_NEW_ROOT.rawValue): "the new root"
        case Int(MCPJAIL_STAGE_MOUNT.rawValue): "mounting the profile's paths"
        case Int(MCPJAIL_STAGE_FILES.rawValue): "writing /etc files"
        case Int(MCPJAIL_STAGE_PIVOT_ROOT.rawValue): "pivot_root"
        case Int(MCPJAIL_STAGE_HOSTNAME.rawValue): "hostname"
        case Int(MCPJAIL_STAGE_LOOPBACK.rawValue): "loopback"
        case Int(MCPJAIL_STAGE_INIT_FORK.rawValue): "starting the jail's init"
        case Int(MCPJAIL_STAGE_INSPECT.rawValue): "handing the jail's root to mcpjail for the pin check"
        case Int(MCPJAIL_STAGE_EGRESS_ROUTES.rawValue): "making every address local to the jail (egress routes)"
        case Int(MCPJAIL_STAGE_EGRESS_SOCKET.rawValue): "creating the egress sockets"
        case Int(MCPJAIL_STAGE_EGRESS_HANDOFF.rawValue): "handing the egress sockets to mcpjail"
        case Int(MCPJAIL_STAGE_AFFINITY.rawValue): "restoring the CPU affinity"
        case Int(MCPJAIL_STAGE_NETWORK_NAMESPACE.rawValue): "the network namespace"
        case Int(MCPJAIL_STAGE_NAMESPACE_HOLDER.rawValue): "the namespace holder"
        default: "stage \(stage)"
        }
    }

    public func error(command: String, workdir: String) -> MCPJailError {
        let reason = String(cString: strerror(errno))
        var hint: String? = nil
        switch (stage, errno) {
        case (Int(MCPJAIL_STAGE_EXEC.rawValue), ENOENT):
            hint = "\(command) or its interpreter does not exist; check server.command and the script's #! line"
        case (Int(MCPJAIL_STAGE_EXEC.rawValue), EACCES):
            hint = "\(command) is not executable by this user"
        case (Int(MCPJAIL_STAGE_CHDIR.rawValue), _):
            hint = "server.workdir \(workdir) must be an existing directory inside the jail"
        case (Int(MCPJAIL_STAGE_CLONE.rawValue), EPERM), (Int(MCPJAIL_STAGE_CLONE.rawValue), ENOSPC),
            (Int(MCPJAIL_STAGE_CLONE.rawValue), EACCES):
            hint = "user namespaces are disabled or restricted here; `mcpjail doctor` says how to enable them"
        case (Int(MCPJAIL_STAGE_NETWORK_NAMESPACE.rawValue), ENOSPC):
            hint = "no network namespace is left for this user: the sysctl user.max_net_namespaces is 0 or used up; `mcpjail doctor` checks it"
        case (Int(MCPJAIL_STAGE_NAMESPACE_HOLDER.rawValue), ECHILD):
            hint = "the process that makes the jail's namespaces ended before it was done (was it killed?); nothing was started"
        case (Int(MCPJAIL_STAGE_MOUNT.rawValue), EACCES):
            hint = "a path in [filesystem] is not accessible to the jail's user (root's servers run as nobody)"
        default: break
        }
        return MCPJailError(.spawnFailed, "jail setup failed at \(stageName): \(reason)", hint: hint)
    }
}

/// NULL-terminated `char *const *` arrays built before the fork, so the child allocates nothing.
struct CStringArray {
    let strings: [String]
    init(_ strings: [String]) { self.strings = strings }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
