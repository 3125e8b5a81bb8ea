import Foundation
import Glibc
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux

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
        // The namespace holder and the intermediate that cloned the jail are gone: of this
        // process's children, only the jail's init is in the jail's user namespace.
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
