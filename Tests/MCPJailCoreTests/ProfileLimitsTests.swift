import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile [limits] and [seccomp]")
struct ProfileLimitsTests {
    @Test("the defaults are the documented safe ones")
    func defaults() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("[server]\ncommand = \"\(command)\"\n")
        let limits = profile.limits
        #expect(limits.memoryBytes == 1 << 30)
        #expect(limits.pids == 256)
        #expect(limits.cpuCores == nil)
        #expect(limits.openFiles == 1024)
        #expect(limits.fileSizeBytes == 1 << 30)
        #expect(limits.cpuTime == nil)
        #expect(limits.wallTime == nil)
        #expect(limits.enforce == .strict)
        #expect(limits.relaySpin == .microseconds(200))
        #expect(profile.seccomp == Profile.Seccomp(allow: [], deny: []))
        #expect(limits == Profile.Limits())
    }

    @Test("every limits key is read")
    func everyKey() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("""
            [server]
            command = "\(command)"
            [limits]
            max_message = "1M"
            memory = "512M"
            pids = 64
            cpu = 0.5
            open_files = 256
            file_size = "10M"
            cpu_time = "90s"
            wall_time = "1h"
            enforce = "best-effort"
            relay_spin = "750us"
            [seccomp]
            allow = ["personality"]
            deny = ["chown", "fchown"]
            """)
        #expect(profile.limits == Profile.Limits(
            maxMessageBytes: 1 << 20, memoryBytes: 512 << 20, pids: 64, cpuCores: 0.5, openFiles: 256,
            fileSizeBytes: 10 << 20, cpuTime: .seconds(90), wallTime: .seconds(3600), enforce: .bestEffort,
            relaySpin: .microseconds(750)))
        #expect(profile.seccomp == Profile.Seccomp(allow: ["personality"], deny: ["chown", "fchown"]))
    }

    @Test("\"unlimited\" switches a limit off; integers and strings of digits are accepted")
    func unlimited() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("""
            [server]
            command = "\(command)"
            [limits]
            memory = "unlimited"
            pids = "unlimited"
            cpu = 2
            file_size = "unlimited"
            cpu_time = "unlimited"
            wall_time = "unlimited"
            open_files = "4096"
            """)
        #expect(profile.limits.memoryBytes == nil)
        #expect(profile.limits.pids == nil)
        #expect(profile.limits.cpuCores == 2)
        #expect(profile.limits.fileSizeBytes == nil)
        #expect(profile.limits.cpuTime == nil)
        #expect(profile.limits.wallTime == nil)
        #expect(profile.limits.openFiles == 4096)
    }

    @Test("bad limits are errors with line and key path", arguments: [
        ("memory = \"lots\"", "limits.memory", "'lots' is not a size like"),
        ("memory = \"1M\"", "limits.memory", "too small (at least 4M)"),
        ("memory = true", "limits.memory", "expected a size like \"64M\" or a number of bytes, or \"unlimited\", found a boolean"),
        ("pids = 0", "limits.pids", "0 is out of range (1 to 4194304)"),
        ("pids = 1.5", "limits.pids", "expected a whole number or \"unlimited\", found a float"),
        ("pids = \"many\"", "limits.pids", "'many' is not a whole number or \"unlimited\""),
        ("cpu = 0", "limits.cpu", "0 cores is out of range (0.01 to 1024)"),
        ("cpu = -1", "limits.cpu", "out of range"),
        ("cpu = \"half\"", "limits.cpu", "'half' is not a number of cores"),
        ("cpu = nan", "limits.cpu", "out of range"),
        ("cpu = [1]", "limits.cpu", "found an array"),
        ("open_files = \"unlimited\"", "limits.open_files", "'unlimited' is not a whole number"),
        ("open_files = 8", "limits.open_files", "8 is out of range (16 to 1048576)"),
        ("relay_spin = \"11ms\"", "limits.relay_spin", "'11ms' is too long (at most 10ms)"),
        ("relay_spin = \"fast\"", "limits.relay_spin", "'fast' is not a duration like"),
        ("relay_spin = 200", "limits.relay_spin", "expected a duration like \"2s\" or \"500ms\", found an integer"),
        ("open_files = 2000000", "limits.open_files", "out of range"),
        ("file_size = \"10MB\"", "limits.file_size", "write M or MiB"),
        ("file_size = 100", "limits.file_size", "too small (at least 4K)"),
        ("cpu_time = \"500ms\"", "limits.cpu_time", "too short (at least 1s"),
        ("cpu_time = 10", "limits.cpu_time", "expected a duration like \"2s\" or \"500ms\", or \"unlimited\", found an integer"),
        ("wall_time = \"forever\"", "limits.wall_time", "'forever' is not a duration"),
        ("wall_time = \"9000h\"", "limits.wall_time", "too long"),
        ("wall_time = \"0s\"", "limits.wall_time", "too short"),
        ("enforce = \"lenient\"", "limits.enforce", "'lenient' is not one of \"strict\", \"best-effort\""),
        ("enforce = false", "limits.enforce", "expected a string, found a boolean"),
        ("mem = \"1G\"", "limits.mem", "unknown key"),
    ])
    func badLimits(line: String, keyPath: String, message: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [limits]
            \(line)
            """)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.keyPath == keyPath)
        #expect(problem.line == 4)
        #expect(problem.message.contains(message), "\(problem.message)")
        #expect(problem.description.hasPrefix(sandbox.root + "/profiles/test.toml:4: \(keyPath): "))
    }

    @Test("several bad limits are all reported, in file order")
    func allReported() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [limits]
            memory = "x"
            pids = -1
            cpu = 0.001
            extra = 1
            [seccomp]
            allow = ["nosuchcall"]
            """)
        #expect(problems.map(\.keyPath) == ["limits.memory", "limits.pids", "limits.cpu", "limits.extra", "seccomp.allow[0]"])
        #expect(problems.map(\.line) == [4, 5, 6, 7, 9])
    }

    @Test("seccomp names must be known syscalls, listed once, in one list")
    func seccompNames() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [seccomp]
            allow = ["ptrace", "personality", "foo"]
            deny = ["chown", "ptrace", "chown", 3]
            block = ["x"]
            """)
        let lines = problems.map { "\($0.line ?? 0) \($0.keyPath): \($0.message)" }
        #expect(lines == [
            "4 seccomp.allow[2]: unknown syscall 'foo'",
            "5 seccomp.deny[2]: 'chown' is listed twice",
            "5 seccomp.deny[3]: expected a string, found an integer",
            "6 seccomp.block: unknown key (known here: allow, deny)",
        ])
    }

    @Test("a syscall in both allow and deny is an error")
    func seccompBoth() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [seccomp]
            allow = ["ptrace", "bpf"]
            deny = ["chown", "bpf"]
            """)
        #expect(problems.map(\.keyPath) == ["seccomp.deny[1]"])
        #expect(problems.first?.message == "'bpf' is also in allow; a syscall is either allowed or denied")
        #expect(problems.first?.line == 5)
    }

    @Test("seccomp of the wrong type", arguments: [
        ("seccomp = [\"ptrace\"]", "seccomp", "expected a table [seccomp], found an array"),
        ("[seccomp]\nallow = \"ptrace\"", "seccomp.allow", "expected an array of syscall names like [\"ptrace\"], found a string"),
        ("[seccomp]\ndeny = [\"PTRACE\"]", "seccomp.deny[0]", "unknown syscall 'PTRACE'"),
        ("[seccomp]\ndeny = [\"\"]", "seccomp.deny[0]", "unknown syscall ''"),
    ])
    func seccompTypes(text: String, keyPath: String, message: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("\(text)\n[server]\ncommand = \"\(command)\"\n")
        #expect(problems.map(\.keyPath) == [keyPath])
        #expect(problems.first?.message == message)
    }

    @Test("check shows every limit with its mechanism, and the TOML loads back to the same policy")
    func rendering() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let defaults = try sandbox.load("[server]\ncommand = \"\(command)\"\n")
        let text = defaults.effectiveTOML()
        for line in [
            "memory = \"1G\"  # cgroup memory controller, swap off",
            "pids = 256  # cgroup pids controller",
            "cpu = \"unlimited\"  # cgroup cpu bandwidth",
            "open_files = 1024  # rlimit RLIMIT_NOFILE",
            "file_size = \"1G\"  # rlimit RLIMIT_FSIZE",
            "cpu_time = \"unlimited\"  # rlimit RLIMIT_CPU",
            "wall_time = \"unlimited\"  # supervisor timer, whole session",
            "enforce = \"strict\"",
            "[seccomp]", "allow = []", "deny = []",
        ] {
            #expect(text.contains(line), "check output lacks \(line)")
        }
        let custom = try sandbox.load("""
            [server]
            command = "\(command)"
            [limits]
            memory = 123456789
            pids = "unlimited"
            cpu = 0.25
            cpu_time = "1500ms"
            wall_time = "90m"
            enforce = "best-effort"
            [seccomp]
            allow = ["personality"]
            deny = ["chown"]
            """, name: "custom")
        let rendered = custom.effectiveTOML()
        #expect(rendered.contains("cpu = 0.25"))
        #expect(rendered.contains("wall_time = \"90m\""))
        let again = try sandbox.load(rendered, name: "again")
        #expect(again.limits == custom.limits)
        #expect(again.seccomp == custom.seccomp)
        let againDefaults = try sandbox.load(text, name: "again2")
        #expect(againDefaults.limits == defaults.limits)
    }

    @Test("the JSON form: sizes in bytes, durations in ms, null for unlimited")
    func json() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("""
            [server]
            command = "\(command)"
            [limits]
            cpu = 1.5
            cpu_time = "2s"
            memory = "unlimited"
            [seccomp]
            deny = ["chown"]
            """)
        let object = try #require(
            JSONSerialization.jsonObject(with: Data(profile.effectiveJSON().utf8)) as? [String: Any])
        let limits = try #require(object["limits"] as? [String: Any])
        #expect(limits["memory_bytes"] is NSNull)
        #expect(limits["pids"] as? Int == 256)
        #expect(limits["cpu_cores"] as? Double == 1.5)
        #expect(limits["open_files"] as? Int == 1024)
        #expect(limits["file_size_bytes"] as? Int == 1 << 30)
        #expect(limits["cpu_time_ms"] as? Int == 2000)
        #expect(limits["wall_time_ms"] is NSNull)
        #expect(limits["enforce"] as? String == "strict")
        let seccomp = try #require(object["seccomp"] as? [String: Any])
        #expect(seccomp["allow"] as? [String] == [])
        #expect(seccomp["deny"] as? [String] == ["chown"])
    }
}
