import Glibc
import MCPJailCore

/// One rlimit for the jail's child to apply with setrlimit(2) before exec.
public typealias ResourceLimit = (resource: Int32, soft: UInt64, hard: UInt64)

/// The per-process caps of `[limits]`, as rlimits.
///
/// Which limit is whose job:
/// - `open_files` → RLIMIT_NOFILE (soft = hard).
/// - `file_size` → RLIMIT_FSIZE (soft = hard). A write past it raises SIGXFSZ (which ends
///   the writer unless it ignores the signal) and fails with EFBIG.
/// - `cpu_time` → RLIMIT_CPU: soft at the limit (SIGXCPU), hard one second later (SIGKILL).
/// - RLIMIT_CORE 0 always: a core dump of the server would put its memory (tokens, secrets)
///   on disk.
/// - `memory` is not RLIMIT_AS: address space is not memory (runtimes reserve large
///   mappings they never touch, and RLIMIT_AS breaks them); the cgroup memory controller
///   counts what is really used, for the whole jail. See ``SessionCgroup``.
/// - `pids` is not RLIMIT_NPROC: that counts every process of the user id on the whole
///   host (the same uid outside the jail too), so it is both too wide and too weak. The
///   cgroup pids controller counts the jail's processes only.
///
/// An unlimited value yields no entry: the child keeps what it inherited, since raising a
/// hard limit needs CAP_SYS_RESOURCE in the initial user namespace, which the jail does not
/// have.
public enum ResourceLimits {
    /// `RLIM_INFINITY`.
    public static let infinity: UInt64 = UInt64(bitPattern: -1)

    public static let nofile = Int32(RLIMIT_NOFILE.rawValue)
    public static let fsize = Int32(RLIMIT_FSIZE.rawValue)
    public static let cpu = Int32(RLIMIT_CPU.rawValue)
    public static let core = Int32(RLIMIT_CORE.rawValue)

    /// The rlimits `limits` asks for, in a fixed order (NOFILE, FSIZE, CPU, CORE), unclamped.
    public static func rlimits(for limits: Profile.Limits) -> [ResourceLimit] {
        var out: [ResourceLimit] = []
        let files = UInt64(limits.openFiles)
        out.append((nofile, files, files))
        if let bytes = limits.fileSizeBytes {
            out.append((fsize, UInt64(bytes), UInt64(bytes)))
        }
        if let cpuTime = limits.cpuTime {
            let seconds = cpuSeconds(cpuTime)
            out.append((cpu, seconds, seconds + 1))
        }
        out.append((core, 0, 0))
        return out
    }

    /// CPU time in whole seconds, rounded up (at least 1).
    public static func cpuSeconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(1, seconds + (attoseconds > 0 ? 1 : 0)))
    }

    /// What the child can really apply: each limit lowered to the hard limit this process
    /// has now (`current` returns (soft, hard) for a resource; by default getrlimit), since
    /// the child cannot raise a hard limit. A note says which were lowered, for the log and
    /// for `doctor`.
    public static func applicable(
        for limits: Profile.Limits,
        current: (Int32) -> (soft: UInt64, hard: UInt64)? = ResourceLimits.current
    ) -> (limits: [ResourceLimit], notes: [String]) {
        var notes: [String] = []
        let out = rlimits(for: limits).map { limit -> ResourceLimit in
            guard let hard = current(limit.resource)?.hard, hard != infinity, limit.hard > hard else { return limit }
            notes.append(
                "\(name(limit.resource)) lowered from \(limit.hard) to \(hard): this process's hard limit, which the jail cannot raise")
            return (limit.resource, min(limit.soft, hard), hard)
        }
        return (out, notes)
    }

    /// getrlimit(2) of this process.
    public static func current(_ resource: Int32) -> (soft: UInt64, hard: UInt64)? {
        var value = rlimit()
        guard getrlimit(__rlimit_resource_t(UInt32(resource)), &value) == 0 else { return nil }
        return (UInt64(value.rlim_cur), UInt64(value.rlim_max))
    }

    /// `RLIMIT_NOFILE` and friends, for messages.
    public static func name(_ resource: Int32) -> String {
        switch resource {
        case nofile: "RLIMIT_NOFILE"
        case fsize: "RLIMIT_FSIZE"
        case cpu: "RLIMIT_CPU"
        case core: "RLIMIT_CORE"
        default: "rlimit \(resource)"
        }
    }
}
