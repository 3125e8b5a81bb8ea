import Foundation
import Glibc
import Synchronization
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux
import CMCPJailShims

/// The jail builds its file system while mcpjail prepares the filter and the cgroups: the
/// server starts only after that preparation, under the filter it produced, and a failed
/// preparation leaves nothing running.
@Suite("Jail start: preparation while the jail builds")
struct JailStartTests {
    private func profile(_ script: String) -> Profile {
        Profile(
            name: "start", path: "/p/start.toml", digest: "d",
            server: Profile.Server(command: "/bin/sh", args: ["-c", script]),
            filesystem: Profile.Filesystem(readOnly: ["/usr"], tmpfs: ["/tmp": 1 << 20]))
    }

    /// A state directory (hidden in the jail) and a directory the jail may write, which the
    /// jail's nobody (as root) can write too.
    private static func directories(_ name: String) throws -> (state: String, shared: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("jailstart-\(getpid())-\(name)").path
        try FileManager.default.createDirectory(atPath: base + "/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/shared", withIntermediateDirectories: true)
        chmod(base + "/shared", 0o777)
        return (base + "/state", base + "/shared")
    }

    /// Children of this process that live in another user namespace: the jails.
    private static func jailedChildren() -> [pid_t] {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")) ?? ""
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                status.contains("\nPPid:\t\(getpid())\n")
            else { return false }
            let namespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user")) ?? own
            return namespace != own
        }
    }

    @Test("a failed preparation kills the half-built jail; nothing of the server ran")
    func failedPreparationLeavesNothing() throws {
        let (state, shared) = try Self.directories("1")
        defer { try? FileManager.default.removeItem(atPath: (state as NSString).deletingLastPathComponent) }
        let marker = shared + "/ran"
        var duringPreparation: [pid_t] = []
        let before = Set(Self.jailedChildren())
        let spawner = JailSpawner(stateDirectory: state)
        var profile = profile("echo ran > \(marker)")
        profile.filesystem.readWrite = [shared]
        #expect(throws: MCPJailError.self) {
            _ = try spawner.spawn(
                profile, stdio: ServerStdio(stdin: 0, stdout: 1, stderr: 2), restrictions: ChildRestrictions()
            ) { () throws(MCPJailError) -> StartRestrictions in
                duringPreparation = Self.jailedChildren().filter { !before.contains($0) }
                throw MCPJailError(.io, "preparation failed on purpose")
            }
        }
        #expect(!duringPreparation.isEmpty, "the jail exists while mcpjail prepares")
        // A jail left waiting for its start would stay forever; other tests' jails running
        // alongside end by themselves within moments.
        let deadline = Date().addingTimeInterval(5)
        while duringPreparation.contains(where: { kill($0, 0) == 0 }), Date() < deadline { usleep(10_000) }
        for pid in duringPreparation {
            #expect(kill(pid, 0) != 0 && errno == ESRCH, "jail \(pid) is still there")
        }
        #expect(access(marker, F_OK) != 0, "the server ran")
    }

    @Test("the server starts after the preparation, under the filter it produced")
    func filterFromThePreparation() throws {
        let (state, shared) = try Self.directories("2")
        defer { try? FileManager.default.removeItem(atPath: (state as NSString).deletingLastPathComponent) }
        let output = shared + "/status"
        var profile = profile("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > \(output)")
        profile.filesystem.readWrite = [shared]
        let filter = try SeccompPolicy.compile(profile).program
        var prepared = false
        let server = try JailSpawner(stateDirectory: state).spawn(
            profile, stdio: ServerStdio(stdin: 0, stdout: 1, stderr: 2), restrictions: ChildRestrictions()
        ) { () throws(MCPJailError) -> StartRestrictions in
            prepared = true
            // Still nothing of the server: its first act would write the file.
            #expect(access(output, F_OK) != 0)
            return StartRestrictions(seccompProgram: filter)
        }
        // The jail's init exits with the server (waitpid may not see it: another test's
        // child handling can reap it first), so wait for the file itself.
        var status: Int32 = 0
        _ = waitpid(server.pid, &status, 0)
        let deadline = Date().addingTimeInterval(10)
        while (try? String(contentsOfFile: output, encoding: .utf8))?.contains("NoNewPrivs") != true, Date() < deadline {
            usleep(10_000)
        }
        #expect(prepared)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(text.contains("Seccomp:\t2"), "\(text)")
        #expect(text.contains("NoNewPrivs:\t1"), "\(text)")
    }

    /// A line of /proc/PID/status ("self" for this process), without its name.
    private static func statusField(_ field: String, pid: String = "self") -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            .map { $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    @Test("the jail builds on a CPU of its own; the server gets mcpjail's CPU mask back and a network namespace of its own; no helper is left")
    func placementAndNetworkNamespace() throws {
        let (state, shared) = try Self.directories("3")
        defer { try? FileManager.default.removeItem(atPath: (state as NSString).deletingLastPathComponent) }
        let output = shared + "/placement"
        var profile = profile("grep '^Cpus_allowed_list:' /proc/self/status > \(output).tmp; readlink /proc/self/ns/net >> \(output).tmp; mv \(output).tmp \(output)")
        profile.filesystem.readWrite = [shared]
        let ownMask = try #require(Self.statusField("Cpus_allowed_list"))
        let ownNetwork = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let before = Set(Self.jailedChildren())
        var buildMask: String? = nil
        let server = try JailSpawner(stateDirectory: state).spawn(
            profile, stdio: ServerStdio(stdin: 0, stdout: 1, stderr: 2), restrictions: ChildRestrictions()
        ) { () throws(MCPJailError) -> StartRestrictions in
            // The jail moves itself as its first act, which may not have run yet. (Other
            // tests' jails may be among the new ones: any of them pinned shows the probe
            // tells a pinned process apart.)
            let deadline = Date().addingTimeInterval(2)
            repeat {
                let masks = Self.jailedChildren().filter { !before.contains($0) }
                    .compactMap { Self.statusField("Cpus_allowed_list", pid: String($0)) }
                buildMask = masks.first { !$0.contains("-") && !$0.contains(",") } ?? masks.first
                if let buildMask, !buildMask.contains("-"), !buildMask.contains(",") { break }
                usleep(1_000)
            } while Date() < deadline
            return StartRestrictions()
        }
        // The namespace holder that cloned the jail is gone: of this process's children, only
        // the jail's init is in the jail's user namespace.
        let jailNamespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(server.pid)/ns/user")
        let inJailNamespace = Self.jailedChildren().filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/user")) == jailNamespace
        }
        #expect(inJailNamespace == [server.pid])
        var status: Int32 = 0
        _ = waitpid(server.pid, &status, 0)
        let deadline = Date().addingTimeInterval(10)
        while access(output, F_OK) != 0, Date() < deadline { usleep(10_000) }
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(lines)")
        // The probe tells a pinned process apart: while it builds, the jail is on one CPU
        // when mcpjail may use several.
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        if cpus > 1 && ownMask.contains(where: { $0 == "-" || $0 == "," }) {
            let during = try #require(buildMask)
            #expect(!during.contains("-") && !during.contains(","), "the building jail's mask: \(during)")
            #expect(during != ownMask)
        }
        #expect(lines.first == "Cpus_allowed_list:\t\(ownMask)", "\(lines)")
        #expect(lines.last?.hasPrefix("net:[") == true, "\(lines)")
        #expect(lines.last != ownNetwork, "the server shares mcpjail's network namespace")
    }
}

/// The namespace holder makes the jail's namespaces ahead of the jail without a copy of
/// mcpjail: it shares mcpjail's memory and fd table.
@Suite("The namespace holder")
struct NamespaceHolderTests {
    /// A /proc file whole (FileContents reads to the end: its size reads as 0).
    private static func readAll(_ path: String) -> String {
        String(decoding: FileContents.bytes(path) ?? [], as: UTF8.self)
    }

    @Test("it shares mcpjail's memory and fds, and makes user, network, mount, ipc, uts and pid namespaces of its own")
    func sharesMemoryAndFiles() throws {
        var holder = mcpjail_namespace_holder()
        try #require(mcpjail_namespace_holder_start(&holder) == 0)
        defer { mcpjail_namespace_holder_end(&holder) }
        // Its first report: the namespaces are made.
        var report: (Int32, Int32) = (-1, -1)
        let got = withUnsafeMutableBytes(of: &report) { read(holder.report_fd, $0.baseAddress, $0.count) }
        try #require(got == 8 && report.0 == 0, "holder report: \(got) bytes, stage \(report.0), errno \(report.1)")
        holder.ready = 1

        // A file opened and mapped after the holder started: a copy of this process would
        // have neither.
        let name = "mcpjail-holder-test-\(getpid())"
        let file = mcpjail_memfd_create(name)
        try #require(file >= 0)
        defer { close(file) }
        try #require(ftruncate(file, 4096) == 0)
        let region = try #require(mmap(nil, 4096, PROT_READ, MAP_SHARED, file, 0))
        try #require(region != MAP_FAILED)
        defer { munmap(region, 4096) }
        #expect(Self.readAll("/proc/\(holder.pid)/maps").contains("/memfd:\(name)"), "the mapping is not in the holder's memory")
        #expect(Self.readAll("/proc/self/maps").contains("/memfd:\(name)"))  // the control
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.pid)/fd/\(file)")
        #expect(link.hasPrefix("/memfd:\(name)"), "\(link)")

        for namespace in ["user", "net", "mnt", "ipc", "uts"] {
            let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(namespace)")
            let holders = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.pid)/ns/\(namespace)")
            #expect(holders != own, "the holder shares mcpjail's \(namespace) namespace")
        }
        // A pid namespace for its children that has no first process yet reads as missing
        // (ours, the control, has one).
        var buffer = [CChar](repeating: 0, count: 64)
        #expect(readlink("/proc/self/ns/pid_for_children", &buffer, buffer.count) > 0)
        errno = 0
        #expect(readlink("/proc/\(holder.pid)/ns/pid_for_children", &buffer, buffer.count) == -1)
        #expect(errno == ENOENT)
    }

    @Test("the holder started before `main` is taken once, by the first start; one that no start takes is ended")
    func earlyHolder() throws {
        // As the mcpjail executable's constructor does for `run` (CMCPJailEarlyStart). Other
        // tests of this process start jails meanwhile, and their NamespaceHolder.start()
        // may adopt it first (what it is for): then the next one is taken here.
        var taken = mcpjail_namespace_holder()
        var outcome: Int32 = 0
        var started: pid_t = -1
        for _ in 0..<20 where outcome == 0 {
            started = mcpjail_namespace_holder_start_early()
            try #require(started > 0)
            outcome = mcpjail_namespace_holder_take_early(&taken)
        }
        try #require(outcome == 1)
        defer { mcpjail_namespace_holder_end(&taken) }
        #expect(taken.pid == started)
        // A working holder: its first report says the namespaces are made.
        var report: (Int32, Int32) = (-1, -1)
        let got = withUnsafeMutableBytes(of: &report) { read(taken.report_fd, $0.baseAddress, $0.count) }
        #expect(got == 8 && report.0 == 0, "holder report: \(got) bytes, stage \(report.0), errno \(report.1)")
        taken.ready = 1
        var again = mcpjail_namespace_holder()
        #expect(mcpjail_namespace_holder_take_early(&again) == 0, "taken twice")

        // Not taken: discardEarly ends and reaps it.
        var ended = false
        for _ in 0..<20 where !ended {
            let pid = mcpjail_namespace_holder_start_early()
            try #require(pid > 0)
            NamespaceHolder.discardEarly()
            errno = 0
            ended = Glibc.kill(pid, 0) == -1 && errno == ESRCH
        }
        #expect(ended, "the unadopted holder is still there")
    }

    @Test(
        "a holder gone without a word fails the jail's clone at once: the shared fd table keeps its report pipe open, so no EOF would come",
        arguments: [true, false])
    func killedHolder(withPidfd: Bool) throws {
        var holder = mcpjail_namespace_holder()
        try #require(mcpjail_namespace_holder_start(&holder) == 0)
        try Self.expectCloneFailsAtOnce(&holder, withPidfd: withPidfd, kill: true)
    }

    @Test("a holder whose parent is already gone when it starts ends at once (no parent-death signal would come)")
    func orphanedHolder() throws {
        var holder = mcpjail_namespace_holder()
        // As if mcpjail had died before the holder asked for the parent-death signal: the
        // holder finds another parent than the one it was started for.
        try #require(mcpjail_namespace_holder_start_as_child_of(&holder, getpid() + 1_000_000) == 0)
        try Self.expectCloneFailsAtOnce(&holder, withPidfd: true, kill: false)
        // The control: started for this process, the holder reports its namespaces.
        var control = mcpjail_namespace_holder()
        try #require(mcpjail_namespace_holder_start_as_child_of(&control, getpid()) == 0)
        defer { mcpjail_namespace_holder_end(&control) }
        var report: (Int32, Int32) = (-1, -1)
        let got = withUnsafeMutableBytes(of: &report) { read(control.report_fd, $0.baseAddress, $0.count) }
        #expect(got == 8 && report.0 == 0)
    }

    /// The jail's clone through `holder`, which is gone (killed here when `kill`) or going:
    /// it must fail within seconds with stage 37 and ECHILD.
    private static func expectCloneFailsAtOnce(_ holder: inout mcpjail_namespace_holder, withPidfd: Bool, kill: Bool) throws {
        #expect(holder.pid_fd >= 0, "no pidfd: the kernel predates CLONE_PIDFD (5.2)")
        if !withPidfd {
            // As on a kernel without CLONE_PIDFD: waitpid every 50 ms instead.
            close(holder.pid_fd)
            holder.pid_fd = -1
        }
        if kill { Glibc.kill(holder.pid, SIGKILL) }
        let finished = DispatchSemaphore(value: 0)
        let outcome = Mutex<(Int32, mcpjail_spawn_result)?>(nil)
        let box = HolderBox(holder)
        DispatchQueue.global().async {
            var config = mcpjail_jail_config()
            config.cgroup_v2_fd = -1
            var result = mcpjail_spawn_result()
            var pid: pid_t = -1, release: Int32 = -1, failure: Int32 = -1, control: Int32 = -1, placed: Int32 = 0
            let status = box.withHolder { mcpjail_jail_clone(&config, $0, &pid, &release, &failure, &control, &placed, &result) }
            outcome.withLock { $0 = (status, result) }
            finished.signal()
        }
        let waited = finished.wait(timeout: .now() + 10)
        try #require(waited == .success, "mcpjail_jail_clone is still waiting for a holder that is gone")
        let (status, result) = try #require(outcome.withLock { $0 })
        #expect(status == -1)
        #expect(result.stage == Int32(MCPJAIL_STAGE_NAMESPACE_HOLDER.rawValue))
        #expect(result.error == ECHILD)
        let error = SpawnFailure(stage: Int(result.stage), errno: result.error).error(command: "/bin/true", workdir: "/")
        #expect(error.message == "jail setup failed at the namespace holder: No child processes")
        #expect(error.hint?.contains("was it killed?") == true)
        box.withHolder { mcpjail_namespace_holder_end($0) }
        #expect(box.withHolder { $0.pointee.pid } == -1)
    }
}

/// A holder's state for a test's worker thread (the test waits for the thread).
private final class HolderBox: @unchecked Sendable {
    private var holder: mcpjail_namespace_holder
    init(_ holder: mcpjail_namespace_holder) { self.holder = holder }
    func withHolder<Result>(_ body: (UnsafeMutablePointer<mcpjail_namespace_holder>) -> Result) -> Result { body(&holder) }
}
