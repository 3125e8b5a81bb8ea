import Glibc
import MCPJailCore

extension MCPJailError.Code {
    /// The profile asks for a limit this host cannot enforce for this user (strict mode).
    public static let limitsUnavailable = MCPJailError.Code(rawValue: "limits_unavailable")
    /// Creating, configuring or removing the session's cgroup failed.
    public static let cgroup = MCPJailError.Code(rawValue: "cgroup")
}

/// The cgroup controllers mcpjail uses for `[limits]`.
public enum CgroupController: String, Sendable, CaseIterable, Codable {
    case memory, pids, cpu
}

public enum CgroupVersion: String, Sendable, Codable {
    case v1, v2
}

/// What this host has: the cgroup v2 (unified) mount and its controllers, the v1
/// hierarchies by controller, and where this process sits in each. Read from
/// /proc/self/cgroup and /proc/self/mountinfo.
public struct CgroupHost: Sendable, Equatable {
    /// A mounted v1 hierarchy: its mount point, the cgroup path its mount shows as its
    /// root, and this process's cgroup path in it (from /proc/self/cgroup).
    public struct V1Hierarchy: Sendable, Equatable {
        public var mountPoint: String
        public var mountRoot: String
        public var controllers: [String]
        public var ownPath: String

        /// This process's cgroup directory in the hierarchy.
        public var ownDirectory: String { CgroupHost.join(mountPoint, relative(ownPath, to: mountRoot)) }
    }

    /// The cgroup2 mount point, if cgroup2 is mounted.
    public var unifiedMount: String?
    /// The cgroup path the cgroup2 mount shows as its root.
    public var unifiedMountRoot: String
    /// This process's cgroup in the unified hierarchy (`0::/path`).
    public var unifiedOwnPath: String?
    /// Controllers the unified hierarchy's root offers (its cgroup.controllers).
    public var unifiedControllers: [String]
    /// v1 hierarchies by controller name (`memory`, `pids`, `cpu`, ...).
    public var v1: [String: V1Hierarchy]

    public init(
        unifiedMount: String? = nil, unifiedMountRoot: String = "/", unifiedOwnPath: String? = nil,
        unifiedControllers: [String] = [], v1: [String: V1Hierarchy] = [:]
    ) {
        self.unifiedMount = unifiedMount
        self.unifiedMountRoot = unifiedMountRoot
        self.unifiedOwnPath = unifiedOwnPath
        self.unifiedControllers = unifiedControllers
        self.v1 = v1
    }

    /// This process's directory in the unified hierarchy.
    public var unifiedOwnDirectory: String? {
        guard let unifiedMount, let unifiedOwnPath else { return nil }
        return Self.join(unifiedMount, relative(unifiedOwnPath, to: unifiedMountRoot))
    }

    /// `v2` when the unified hierarchy offers memory, pids or cpu, `v1` when v1 hierarchies
    /// hold them, nil when there are no cgroups at all. A hybrid host (v1 controllers and a
    /// nearly empty v2 mount, like systemd's hybrid mode) is `v1`.
    public var version: CgroupVersion? {
        let used = Set(CgroupController.allCases.map(\.rawValue))
        if !used.isDisjoint(with: unifiedControllers) { return .v2 }
        if !used.isDisjoint(with: v1.keys) { return .v1 }
        if unifiedMount != nil { return .v2 }
        return v1.isEmpty ? nil : .v1
    }

    /// Whether /sys/fs/cgroup is itself the unified (v2) hierarchy, as on hosts without v1
    /// cgroups (only a cgroup2 root has cgroup.controllers): one system call, where
    /// ``detect()`` reads /proc and /sys (~0.2 ms at a start). `run` asks it to decide
    /// whether the session's cgroup is made before the jail's clone.
    public static func isUnifiedOnly() -> Bool {
        access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
    }

    /// Reads this process's view.
    public static func detect() -> CgroupHost {
        let cgroup = CgroupFiles.read("/proc/self/cgroup") ?? ""
        let mountinfo = CgroupFiles.read("/proc/self/mountinfo") ?? ""
        var host = parse(procSelfCgroup: cgroup, mountinfo: mountinfo)
        if let mount = host.unifiedMount {
            host.unifiedControllers = CgroupFiles.words(mount + "/cgroup.controllers")
        }
        return host
    }

    /// The pure part of ``detect()``: parses the two proc files. `unifiedControllers` stays
    /// empty (it needs the mounted file system).
    public static func parse(procSelfCgroup: String, mountinfo: String) -> CgroupHost {
        // Byte by byte: the files are ASCII (paths escape what is not), and splitting them by
        // Character (grapheme breaking) and Foundation's `contains` cost each start ~0.3 ms.
        func text(_ bytes: Substring.UTF8View) -> String { String(decoding: bytes, as: UTF8.self) }
        func isText(_ bytes: Substring.UTF8View, _ expected: StaticString) -> Bool {
            bytes.elementsEqual(UnsafeBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
        }
        var ownV1: [String: String] = [:]
        var ownUnified: String?
        for line in procSelfCgroup.utf8.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if isText(fields[0], "0") && fields[1].isEmpty {
                ownUnified = text(fields[2])
            } else {
                for controller in fields[1].split(separator: UInt8(ascii: ",")) {
                    ownV1[text(controller)] = text(fields[2])
                }
            }
        }
        var host = CgroupHost(unifiedOwnPath: ownUnified)
        let cgroupType = Array(" - cgroup".utf8)  // the separator, then cgroup or cgroup2
        for line in mountinfo.utf8.split(separator: UInt8(ascii: "\n")) {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            // (paths escape their spaces, so the first lone "-" after the options is the
            // separator). Only cgroup and cgroup2 mounts are split into fields: most of a
            // host's mounts are not, and this runs at every start.
            let isCgroupMount = line.withContiguousStorageIfAvailable {
                ByteSearch.contains(UnsafeRawBufferPointer($0), cgroupType)
            }
            guard isCgroupMount ?? true else { continue }
            let fields = line.split(separator: UInt8(ascii: " "))
            guard let dash = fields.indices.first(where: { $0 >= 6 && isText(fields[$0], "-") }) else { continue }
            let left = fields[..<dash]
            let right = Array(fields[(dash + 1)...])
            guard left.count >= 5, right.count >= 1 else { continue }
            let root = unescape(text(left[left.startIndex + 3]))
            let mountPoint = unescape(text(left[left.startIndex + 4]))
            if isText(right[0], "cgroup2") {
                if host.unifiedMount == nil {
                    host.unifiedMount = mountPoint
                    host.unifiedMountRoot = root
                }
            } else if isText(right[0], "cgroup") {
                let options = right.count >= 3 ? right[2].split(separator: UInt8(ascii: ",")) : []
                let controllers = options.filter { !$0.contains(UInt8(ascii: "=")) }.map(text).filter { !v1MountOptions.contains($0) }
                for controller in controllers where host.v1[controller] == nil {
                    host.v1[controller] = V1Hierarchy(
                        mountPoint: mountPoint, mountRoot: root, controllers: controllers,
                        ownPath: ownV1[controller] ?? "/")
                }
            }
        }
        return host
    }

    /// cgroup v1 super options that are not controller names.
    static let v1MountOptions: Set<String> = [
        "rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "nofavordynmods",
    ]

    /// mountinfo escapes space, tab, newline and backslash as octal.
    static func unescape(_ field: String) -> String {
        guard field.utf8.contains(UInt8(ascii: "\\")) else { return field }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
                let value = UInt8(String(decoding: bytes[index + 1...index + 3], as: UTF8.self), radix: 8)
            {
                out.append(value)
                index += 4
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func join(_ base: String, _ relative: String) -> String {
        let trimmed = relative.hasPrefix("/") ? String(relative.dropFirst()) : relative
        if trimmed.isEmpty { return base }
        return base.hasSuffix("/") ? base + trimmed : base + "/" + trimmed
    }
}

/// `path` relative to a mount's root (a cgroup namespace or bind mount may show a subtree).
private func relative(_ path: String, to root: String) -> String {
    if root == "/" || root.isEmpty { return path }
    if path == root { return "/" }
    if path.hasPrefix(root + "/") { return String(path.dropFirst(root.count)) }
    return path
}

/// Which mechanism enforces each cgroup limit of a profile on this host for this user, or
/// why none can. Made before anything is created; `doctor` and `check` show it.
public struct CgroupPlan: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var controller: CgroupController
        /// The version that enforces it, or nil when nothing can.
        public var version: CgroupVersion?
        /// The directory under which session cgroups are made (`.../mcpjail`).
        public var parent: String?
        /// Why it cannot be enforced (when `version` is nil).
        public var reason: String?

        /// `cgroup v1 (/sys/fs/cgroup/pids/mcpjail)` or `not enforced: reason`.
        public var summary: String {
            if let version, let parent { return "cgroup \(version.rawValue) (\(parent))" }
            return "not enforced: \(reason ?? "unavailable")"
        }
    }

    /// One entry per controller the profile needs, in the order memory, pids, cpu.
    public var entries: [Entry]
    public var enforcement: Profile.Limits.Enforcement

    public func entry(_ controller: CgroupController) -> Entry? {
        entries.first { $0.controller == controller }
    }

    /// Controllers the profile asks for that nothing here can enforce.
    public var missing: [Entry] { entries.filter { $0.version == nil } }

    /// What is missing as one user line, or nil when everything asked for is enforced.
    public var missingDescription: String? {
        let missing = missing
        guard !missing.isEmpty else { return nil }
        return missing.map { "\($0.controller.rawValue): \($0.reason ?? "unavailable")" }.joined(separator: "; ")
    }

    /// The known fix for a missing cgroup.
    public static func hint(profileName: String) -> String {
        "run as root, or as an ordinary user on a cgroup v2 host in a systemd user scope with delegation: "
            + "systemd-run --user --scope -p Delegate=yes mcpjail run \(profileName); "
            + "or set enforce = \"best-effort\" in [limits] to run with rlimits only"
    }

    /// The controllers `limits` needs.
    public static func controllers(for limits: Profile.Limits) -> [CgroupController] {
        var out: [CgroupController] = []
        if limits.memoryBytes != nil { out.append(.memory) }
        if limits.pids != nil { out.append(.pids) }
        if limits.cpuCores != nil { out.append(.cpu) }
        return out
    }

    /// The plan for `limits` on `host` for the effective user `euid`.
    public static func make(
        for limits: Profile.Limits, host: CgroupHost = .detect(), euid: uid_t = geteuid()
    ) -> CgroupPlan {
        CgroupPlan(
            entries: controllers(for: limits).map { entry(for: $0, host: host, euid: euid) },
            enforcement: limits.enforce)
    }

    /// How `controller` would be enforced, whatever the profile says.
    public static func entry(for controller: CgroupController, host: CgroupHost, euid: uid_t) -> Entry {
        let name = controller.rawValue
        if host.unifiedControllers.contains(name), let mount = host.unifiedMount {
            return v2Entry(controller, mount: mount, host: host, euid: euid)
        }
        if let hierarchy = host.v1[name] {
            let own = hierarchy.ownDirectory
            if CgroupFiles.isWritableDirectory(own) {
                return Entry(controller: controller, version: .v1, parent: own + "/mcpjail")
            }
            return Entry(
                controller: controller, version: nil, parent: nil,
                reason: "the cgroup v1 \(name) hierarchy is mounted at \(hierarchy.mountPoint), but \(own) is not writable "
                    + "by uid \(euid) (cgroup v1 creates cgroups as root only)")
        }
        if host.unifiedMount != nil {
            return Entry(
                controller: controller, version: nil, parent: nil,
                reason: "no \(name) controller: the cgroup v2 hierarchy at \(host.unifiedMount!) does not offer it "
                    + "and no cgroup v1 \(name) hierarchy is mounted")
        }
        return Entry(controller: controller, version: nil, parent: nil, reason: "no cgroup file system is mounted")
    }

    private static func v2Entry(_ controller: CgroupController, mount: String, host: CgroupHost, euid: uid_t) -> Entry {
        let name = controller.rawValue
        if euid == 0 {
            if CgroupFiles.isWritableDirectory(mount) {
                return Entry(controller: controller, version: .v2, parent: CgroupHost.join(mount, "mcpjail"))
            }
            return Entry(
                controller: controller, version: nil, parent: nil,
                reason: "the cgroup v2 hierarchy at \(mount) is read-only here")
        }
        guard let own = host.unifiedOwnDirectory else {
            return Entry(controller: controller, version: nil, parent: nil, reason: "this process is in no cgroup v2 cgroup")
        }
        var info = stat()
        guard stat(own, &info) == 0, info.st_uid == euid, CgroupFiles.isWritableDirectory(own),
            access(own + "/cgroup.subtree_control", W_OK) == 0, access(own + "/cgroup.procs", W_OK) == 0
        else {
            return Entry(
                controller: controller, version: nil, parent: nil,
                reason: "this process's cgroup \(own) is not delegated to uid \(euid) (only root or a delegated "
                    + "subtree, such as a systemd user scope with Delegate=yes, may create cgroups)")
        }
        guard CgroupFiles.words(own + "/cgroup.controllers").contains(name) else {
            return Entry(
                controller: controller, version: nil, parent: nil,
                reason: "the \(name) controller is not delegated to \(own) (its parent does not enable it)")
        }
        return Entry(controller: controller, version: .v2, parent: own)
    }
}

/// The cgroup(s) of one session: created with the profile's limits before the server
/// starts (a v2 one before the jail is cloned into it, v1 ones while the jail builds its
/// file system), the jail's first process placed in them before the server starts (see
/// ``tasksFDs`` and ``procsFDs``),
/// emptied with ``killAll()`` and removed with ``remove()`` when the session ends.
///
/// cgroup v2: one directory, `/sys/fs/cgroup/mcpjail/SESSION` as root (controllers enabled
/// in each parent's cgroup.subtree_control), or `OWN/mcpjail-SESSION` inside a delegated
/// subtree as an ordinary user (mcpjail first moves itself into `OWN/mcpjail-supervisor`,
/// since a v2 cgroup that hands controllers to its children may hold no processes).
/// cgroup v1: one directory per hierarchy, `HIERARCHY/OWN/mcpjail/SESSION`, under
/// mcpjail's own cgroup, so the jail never escapes limits mcpjail itself runs under.
public final class SessionCgroup: @unchecked Sendable {
    public struct Directory: Sendable, Equatable {
        public var version: CgroupVersion
        public var controllers: [CgroupController]
        public var path: String
    }

    public let plan: CgroupPlan
    public let directories: [Directory]
    /// The v2 directory's `cgroup.procs`, open (O_WRONLY | O_CLOEXEC): mcpjail writes the
    /// jail's pid into it only when the kernel cannot clone the jail into the directory
    /// (see ``v2DirectoryFD``). Closed by ``remove()`` (or deinit).
    public private(set) var v2ProcsFDs: [Int32]
    /// `cgroup.procs` of v1 directories whose `tasks` file we may not write (a delegation
    /// made only cgroup.procs writable): mcpjail writes the jail's pid into each before the
    /// server starts. Closed like ``v2ProcsFDs``.
    public private(set) var v1ProcsFDs: [Int32]
    /// Every open `cgroup.procs` fd: ``v2ProcsFDs`` and ``v1ProcsFDs``.
    public var procsFDs: [Int32] { v2ProcsFDs + v1ProcsFDs }
    /// v1 directories: open (O_WRONLY | O_CLOEXEC) fds of their `tasks` files, handed to the
    /// jail's first process with its start message; still one thread, it writes "0" into
    /// each. A thread moving itself skips the kernel's global threadgroup lock, whose write
    /// side waits for an RCU grace period: writing a pid into v1 `cgroup.procs` took 15-20 ms
    /// of every start on the 2-CPU test machine, and a pid into `tasks` 11 ms (the lock is
    /// taken for any pid but the writer's own), "0" into `tasks` 0.01-0.04 ms. The
    /// permission check uses the opener's (mcpjail's) credentials. Closed like ``procsFDs``.
    public private(set) var tasksFDs: [Int32]
    /// The v2 directory, open (O_RDONLY | O_DIRECTORY | O_CLOEXEC), or -1: the jail is
    /// cloned straight into it (CLONE_INTO_CGROUP), and ``procsFDs`` serve only kernels
    /// before 5.7. Closed like ``procsFDs``.
    public private(set) var v2DirectoryFD: Int32
    private var removed = false

    init(plan: CgroupPlan, directories: [Directory], v2ProcsFDs: [Int32], v1ProcsFDs: [Int32], tasksFDs: [Int32], v2DirectoryFD: Int32) {
        self.plan = plan
        self.directories = directories
        self.v2ProcsFDs = v2ProcsFDs
        self.v1ProcsFDs = v1ProcsFDs
        self.tasksFDs = tasksFDs
        self.v2DirectoryFD = v2DirectoryFD
    }

    deinit {
        closeFDs()
    }

    /// Creates the session's cgroups for `profile`'s limits. Returns nil when the profile
    /// asks for no cgroup limit, or when it says `enforce = "best-effort"` and nothing here
    /// can enforce them. Throws `.limitsUnavailable` when a limit cannot be enforced and the
    /// profile is strict, naming what is missing and how to get it; `.cgroup` when creating
    /// or configuring failed (nothing is left behind).
    public static func create(for profile: Profile, session: String) throws(MCPJailError) -> SessionCgroup? {
        try create(for: profile, session: session, plan: CgroupPlan.make(for: profile.limits))
    }

    public static func create(
        for profile: Profile, session: String, plan: CgroupPlan
    ) throws(MCPJailError) -> SessionCgroup? {
        guard !session.isEmpty, !session.utf8.contains(UInt8(ascii: "/")), session != ".", session != ".." else {
            throw MCPJailError(.invalidArgument, "invalid cgroup session name '\(session)'")
        }
        if let missing = plan.missingDescription, plan.enforcement == .strict {
            throw MCPJailError(
                .limitsUnavailable,
                "cannot enforce the [limits] of '\(profile.name)' here: \(missing)",
                hint: CgroupPlan.hint(profileName: profile.name))
        }
        let usable = plan.entries.filter { $0.version != nil && $0.parent != nil }
        if usable.isEmpty { return nil }

        // Group controllers by directory: v2 is one directory, v1 one per hierarchy (cpu and
        // cpuacct are often one hierarchy; each controller here has its own parent anyway).
        var groups: [(version: CgroupVersion, parent: String, controllers: [CgroupController])] = []
        for entry in usable {
            if let index = groups.firstIndex(where: { $0.version == entry.version && $0.parent == entry.parent }) {
                groups[index].controllers.append(entry.controller)
            } else {
                groups.append((entry.version!, entry.parent!, [entry.controller]))
            }
        }
        var made: [Directory] = []
        var v2ProcsFDs: [Int32] = []
        var v1ProcsFDs: [Int32] = []
        var tasksFDs: [Int32] = []
        var v2DirectoryFD: Int32 = -1
        let cleanup = {
            for fd in v2ProcsFDs + v1ProcsFDs + tasksFDs + [v2DirectoryFD] where fd >= 0 { _ = Glibc.close(fd) }
            for directory in made.reversed() { _ = rmdir(directory.path) }
        }
        do throws(MCPJailError) {
            for group in groups {
                let path: String
                switch group.version {
                case .v2:
                    path = try makeV2(parent: group.parent, controllers: group.controllers, session: session)
                case .v1:
                    path = group.parent + "/" + session
                    try CgroupFiles.makeSessionDirectory(path, parent: group.parent)
                }
                made.append(Directory(version: group.version, controllers: group.controllers, path: path))
                try writeLimits(profile.limits, version: group.version, controllers: group.controllers, directory: path)
                // v1: `tasks`, unless a delegation made only cgroup.procs writable for us.
                let tasks = group.version == .v1 ? open(path + "/tasks", O_WRONLY | O_CLOEXEC) : -1
                if tasks >= 0 {
                    tasksFDs.append(tasks)
                    continue
                }
                let fd = open(path + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
                if fd < 0 { throw CgroupFiles.failure("open", path + "/cgroup.procs", errno) }
                if group.version == .v1 {
                    v1ProcsFDs.append(fd)
                } else {
                    v2ProcsFDs.append(fd)
                    v2DirectoryFD = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    if v2DirectoryFD < 0 { throw CgroupFiles.failure("open", path, errno) }
                }
            }
        } catch {
            cleanup()
            throw error
        }
        return SessionCgroup(
            plan: plan, directories: made, v2ProcsFDs: v2ProcsFDs, v1ProcsFDs: v1ProcsFDs, tasksFDs: tasksFDs,
            v2DirectoryFD: v2DirectoryFD)
    }

    /// v2: the session directory under `parent`, with `controllers` enabled for it.
    private static func makeV2(parent: String, controllers: [CgroupController], session: String) throws(MCPJailError) -> String {
        let enable = controllers.map { "+" + $0.rawValue }.joined(separator: " ")
        if geteuid() == 0 {
            // /sys/fs/cgroup/mcpjail/SESSION: the root cgroup may hold processes and hand out
            // controllers; mcpjail/ holds none.
            let mount = String(parent.dropLast("/mcpjail".count))
            try CgroupFiles.write(mount + "/cgroup.subtree_control", enable)
            let path = parent + "/" + session
            try CgroupFiles.makeSessionDirectory(path, parent: parent) { () throws(MCPJailError) in
                try CgroupFiles.write(parent + "/cgroup.subtree_control", enable)
            }
            return path
        }
        // A delegated subtree: move mcpjail itself into a leaf, so the subtree's root holds no
        // process and may enable controllers for its children.
        let enabled = CgroupFiles.words(parent + "/cgroup.subtree_control")
        if !controllers.allSatisfy({ enabled.contains($0.rawValue) }) {
            let supervisor = parent + "/mcpjail-supervisor"
            try CgroupFiles.makeDirectory(supervisor)
            try CgroupFiles.write(supervisor + "/cgroup.procs", "0")
            try CgroupFiles.write(parent + "/cgroup.subtree_control", enable)
        }
        let path = parent + "/mcpjail-" + session
        try CgroupFiles.makeDirectory(path, mustBeNew: true)
        return path
    }

    static func writeLimits(
        _ limits: Profile.Limits, version: CgroupVersion, controllers: [CgroupController], directory: String
    ) throws(MCPJailError) {
        for controller in controllers {
            switch (controller, version) {
            case (.memory, .v2):
                guard let bytes = limits.memoryBytes else { continue }
                try CgroupFiles.write(directory + "/memory.max", String(bytes))
                try CgroupFiles.writeIfPresent(directory + "/memory.swap.max", "0")
                // One OOM kill takes the whole jail: a limit hit ends the session.
                try CgroupFiles.writeIfPresent(directory + "/memory.oom.group", "1")
            case (.memory, .v1):
                guard let bytes = limits.memoryBytes else { continue }
                try CgroupFiles.write(directory + "/memory.limit_in_bytes", String(bytes))
                // memsw (memory + swap) equal to the memory limit: no swap. Present only with
                // swap accounting.
                try CgroupFiles.writeIfPresent(directory + "/memory.memsw.limit_in_bytes", String(bytes))
            case (.pids, _):
                guard let pids = limits.pids else { continue }
                try CgroupFiles.write(directory + "/pids.max", String(pids))
            case (.cpu, .v2):
                guard let cores = limits.cpuCores else { continue }
                let (quota, period) = cpuQuota(cores)
                try CgroupFiles.write(directory + "/cpu.max", "\(quota) \(period)")
            case (.cpu, .v1):
                guard let cores = limits.cpuCores else { continue }
                let (quota, period) = cpuQuota(cores)
                try CgroupFiles.write(directory + "/cpu.cfs_period_us", String(period))
                try CgroupFiles.write(directory + "/cpu.cfs_quota_us", String(quota))
            }
        }
    }

    /// CPU bandwidth for `cores`: (quota, period) in microseconds, period 100 ms, quota at
    /// least 1 ms (the kernel's minimum).
    public static func cpuQuota(_ cores: Double) -> (quota: Int, period: Int) {
        let period = 100_000
        return (max(1000, Int((cores * Double(period)).rounded())), period)
    }

    /// The pids in each of the session's cgroups (as this pid namespace numbers them).
    public func pids() -> [pid_t] {
        var out: [pid_t] = []
        for directory in directories {
            for word in CgroupFiles.words(directory.path + "/cgroup.procs") {
                if let pid = pid_t(word), !out.contains(pid) { out.append(pid) }
            }
        }
        return out
    }

    /// SIGKILLs every process in the session's cgroups (cgroup.kill on v2 where the kernel
    /// has it, else by pid until they are empty, so a forking process cannot outrun it).
    public func killAll() {
        for directory in directories where directory.version == .v2 {
            _ = try? CgroupFiles.writeIfPresent(directory.path + "/cgroup.kill", "1")
        }
        var backoff = CgroupBackoff()
        while backoff.remaining > 0 {
            let pids = pids()
            if pids.isEmpty { return }
            for pid in pids where pid > 0 { _ = kill(pid, SIGKILL) }
            backoff.pause()
        }
    }

    /// Removes the session's cgroups (call after ``killAll()``; waits up to ~2 s for dying
    /// processes to leave), closes its fds, and removes the shared `mcpjail` parent when
    /// no other session uses it. Idempotent. Returns the directories that could not be
    /// removed (empty on success).
    @discardableResult
    public func remove() -> [String] {
        closeFDs()
        if removed { return [] }
        var left: [String] = []
        for directory in directories.reversed() {
            var gone = false
            var backoff = CgroupBackoff()
            while backoff.remaining > 0 {
                if rmdir(directory.path) == 0 || errno == ENOENT {
                    gone = true
                    break
                }
                if errno != EBUSY { break }
                backoff.pause()
            }
            if gone {
                let parent = directory.path.lastIndex(of: "/").map { directory.path[..<$0] } ?? ""
                if parent.hasSuffix("/mcpjail") { _ = rmdir(String(parent)) }  // EBUSY while others use it
            } else {
                left.append(directory.path)
            }
        }
        removed = left.isEmpty
        return left
    }

    /// Which limit fired, if one did: `"memory"` when the OOM killer killed a process of the
    /// jail (v2 memory.events oom_kill; v1 memory.oom_control oom_kill, or memory.failcnt
    /// with under_oom), `"pids"` when a fork or clone failed at pids.max (pids.events max).
    public func limitHit() -> String? {
        limitReport()?.limit
    }

    /// ``limitHit()`` with the counter that shows it, for the audit log and the client.
    public func limitReport() -> (limit: String, detail: String)? {
        for directory in directories where directory.controllers.contains(.memory) {
            switch directory.version {
            case .v2:
                if let kills = CgroupFiles.counter(directory.path + "/memory.events", "oom_kill"), kills > 0 {
                    return ("memory", "memory limit reached: \(kills) process(es) killed by the OOM killer")
                }
            case .v1:
                if let kills = CgroupFiles.counter(directory.path + "/memory.oom_control", "oom_kill"), kills > 0 {
                    return ("memory", "memory limit reached: \(kills) process(es) killed by the OOM killer")
                }
                if let under = CgroupFiles.counter(directory.path + "/memory.oom_control", "under_oom"), under > 0 {
                    return ("memory", "memory limit reached: the jail is out of memory")
                }
            }
        }
        for directory in directories where directory.controllers.contains(.pids) {
            if let refused = CgroupFiles.counter(directory.path + "/pids.events", "max"), refused > 0 {
                return ("pids", "process limit reached: \(refused) fork/clone call(s) refused")
            }
        }
        return nil
    }

    private func closeFDs() {
        for fd in procsFDs + tasksFDs + [v2DirectoryFD] where fd >= 0 { _ = Glibc.close(fd) }
        v2ProcsFDs = []
        v1ProcsFDs = []
        tasksFDs = []
        v2DirectoryFD = -1
    }
}

/// Small-file access for cgroupfs and procfs (whose files report size 0).
enum CgroupFiles {
    static func read(_ path: String) -> String? {
        FileContents.bytes(path, limit: 16 << 20).map { String(decoding: $0, as: UTF8.self) }
    }

    static func words(_ path: String) -> [String] {
        (read(path) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
    }

    /// `key N` in a flat-keyed file (memory.events, pids.events, memory.oom_control).
    static func counter(_ path: String, _ key: String) -> Int? {
        guard let text = read(path) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key { return Int(fields[1]) }
        }
        return nil
    }

    static func isWritableDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR && access(path, W_OK) == 0
    }

    static func failure(_ call: String, _ path: String, _ error: Int32) -> MCPJailError {
        MCPJailError(.cgroup, "cgroup: \(call) \(path): \(String(cString: strerror(error)))")
    }

    static func write(_ path: String, _ value: String) throws(MCPJailError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw failure("open", path, errno) }
        defer { _ = Glibc.close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written >= 0 { return }
            if errno == EINTR { continue }
            throw failure("write '\(value)' to", path, errno)
        }
    }

    static func writeIfPresent(_ path: String, _ value: String) throws(MCPJailError) {
        guard access(path, F_OK) == 0 else { return }
        try write(path, value)
    }

    /// mkdir `parent` (shared by sessions) and then `path` (new). Another session's
    /// ``SessionCgroup/remove()`` may rmdir an empty `parent` in between: then again.
    static func makeSessionDirectory(
        _ path: String, parent: String, configureParent: () throws(MCPJailError) -> Void = {}
    ) throws(MCPJailError) {
        var attempt = 0
        while true {
            attempt += 1
            do throws(MCPJailError) {
                try makeDirectory(parent)
                try configureParent()
                if mkdir(path, 0o755) == 0 { return }
                let error = errno
                if error == ENOENT && attempt < 5 { continue }
                throw failure("mkdir", path, error)
            } catch {
                if attempt < 5 && access(parent, F_OK) != 0 { continue }
                throw error
            }
        }
    }

    /// mkdir; an existing directory is fine unless `mustBeNew`.
    static func makeDirectory(_ path: String, mustBeNew: Bool = false) throws(MCPJailError) {
        if mkdir(path, 0o755) == 0 { return }
        let error = errno
        if error == EEXIST && !mustBeNew { return }
        throw failure("mkdir", path, error)
    }
}

/// Waiting for dying processes to leave a cgroup: 0.1 ms first, doubling to 5 ms, for
/// about 2 s in all. Most are gone within a fraction of a millisecond, and a fixed 5 ms
/// pause was most of every session's teardown.
struct CgroupBackoff {
    private var nanoseconds = 100_000
    private(set) var remaining = 2_000_000_000

    mutating func pause() {
        var pause = timespec(tv_sec: 0, tv_nsec: nanoseconds)
        nanosleep(&pause, nil)
        remaining -= nanoseconds
        nanoseconds = min(nanoseconds * 2, 5_000_000)
    }
}
