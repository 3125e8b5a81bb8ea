import CMCPJailShims
import Foundation
import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

/// Cgroup detection and planning, from fixtures (no privileges needed).
@Suite("Cgroup detection and planning")
struct CgroupDetectionTests {
    /// This development machine: v1 memory/pids/cpu hierarchies, an empty v2 mount.
    static let hybridCgroup = """
        9:name=systemd:/
        8:pids:/
        4:memory:/process_api/3af5
        2:cpu,cpuacct:/
        0::/

        """
    static let hybridMountinfo = """
        23 1 0:21 / / rw,relatime - overlay overlay rw
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

        """

    @Test("a hybrid v1 host: each controller's hierarchy and this process's cgroup in it")
    func hybrid() {
        let host = CgroupHost.parse(procSelfCgroup: Self.hybridCgroup, mountinfo: Self.hybridMountinfo)
        #expect(host.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(host.unifiedOwnPath == "/")
        #expect(host.v1["memory"]?.ownDirectory == "/sys/fs/cgroup/memory/process_api/3af5")
        #expect(host.v1["pids"]?.ownDirectory == "/sys/fs/cgroup/pids")
        #expect(host.v1["cpu"]?.mountPoint == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(host.v1["cpu"]?.controllers == ["cpu", "cpuacct"])
        #expect(host.v1["name=systemd"] == nil)
        #expect(host.v1["xattr"] == nil)
        #expect(host.version == .v1)
    }

    @Test("a pure v2 host, and a container whose cgroup namespace shows a subtree")
    func unified() {
        var host = CgroupHost.parse(
            procSelfCgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.scope\n",
            mountinfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
        host.unifiedControllers = ["cpu", "memory", "pids"]
        #expect(host.version == .v2)
        #expect(host.unifiedOwnDirectory == "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.scope")
        let container = CgroupHost.parse(
            procSelfCgroup: "0::/docker/abc/sub\n",
            mountinfo: "30 23 0:26 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n")
        #expect(container.unifiedOwnDirectory == "/sys/fs/cgroup/sub")
        let v1Container = CgroupHost.parse(
            procSelfCgroup: "5:memory:/docker/abc\n",
            mountinfo: "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n")
        #expect(v1Container.v1["memory"]?.ownDirectory == "/sys/fs/cgroup/memory")
        #expect(CgroupHost.parse(procSelfCgroup: "", mountinfo: "").version == nil)
    }

    @Test("only cgroup and cgroup2 mounts count: not a tmpfs at a cgroup path, nor a path that spells the separator")
    func onlyCgroupMounts() {
        let mountinfo = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            40 27 0:40 / /srv/x\\040-\\040cgroup2 rw - ext4 /dev/vda rw
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

            """
        let host = CgroupHost.parse(procSelfCgroup: "0::/\n", mountinfo: mountinfo)
        #expect(host.unifiedMount == "/sys/fs/cgroup/unified")
        let none = CgroupHost.parse(procSelfCgroup: "0::/\n", mountinfo: String(mountinfo.split(separator: "\n")[0...1].joined(separator: "\n")))
        #expect(none.unifiedMount == nil)
        #expect(none.v1.isEmpty)
    }

    @Test("mountinfo's optional fields and escaped paths come before the lone '-' separator")
    func mountinfoFields() {
        let host = CgroupHost.parse(
            procSelfCgroup: "0::/a\n",
            mountinfo: """
                24 1 0:22 / /mnt/x\\040-\\040y rw shared:1 - tmpfs tmpfs rw
                30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate
                31 23 0:27 / /broken rw no-separator-here
                """)
        #expect(host.unifiedMount == "/sys/fs/cgroup")
        #expect(host.unifiedOwnDirectory == "/sys/fs/cgroup/a")
    }

    @Test("escaped mount points are unescaped")
    func escapes() {
        #expect(CgroupHost.unescape("/mnt/with\\040space") == "/mnt/with space")
        #expect(CgroupHost.unescape("/plain") == "/plain")
    }

    @Test("a profile needs the controllers of the limits it sets")
    func controllers() {
        #expect(CgroupPlan.controllers(for: Profile.Limits()) == [.memory, .pids])
        #expect(CgroupPlan.controllers(for: Profile.Limits(cpuCores: 1)) == [.memory, .pids, .cpu])
        #expect(CgroupPlan.controllers(for: Profile.Limits(memoryBytes: nil, pids: nil)) == [])
        #expect(SessionCgroup.cpuQuota(0.5) == (50_000, 100_000))
        #expect(SessionCgroup.cpuQuota(2) == (200_000, 100_000))
        #expect(SessionCgroup.cpuQuota(0.001) == (1000, 100_000))
    }

    @Test("an unwritable v1 hierarchy or an undelegated v2 cgroup is a reason, not a plan")
    func reasons() {
        let nowhere = "/nonexistent-\(UUID().uuidString)"
        let v1 = CgroupHost(v1: [
            "memory": .init(mountPoint: nowhere + "/memory", mountRoot: "/", controllers: ["memory"], ownPath: "/"),
        ])
        let plan = CgroupPlan.make(for: Profile.Limits(), host: v1, euid: 1000)
        #expect(plan.entry(.memory)?.version == nil)
        #expect(plan.entry(.memory)?.reason?.contains("cgroup v1 memory hierarchy is mounted at \(nowhere)/memory") == true)
        #expect(plan.entry(.pids)?.reason == "no cgroup file system is mounted")
        #expect(plan.missingDescription?.hasPrefix("memory: ") == true)
        let v2 = CgroupHost(unifiedMount: nowhere, unifiedOwnPath: "/user.slice", unifiedControllers: ["memory", "pids"])
        let userPlan = CgroupPlan.make(for: Profile.Limits(), host: v2, euid: 1000)
        #expect(userPlan.entry(.pids)?.reason?.contains("is not delegated to uid 1000") == true)
        let noCPU = CgroupPlan.make(for: Profile.Limits(cpuCores: 1), host: v2, euid: 1000)
        #expect(noCPU.entry(.cpu)?.reason?.contains("does not offer it") == true)
    }

    @Test("strict refuses with what is missing and the fix; best-effort starts without")
    func strictAndBestEffort() throws {
        let nowhere = CgroupHost(unifiedMount: "/nonexistent-\(UUID().uuidString)", unifiedOwnPath: "/")
        var profile = Profile(name: "time", path: "/p/time.toml", digest: "", server: .init(command: "/bin/true"))
        let plan = CgroupPlan.make(for: profile.limits, host: nowhere, euid: 1000)
        do {
            _ = try SessionCgroup.create(for: profile, session: "s1", plan: plan)
            Issue.record("strict create did not refuse")
        } catch {
            #expect(error.code == .limitsUnavailable)
            #expect(error.message.hasPrefix("cannot enforce the [limits] of 'time' here: memory: "))
            #expect(error.hint?.contains("systemd-run --user --scope -p Delegate=yes mcpjail run time") == true)
            #expect(error.hint?.contains("enforce = \"best-effort\"") == true)
        }
        profile.limits.enforce = .bestEffort
        let relaxed = CgroupPlan.make(for: profile.limits, host: nowhere, euid: 1000)
        #expect(try SessionCgroup.create(for: profile, session: "s1", plan: relaxed) == nil)
        profile.limits = Profile.Limits(memoryBytes: nil, pids: nil)
        #expect(try SessionCgroup.create(for: profile, session: "s1", plan: CgroupPlan.make(for: profile.limits)) == nil)
        #expect(throws: MCPJailError.self) {
            _ = try SessionCgroup.create(for: profile, session: "../x", plan: plan)
        }
    }

    @Test("this host: root gets a plan for every controller; an ordinary user gets reasons")
    func thisHost() {
        let host = CgroupHost.detect()
        let plan = CgroupPlan.make(for: Profile.Limits(cpuCores: 1), host: host)
        if geteuid() == 0 {
            if CgroupTestSupport.mustWork || host.version != nil {
                for entry in plan.entries {
                    #expect(entry.version != nil, "\(entry.controller): \(entry.reason ?? "")")
                }
            }
        } else if host.version == .v1 {
            // cgroup v1 never lets an ordinary user create a cgroup.
            #expect(plan.missing.count == plan.entries.count)
        }
    }
}

enum CgroupTestSupport {
    /// In CI a host that cannot do what a test needs fails the test instead of skipping it.
    static let mustWork = ProcessInfo.processInfo.environment["CI"] == "true"

    static var projectRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    static var python: String {
        let venv = projectRoot + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3"
    }

    static func profile(_ limits: Profile.Limits) -> Profile {
        Profile(name: "cgtest", path: "/dev/null", digest: "", server: .init(command: "/bin/true"), limits: limits)
    }

    /// A real session cgroup, or nil (a recorded issue in CI) when this host and user cannot
    /// make one: as an ordinary user the strict refusal is checked instead.
    static func make(_ limits: Profile.Limits) throws -> SessionCgroup? {
        let profile = profile(limits)
        let session = "test-" + UUID().uuidString
        guard geteuid() == 0 else {
            let plan = CgroupPlan.make(for: limits)
            if !plan.missing.isEmpty {
                #expect(throws: MCPJailError.self) { _ = try SessionCgroup.create(for: profile, session: session, plan: plan) }
                return nil
            }
            return try SessionCgroup.create(for: profile, session: session)
        }
        let plan = CgroupPlan.make(for: limits)
        if let missing = plan.missingDescription {
            if mustWork { Issue.record("this host cannot make the cgroup the test needs: \(missing)") }
            return nil
        }
        let cgroup = try SessionCgroup.create(for: profile, session: session)
        if cgroup == nil { Issue.record("a plan without anything missing made no cgroup") }
        return cgroup
    }

    struct Outcome {
        var status: Int32
        var signaled: Bool
        var output: String
    }

    /// Runs `script` in /bin/sh; the shell first joins every directory's cgroup (writing its
    /// own pid into cgroup.procs, as the jail's child writes "0").
    static func run(_ script: String, in cgroup: SessionCgroup?) throws -> Outcome {
        let join = cgroup?.directories.map { "echo $$ > '\($0.path)/cgroup.procs' || exit 99; " }.joined() ?? ""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", join + script]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            output: String(decoding: data, as: UTF8.self))
    }
}

/// Real cgroups (as root): the limit stops the probe in the cgroup, and the same probe
/// outside it is not stopped. Every cgroup is killed and removed, also on failure.
@Suite("Session cgroups, real")
struct CgroupLimitTests {
    static let forkBomb = "for i in $(seq 50); do sleep 5 >/dev/null 2>&1 & echo $!; done; echo done"

    @Test("pids.max stops a fork bomb")
    func pidsStopForkBomb() throws {
        guard let cgroup = try CgroupTestSupport.make(Profile.Limits(memoryBytes: nil, pids: 10)) else { return }
        defer {
            cgroup.killAll()
            #expect(cgroup.remove() == [])
        }
        #expect(cgroup.limitHit() == nil)
        let outcome = try CgroupTestSupport.run(Self.forkBomb, in: cgroup)
        let started = outcome.output.split(separator: "\n").filter { Int($0) != nil }.count
        #expect(!outcome.output.contains("done"), "the fork bomb ran to its end: \(outcome.output)")
        #expect(started < 10)
        #expect(outcome.status != 0)
        #expect(cgroup.pids().count <= 10)
        #expect(cgroup.limitHit() == "pids")
        #expect(cgroup.limitReport()?.detail.hasPrefix("process limit reached") == true)
    }

    @Test("companion: the same fork bomb outside the cgroup is not stopped")
    func forkBombOutside() throws {
        let outcome = try CgroupTestSupport.run(Self.forkBomb, in: nil)
        let pids = outcome.output.split(separator: "\n").compactMap { pid_t($0) }
        for pid in pids { kill(pid, SIGKILL) }
        #expect(pids.count == 50)
        #expect(outcome.output.contains("done"))
        #expect(outcome.status == 0)
    }

    static func allocate(_ megabytes: Int) -> String {
        "exec \(CgroupTestSupport.python) -c \"b = b'x' * (\(megabytes) << 20); print('allocated', len(b))\""
    }

    @Test("the memory limit kills an allocation past it (SIGKILL, counted as the limit)")
    func memoryKillsAllocation() throws {
        guard let cgroup = try CgroupTestSupport.make(Profile.Limits(memoryBytes: 48 << 20, pids: nil)) else { return }
        defer {
            cgroup.killAll()
            #expect(cgroup.remove() == [])
        }
        let outcome = try CgroupTestSupport.run(Self.allocate(256), in: cgroup)
        #expect(outcome.signaled)
        #expect(outcome.status == SIGKILL)
        #expect(!outcome.output.contains("allocated"))
        #expect(cgroup.limitHit() == "memory")
        // Within the limit the same program runs.
        let small = try CgroupTestSupport.run(Self.allocate(4), in: cgroup)
        #expect(small.output.contains("allocated 4194304"), "\(small.output)")
    }

    @Test("companion: the same allocation outside the cgroup succeeds")
    func allocationOutside() throws {
        let outcome = try CgroupTestSupport.run(Self.allocate(256), in: nil)
        #expect(!outcome.signaled)
        #expect(outcome.output.contains("allocated 268435456"), "\(outcome.output)")
    }

    @Test("the cpu limit throttles a busy loop; the limits are written where the plan says")
    func cpuThrottles() throws {
        let limits = Profile.Limits(memoryBytes: 64 << 20, pids: 32, cpuCores: 0.1)
        guard let cgroup = try CgroupTestSupport.make(limits) else { return }
        defer {
            cgroup.killAll()
            #expect(cgroup.remove() == [])
        }
        for directory in cgroup.directories {
            for controller in directory.controllers {
                switch (controller, directory.version) {
                case (.memory, .v1): #expect(CgroupFiles.read(directory.path + "/memory.limit_in_bytes") == "\(64 << 20)\n")
                case (.memory, .v2): #expect(CgroupFiles.read(directory.path + "/memory.max") == "\(64 << 20)\n")
                case (.pids, _): #expect(CgroupFiles.read(directory.path + "/pids.max") == "32\n")
                case (.cpu, .v1): #expect(CgroupFiles.read(directory.path + "/cpu.cfs_quota_us") == "10000\n")
                case (.cpu, .v2): #expect(CgroupFiles.read(directory.path + "/cpu.max") == "10000 100000\n")
                }
            }
        }
        _ = try CgroupTestSupport.run("timeout 0.6 sh -c 'while :; do :; done'; true", in: cgroup)
        let cpu = try #require(cgroup.directories.first { $0.controllers.contains(.cpu) })
        let throttled = CgroupFiles.counter(cpu.path + "/cpu.stat", "nr_throttled")
        #expect((throttled ?? 0) > 0)
        #expect(cgroup.limitHit() == nil)
    }

    @Test("procsFDs (v2) and tasksFDs (v1) are open for writing, one per directory; killAll empties, remove leaves nothing")
    func procsFDsKillAndRemove() throws {
        guard let cgroup = try CgroupTestSupport.make(Profile.Limits(cpuCores: 1)) else { return }
        var removed = false
        defer {
            if !removed {
                cgroup.killAll()
                cgroup.remove()
            }
        }
        #expect(cgroup.procsFDs.count == cgroup.directories.filter { $0.version == .v2 }.count)
        #expect(cgroup.tasksFDs.count == cgroup.directories.filter { $0.version == .v1 }.count)
        for fd in cgroup.procsFDs + cgroup.tasksFDs {
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            #expect(fcntl(fd, F_GETFL) & O_ACCMODE == O_WRONLY)
        }
        // A sleeper joined through the fds, as mcpjail places the jail: the pid of the
        // single-threaded process into `tasks` (v1), which moves it whole.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        for fd in cgroup.procsFDs + cgroup.tasksFDs {
            let text = Array("\(sleeper.processIdentifier)".utf8)
            #expect(text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.count)
        }
        #expect(cgroup.pids() == [sleeper.processIdentifier])
        cgroup.killAll()
        sleeper.waitUntilExit()
        #expect(sleeper.terminationReason == .uncaughtSignal)
        #expect(cgroup.pids() == [])
        #expect(cgroup.remove() == [])
        removed = true
        #expect(cgroup.procsFDs.isEmpty && cgroup.tasksFDs.isEmpty)
        for directory in cgroup.directories {
            #expect(access(directory.path, F_OK) != 0, "\(directory.path) is left behind")
        }
        #expect(cgroup.remove() == [])  // idempotent
    }
}

@Suite("The jail's first process and its v2 cgroup")
struct JailCloneIntoCgroupTests {
    @Test("it is cloned straight into the v2 cgroup (CLONE_INTO_CGROUP): no write to cgroup.procs")
    func clonedIntoV2Directory() throws {
        let host = CgroupHost.detect()
        let own = try #require(host.unifiedOwnDirectory, "needs a cgroup v2 mount (this machine's is at /sys/fs/cgroup/unified)")
        let ownPath = try #require(host.unifiedOwnPath)
        let name = "mcpjail-clone-test-\(UUID().uuidString)"
        #expect(mkdir(own + "/" + name, 0o755) == 0, "cannot make a v2 cgroup under \(own): errno \(errno)")
        defer { rmdir(own + "/" + name) }
        let directory = open(own + "/" + name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(directory >= 0)
        defer { close(directory) }

        // The holder that makes the namespaces and clones the jail.
        var holder = mcpjail_namespace_holder()
        try #require(mcpjail_namespace_holder_start(&holder) == 0)
        defer { mcpjail_namespace_holder_end(&holder) }
        var config = mcpjail_jail_config()
        var result = mcpjail_spawn_result()
        config.cgroup_v2_fd = directory
        var pid: pid_t = -1, release: Int32 = -1, failure: Int32 = -1, control: Int32 = -1, placed: Int32 = 0
        try #require(mcpjail_jail_clone(&config, &holder, &pid, &release, &failure, &control, &placed, &result) == 0)
        // The child waits for its release: what /proc says now is where it was born.
        let membership = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        close(release)  // the child reads EOF and exits without building anything
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(failure)
        close(control)
        #expect(placed == 1)
        let expected = "0::" + (ownPath == "/" ? "" : ownPath) + "/" + name
        #expect(membership.split(separator: "\n").contains { $0 == expected }, "\(membership)")
    }
}
