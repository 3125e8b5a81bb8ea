import Foundation
import Glibc
import MCPJailCore
import MCPJailLinux
import Testing
@testable import MCPJailCommands

@Suite("mcpjail doctor")
struct DoctorCommandTests {
    static let mustWork = ProcessInfo.processInfo.environment["CI"] == "true"

    private func doctor(_ arguments: [String]) throws -> Doctor {
        try #require(try MCPJail.parseAsRoot(["doctor"] + arguments) as? Doctor)
    }

    @Test("on this machine: user namespaces, seccomp actions, the cgroup finding, per-profile protections")
    func thisMachine() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.write("strict", "[server]\ncommand = \"\(sandbox.command)\"\npinned = false\n[limits]\ncpu = 0.5\nwall_time = \"1h\"\n[seccomp]\ndeny = [\"chown\"]\n")
        try sandbox.write("broken", "[server]\ncommand = 1\n")
        let features = HostFeatures()
        let output = try doctor(["--profiles", sandbox.profiles]).output(features: features, store: sandbox.store)
        #expect(output.status == 0)
        let text = output.stdout
        #expect(text.hasPrefix("mcpjail doctor: what this kernel gives uid \(geteuid())"))
        #expect(text.contains(" user-namespaces "))
        #expect(text.contains(" seccomp "))
        if let actions = try? String(contentsOfFile: "/proc/sys/kernel/seccomp/actions_avail", encoding: .utf8), !actions.isEmpty {
            #expect(text.contains("actions: " + actions.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(text.contains("kill_process"))
        }
        for check in ["cgroup", "cgroup-memory", "cgroup-pids", "cgroup-cpu", "landlock"] {
            #expect(text.contains(" \(check) "), "no \(check) line")
        }
        let host = CgroupHost.detect()
        if host.version == .v1 {
            #expect(text.contains("ok       cgroup           cgroup v1"))
            if geteuid() == 0 {
                #expect(text.contains("ok       cgroup-memory    cgroup v1, sessions under "))
                #expect(text.contains("ok       cgroup-pids      cgroup v1, sessions under "))
            } else {
                #expect(text.contains("missing  cgroup-memory    the cgroup v1 memory hierarchy is mounted at"))
                #expect(text.contains("hint: run as root, or as an ordinary user on a cgroup v2 host"))
            }
        } else if Self.mustWork && host.version == nil {
            Issue.record("no cgroups on this host")
        }
        #expect(text.contains("  broken: invalid profile, `mcpjail check broken` says why"))
        #expect(text.contains("  strict: would"))
        #expect(text.contains("cpu         0.5 cores"))
        #expect(text.contains("open_files  1024       rlimit RLIMIT_NOFILE"))
        #expect(text.contains("core_dumps  off"))
        #expect(text.contains("wall_time   1h         supervisor timer"))
        #expect(text.contains("seccomp: default deny list, also denying chown"))
        if geteuid() == 0 && host.version != nil {
            #expect(text.contains("  strict: would start, enforce = \"strict\""))
        }
    }

    @Test("per profile: what the server can reach, and whether it is pinned (a lock missing stops it)")
    func networkAndPins() throws {
        let sandbox = try ProfileCommandSandbox()
        let server = "[server]\ncommand = \"\(sandbox.command)\"\n"
        try sandbox.write("open", server + "pinned = false\n[network]\negress = [\"api.github.com:443\", \"127.0.0.1:8080\"]\n")
        try sandbox.write("nolock", server)
        try sandbox.write("locked", server)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: sandbox.profiles + "/locked.lock"))
        let text = try doctor([]).output(features: HostFeatures(), store: sandbox.store).stdout
        /// A profile's lines: its own, then those indented under it.
        func block(_ name: String) -> String {
            let lines = text.components(separatedBy: "\n")
            guard let first = lines.firstIndex(where: { $0.hasPrefix("  \(name): ") }) else { return "" }
            return ([lines[first]] + lines[(first + 1)...].prefix { $0.hasPrefix("    ") }).joined(separator: "\n")
        }
        let open = block("open"), nolock = block("nolock"), locked = block("locked")
        #expect(open.contains("network: egress to api.github.com:443, 127.0.0.1:8080 only, through mcpjail's DNS stub and proxy"))
        #expect(open.contains("pins: not pinned (pinned = false): runs unverified"))
        #expect(nolock.contains("network: loopback only (no [network] egress)"))
        #expect(nolock.hasPrefix("  nolock: would NOT start"))
        #expect(nolock.contains("pins: pinned, but \(sandbox.profiles)/nolock.lock does not exist: run refuses until `mcpjail pin nolock`"))
        #expect(locked.contains("pins: \(sandbox.profiles)/locked.lock: verified in the jail before exec, watched while the server runs"))
    }

    @Test("--json parses, with findings and per-profile protections")
    func json() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        let output = try doctor(["--json"]).output(features: HostFeatures(), store: sandbox.store)
        let object = try #require(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["uid"] as? Int == Int(geteuid()))
        let findings = try #require(object["findings"] as? [[String: Any]])
        let byCheck = Dictionary(uniqueKeysWithValues: findings.map { ($0["check"] as? String ?? "", $0) })
        #expect(Set(byCheck.keys) == ["user-namespaces", "seccomp", "cgroup", "cgroup-memory", "cgroup-pids", "cgroup-cpu", "landlock"])
        for finding in findings {
            #expect(["ok", "missing", "limited", "unknown"].contains(finding["status"] as? String ?? ""))
        }
        if CgroupHost.detect().version == .v1 {
            #expect((byCheck["cgroup"]?["detail"] as? String)?.hasPrefix("cgroup v1") == true)
        }
        let profiles = try #require(object["profiles"] as? [[String: Any]])
        #expect(profiles.count == 1)
        let protections = try #require(profiles[0]["protections"] as? [String: Any])
        let limits = try #require(protections["limits"] as? [[String: Any]])
        #expect(limits.map { $0["key"] as? String ?? "" } == [
            "memory", "pids", "cpu", "open_files", "file_size", "core_dumps", "wall_time",
        ])
        #expect(protections["enforce"] as? String == "strict")
        #expect(protections["startable"] is Bool)
    }

    @Test("findings from fixtures: AppArmor restriction, userns off, no seccomp, landlock")
    func fixtures() throws {
        let root = NSTemporaryDirectory() + "mcpjail-doctor-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        func put(_ path: String, _ text: String) throws {
            let full = root + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
        try put("/proc/sys/user/max_user_namespaces", "63204\n")
        try put("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
        try put("/sys/kernel/security/lsm", "lockdown,capability,landlock,yama,apparmor")
        let user = HostFeatures(proc: root + "/proc", sys: root + "/sys", euid: 1000, cgroupHost: CgroupHost())
        let userns = user.userNamespaces()
        #expect(userns.status == .limited)
        #expect(userns.hint?.contains("sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0") == true)
        #expect(HostFeatures(proc: root + "/proc", sys: root + "/sys", euid: 0, cgroupHost: CgroupHost()).userNamespaces().status == .ok)
        #expect(user.seccomp().status == .missing)
        #expect(user.landlock().status == .ok)
        #expect(user.cgroup().status == .missing)
        #expect(user.cgroupController(.memory).status == .missing)
        try put("/proc/sys/user/max_user_namespaces", "0\n")
        #expect(user.userNamespaces().status == .missing)
        #expect(user.userNamespaces().hint == "sudo sysctl user.max_user_namespaces=15000")
        try put("/proc/sys/user/max_user_namespaces", "10\n")
        try put("/proc/sys/user/max_net_namespaces", "0\n")
        #expect(user.userNamespaces().status == .missing)
        #expect(user.userNamespaces().hint == "sudo sysctl user.max_net_namespaces=15000")
        try put("/proc/sys/user/max_net_namespaces", "7\n")
        #expect(user.userNamespaces().detail.contains("max_net_namespaces=7"))
        try put("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "0\n")
        try put("/proc/sys/kernel/unprivileged_userns_clone", "0\n")
        #expect(user.userNamespaces().hint == "sudo sysctl kernel.unprivileged_userns_clone=1")
        try put("/proc/sys/kernel/seccomp/actions_avail", "trap errno allow\n")
        #expect(user.seccomp().status == .limited)
        try put("/sys/kernel/security/lsm", "capability,yama")
        #expect(user.landlock().status == .missing)
    }

    @Test("help text with examples; doctor is a subcommand")
    func help() {
        let help = MCPJail.helpMessage(for: Doctor.self)
        #expect(help.contains("USAGE: mcpjail doctor"))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail doctor --json"))
        #expect(help.contains("--profiles <dir>"))
        #expect(MCPJail.helpMessage().contains("  doctor"))
    }
}
