import FoundationEssentials
import Glibc
import MCPJailCore

/// One finding of `mcpjail doctor`: what was checked, how it stands, and a fix where one
/// is known.
public struct HostFinding: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        /// Available to this user.
        case ok
        /// Not available at all.
        case missing
        /// Available only partly, or not to this user.
        case limited
        /// Cannot tell from here.
        case unknown
    }

    /// A stable name: `user-namespaces`, `seccomp`, `cgroup`, `cgroup-memory`, `landlock`.
    public var check: String
    public var status: Status
    public var detail: String
    public var hint: String?

    public init(check: String, status: Status, detail: String, hint: String? = nil) {
        self.check = check
        self.status = status
        self.detail = detail
        self.hint = hint
    }
}

/// Which protections this kernel can give this user: the kernel side of `mcpjail doctor`.
/// Every check reads files under `proc` and `sys` (parameters, so tests can point them at
/// a fixture tree) and never changes anything.
public struct HostFeatures: Sendable {
    public var proc: String
    public var sys: String
    public var euid: uid_t
    public var cgroupHost: CgroupHost

    public init(proc: String = "/proc", sys: String = "/sys", euid: uid_t = geteuid(), cgroupHost: CgroupHost = .detect()) {
        self.proc = proc
        self.sys = sys
        self.euid = euid
        self.cgroupHost = cgroupHost
    }

    /// Every check, in a fixed order.
    public func findings() -> [HostFinding] {
        [userNamespaces(), seccomp(), cgroup()] + CgroupController.allCases.map(cgroupController) + [landlock()]
    }

    private func read(_ path: String) -> String? {
        CgroupFiles.read(path)?.trimmingWhitespace()
    }

    /// max_user_namespaces (and max_net_namespaces: each jail makes one), Debian's
    /// unprivileged_userns_clone, and Ubuntu 24.04's AppArmor restriction of unprivileged
    /// user namespaces.
    public func userNamespaces() -> HostFinding {
        let check = "user-namespaces"
        guard let maxText = read(proc + "/sys/user/max_user_namespaces"), let max = Int(maxText) else {
            return HostFinding(
                check: check, status: .missing, detail: "the kernel has no user namespaces (no \(proc)/sys/user/max_user_namespaces)",
                hint: "use a kernel built with CONFIG_USER_NS=y")
        }
        if max == 0 {
            return HostFinding(
                check: check, status: .missing, detail: "user.max_user_namespaces is 0: user namespaces are switched off",
                hint: "sudo sysctl user.max_user_namespaces=15000")
        }
        var detail = "max_user_namespaces=\(max)"
        // Every jail makes a network namespace of its own (in its user namespace).
        if let netText = read(proc + "/sys/user/max_net_namespaces"), let maxNet = Int(netText) {
            if maxNet == 0 {
                return HostFinding(
                    check: check, status: .missing,
                    detail: detail + ", max_net_namespaces=0: network namespaces are switched off, and every jail needs one",
                    hint: "sudo sysctl user.max_net_namespaces=15000")
            }
            detail += ", max_net_namespaces=\(maxNet)"
        }
        if let clone = read(proc + "/sys/kernel/unprivileged_userns_clone") {
            detail += ", unprivileged_userns_clone=\(clone)"
            if clone == "0" {
                return HostFinding(
                    check: check, status: euid == 0 ? .ok : .limited,
                    detail: detail + ": only root may create user namespaces",
                    hint: euid == 0 ? nil : "sudo sysctl kernel.unprivileged_userns_clone=1")
            }
        }
        if let restrict = read(proc + "/sys/kernel/apparmor_restrict_unprivileged_userns") {
            detail += ", apparmor_restrict_unprivileged_userns=\(restrict)"
            if restrict == "1" {
                return HostFinding(
                    check: check, status: euid == 0 ? .ok : .limited,
                    detail: detail + ": AppArmor (Ubuntu 24.04 and later) denies unprivileged user namespaces "
                        + "to programs without a profile that allows them",
                    hint: euid == 0
                        ? nil
                        : "sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor "
                            + "profile for mcpjail with `userns,` (like /etc/apparmor.d/bwrap-userns-restrict)")
            }
        }
        return HostFinding(check: check, status: .ok, detail: detail)
    }

    /// seccomp filters and the actions mcpjail's filter uses (kill_process, errno).
    public func seccomp() -> HostFinding {
        let check = "seccomp"
        guard let actions = read(proc + "/sys/kernel/seccomp/actions_avail") else {
            return HostFinding(
                check: check, status: .missing, detail: "no seccomp filter support (no \(proc)/sys/kernel/seccomp/actions_avail)",
                hint: "use a kernel built with CONFIG_SECCOMP_FILTER=y")
        }
        let available = actions.split(separator: " ").map(String.init)
        let needed = ["kill_process", "errno"].filter { !available.contains($0) }
        if !needed.isEmpty {
            return HostFinding(
                check: check, status: .limited,
                detail: "actions: \(available.joined(separator: " ")); missing \(needed.joined(separator: ", "))")
        }
        return HostFinding(check: check, status: .ok, detail: "actions: \(available.joined(separator: " "))")
    }

    /// The cgroup version(s) mounted.
    public func cgroup() -> HostFinding {
        let host = cgroupHost
        var parts: [String] = []
        if !host.v1.isEmpty {
            let names = Set(host.v1.keys).intersection(["memory", "pids", "cpu", "cpuacct", "cpuset", "io", "blkio", "freezer", "devices"])
            parts.append("v1 hierarchies: \(names.sorted().joined(separator: ", "))")
        }
        if let mount = host.unifiedMount {
            let controllers = host.unifiedControllers.isEmpty ? "no controllers" : "controllers: " + host.unifiedControllers.joined(separator: " ")
            parts.append("v2 at \(mount) (\(controllers))")
        }
        guard let version = host.version else {
            return HostFinding(check: "cgroup", status: .missing, detail: "no cgroup file system is mounted", hint: "mount cgroup2 at /sys/fs/cgroup")
        }
        let hybrid = !host.v1.isEmpty && host.unifiedMount != nil ? " (hybrid)" : ""
        return HostFinding(check: "cgroup", status: .ok, detail: "cgroup \(version.rawValue)\(hybrid): " + parts.joined(separator: "; "))
    }

    /// Whether this user can make a cgroup that enforces `controller`, and where.
    public func cgroupController(_ controller: CgroupController) -> HostFinding {
        let entry = CgroupPlan.entry(for: controller, host: cgroupHost, euid: euid)
        let check = "cgroup-" + controller.rawValue
        if let version = entry.version, let parent = entry.parent {
            return HostFinding(check: check, status: .ok, detail: "cgroup \(version.rawValue), sessions under \(parent)")
        }
        return HostFinding(
            check: check, status: .missing, detail: entry.reason ?? "unavailable",
            hint: euid == 0 ? nil : CgroupPlan.hint(profileName: "NAME"))
    }

    /// Landlock, from the active LSM list.
    public func landlock() -> HostFinding {
        guard let lsms = read(sys + "/kernel/security/lsm") else {
            return HostFinding(
                check: "landlock", status: .unknown,
                detail: "cannot tell: \(sys)/kernel/security/lsm is not readable (securityfs not mounted here)")
        }
        if lsms.split(separator: ",").contains("landlock") {
            return HostFinding(check: "landlock", status: .ok, detail: "active LSMs: \(lsms)")
        }
        return HostFinding(
            check: "landlock", status: .missing, detail: "active LSMs: \(lsms)",
            hint: "boot with lsm=landlock,... (kernel 5.13 or later with CONFIG_SECURITY_LANDLOCK=y)")
    }

    /// Which protections `mcpjail run` would give `profile` here: each limit and its
    /// mechanism, the rlimits, and the seccomp filter.
    public func protections(for profile: Profile) -> ProfileProtections {
        let plan = CgroupPlan.make(for: profile.limits, host: cgroupHost, euid: euid)
        var limits: [ProfileProtections.Limit] = []
        func add(_ key: String, _ value: String?, _ controller: CgroupController) {
            guard let value else {
                limits.append(.init(key: key, value: "unlimited", mechanism: "none", enforced: true))
                return
            }
            let entry = plan.entry(controller)
            let enforced = entry?.version != nil
            let mechanism = enforced ? entry?.summary ?? "none" : "none here: see the cgroup-\(controller.rawValue) check"
            limits.append(.init(key: key, value: value, mechanism: mechanism, enforced: enforced))
        }
        let l = profile.limits
        add("memory", l.memoryBytes.map(ProfileFormat.size), .memory)
        add("pids", l.pids.map(String.init), .pids)
        add("cpu", l.cpuCores.map { ProfileFormat.cores($0) + " cores" }, .cpu)
        for (resource, soft, hard) in ResourceLimits.rlimits(for: l) {
            let (key, value): (String, String) = switch resource {
            case ResourceLimits.nofile: ("open_files", "\(soft)")
            case ResourceLimits.fsize: ("file_size", ProfileFormat.size(Int(soft)))
            case ResourceLimits.cpu: ("cpu_time", "\(soft)s (kill at \(hard)s)")
            default: ("core_dumps", soft == 0 ? "off" : "\(soft)")
            }
            limits.append(.init(
                key: key, value: value,
                mechanism: "rlimit \(ResourceLimits.name(resource))", enforced: true))
        }
        limits.append(.init(
            key: "wall_time", value: l.wallTime.map(ProfileFormat.duration) ?? "unlimited",
            mechanism: l.wallTime == nil ? "none" : "supervisor timer", enforced: true))
        let seccompFinding = seccomp()
        var seccompLine = "default deny list"
        if !profile.seccomp.allow.isEmpty { seccompLine += ", allowing \(profile.seccomp.allow.joined(separator: " "))" }
        if !profile.seccomp.deny.isEmpty { seccompLine += ", also denying \(profile.seccomp.deny.joined(separator: " "))" }
        var refusal: String? = nil
        if !plan.missing.isEmpty {
            let names = plan.missing.map(\.controller.rawValue).joined(separator: ", ")
            refusal = profile.limits.enforce == .strict
                ? "run refuses: \(names) cannot be enforced here and enforce = \"strict\""
                : "runs without the \(names) limit (enforce = \"best-effort\"); rlimits still apply"
        }
        let rules = profile.network.egress
        let network = rules.isEmpty
            ? "loopback only (no [network] egress)"
            : "egress to \(rules.map(\.description).joined(separator: ", ")) only, through mcpjail's DNS stub and proxy; "
                + "every connection and refused attempt audited"
        let lock = PinLock.path(forProfileAt: profile.path, name: profile.name)
        let hasLock = access(lock, F_OK) == 0
        let pins = !profile.server.pinned
            ? "not pinned (pinned = false): runs unverified, every audit record says so"
            : hasLock
                ? "\(lock): verified in the jail before exec, watched while the server runs"
                : "pinned, but \(lock) does not exist: run refuses until `mcpjail pin \(profile.name)`"
        let limitsStartable = !(plan.missingDescription != nil && l.enforce == .strict)
        return ProfileProtections(
            name: profile.name, limits: limits,
            seccomp: seccompFinding.status == .ok ? seccompLine : "unavailable: \(seccompFinding.detail)",
            network: network, pins: pins,
            userNamespaces: userNamespaces().status == .ok, enforce: l.enforce.rawValue, note: refusal,
            startable: limitsStartable && (!profile.server.pinned || hasLock))
    }
}

/// What `mcpjail run NAME` would enforce on this host.
public struct ProfileProtections: Sendable, Equatable, Codable {
    public struct Limit: Sendable, Equatable, Codable {
        public var key: String
        public var value: String
        public var mechanism: String
        public var enforced: Bool
    }

    public var name: String
    public var limits: [Limit]
    public var seccomp: String
    /// What the server can reach: loopback only, or the egress allow-list.
    public var network: String
    /// Whether the profile is pinned, and whether its lock exists.
    public var pins: String
    public var userNamespaces: Bool
    public var enforce: String
    /// What is missing, and what `run` does about it.
    public var note: String?
    /// Whether `run` would start it here (false: a strict profile asks for a missing limit,
    /// or a pinned profile has no lock).
    public var startable: Bool

    enum CodingKeys: String, CodingKey {
        case name, limits, seccomp, network, pins, enforce, note, startable
        case userNamespaces = "user_namespaces"
    }
}
