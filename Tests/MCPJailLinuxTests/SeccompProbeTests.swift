import Foundation
import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

/// What the probe saw for one call.
enum ProbeOutcome: Equatable, CustomStringConvertible {
    case ok
    case errno(Int32)
    case signal(Int32)
    case unsupported

    var description: String {
        switch self {
        case .ok: "ok"
        case .errno(let e): "errno \(e) (\(String(cString: strerror(e))))"
        case .signal(let s): "signal \(s)"
        case .unsupported: "unsupported"
        }
    }
}

struct ProbeError: Error, CustomStringConvertible {
    var description: String
}

/// tests/probes/seccomp_probe.c, compiled once per test run with `cc` into a temporary
/// directory; it installs a filter from a file itself and tries the calls it is given.
enum SeccompProbe {
    static let build: Result<String, ProbeError> = {
        let source = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tests/probes/seccomp_probe.c").path
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mcpjail-seccomp-probe-\(getpid())").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let binary = directory + "/seccomp_probe"
            let (status, output) = try run("/usr/bin/env", ["cc", "-O1", "-Wall", "-Werror", "-pthread", "-o", binary, source])
            guard status == 0 else { return .failure(ProbeError(description: "cc failed: \(output)")) }
            return .success(binary)
        } catch {
            return .failure(ProbeError(description: "cannot build the probe: \(error)"))
        }
    }()

    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs the probe with `filter` installed (nil: unfiltered) and returns each call's outcome.
    static func outcomes(_ calls: [String], filter: SeccompFilter?) throws -> [String: ProbeOutcome] {
        let binary = try build.get()
        var arguments: [String] = []
        if let filter {
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("mcpjail-seccomp-\(getpid())-\(UUID().uuidString).bpf").path
            guard FileManager.default.createFile(atPath: path, contents: Data(filter.program)) else {
                throw ProbeError(description: "cannot write \(path)")
            }
            arguments = ["-f", path]
        }
        defer { if arguments.count == 2 { try? FileManager.default.removeItem(atPath: arguments[1]) } }
        let (status, output) = try run(binary, arguments + calls)
        guard status == 0 else { throw ProbeError(description: "probe exited \(status): \(output)") }
        var result: [String: ProbeOutcome] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 2 else { continue }
            switch (fields[1], fields.count > 2 ? Int32(fields[2]) : nil) {
            case ("ok", _): result[fields[0]] = .ok
            case ("errno", let n?): result[fields[0]] = .errno(n)
            case ("signal", let n?): result[fields[0]] = .signal(n)
            case ("unsupported", _): result[fields[0]] = .unsupported
            default: throw ProbeError(description: "unexpected probe line: \(line)")
            }
        }
        guard Set(result.keys) == Set(calls) else { throw ProbeError(description: "probe output: \(output)") }
        return result
    }

    static func outcome(of rule: SeccompPolicy.Rule) -> ProbeOutcome {
        switch rule.action {
        case .errno(let e): .errno(e)
        case .killProcess: .signal(SIGSYS)
        }
    }
}

#if arch(x86_64)
private let nativeOnly = ["iopl", "ioperm"]
private let foreignABIs = ["x32", "int80"]
#else
private let nativeOnly: [String] = []
private let foreignABIs: [String] = []
#endif

// Linux UAPI constants for the probe's arguments.
private let cloneNewFlags: [(String, UInt64)] = [
    ("NEWNS", 0x0002_0000), ("NEWCGROUP", 0x0200_0000), ("NEWUTS", 0x0400_0000), ("NEWIPC", 0x0800_0000),
    ("NEWUSER", 0x1000_0000), ("NEWPID", 0x2000_0000), ("NEWNET", 0x4000_0000),
]
private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// The calls the default filter must leave alone.
private let ordinary = ["getpid", "read", "write", "openat", "getcwd", "fork", "thread"]

@Suite("Seccomp filter, black box", .serialized)
struct SeccompProbeTests {
    @Test("every unconditional rule of the default list blocks its call with its action")
    func unconditionalRules() throws {
        let filter = try SeccompPolicy.compile(seccompProfile())
        let rules = SeccompPolicy.defaultRules.filter {
            $0.condition == .always && (!["iopl", "ioperm"].contains($0.syscall) || nativeOnly.contains($0.syscall))
        }
        let seen = try SeccompProbe.outcomes(rules.map(\.syscall) + ordinary, filter: filter)
        for rule in rules {
            #expect(seen[rule.syscall] == SeccompProbe.outcome(of: rule), "\(rule)")
        }
        for call in ordinary { #expect(seen[call] == .ok, "\(call) under the filter") }
        // The brief's named cases, spelled out.
        #expect(seen["ptrace"] == .errno(EPERM))
        #expect(seen["mount"] == .errno(EPERM))
        #expect(seen["bpf"] == .errno(EPERM))
        #expect(seen["keyctl"] == .errno(EPERM))
        #expect(seen["io_uring_setup"] == .errno(EPERM))
        #expect(seen["clone3"] == .errno(ENOSYS))
        #expect(seen["reboot"] == .signal(SIGSYS))
        #expect(seen["open_by_handle_at"] == .signal(SIGSYS))
    }

    @Test("argument rules: clone namespace flags, personality changes, TIOCSTI/TIOCLINUX, whatever the high bits")
    func argumentRules() throws {
        let filter = try SeccompPolicy.compile(seccompProfile())
        let cloneCalls = cloneNewFlags.map { "clone:" + hex($0.1) }
        let denied = [
            "unshare:0x10000000",  // unshare(CLONE_NEWUSER)
            "unshare:0x400",  // unshare(CLONE_FILES): unshare is denied whole
            "clone:0x10000011",  // CLONE_NEWUSER|SIGCHLD-ish low byte
            "clone:0x110000000",  // CLONE_NEWUSER with a high bit the kernel ignores
            "personality:0x0040000",  // ADDR_NO_RANDOMIZE
            "personality:0x0400000",  // READ_IMPLIES_EXEC
            "personality:0x8",  // PER_LINUX32
            "personality:0xfffffffe", "personality:0x7fffffff", "personality:0x80000000",
            "personality:0x100400000",  // READ_IMPLIES_EXEC with a high bit set
            "ioctl:0x5412",  // TIOCSTI
            "ioctl:0x541c",  // TIOCLINUX
            "ioctl:0x100005412",  // TIOCSTI with a high bit: the kernel reads 32 bits (CVE-2019-10063)
            "ioctl:0xffffffff0000541c",
        ] + cloneCalls
        let allowed: [String: ProbeOutcome] = [
            "clone": .errno(EINVAL),  // no namespace flag: the kernel's own EINVAL (CLONE_THREAD alone)
            "clone:0x11": .errno(EINVAL),
            "personality": .ok,  // 0xffffffff: the query
            "personality:0": .ok,  // PER_LINUX
            "personality:0x100000000": .ok,  // the kernel reads 0: PER_LINUX
            "ioctl:0x5401": .errno(EBADF),  // TCGETS on fd -1
            "ioctl:0x5413": .errno(EBADF),  // TIOCGWINSZ
        ]
        let seen = try SeccompProbe.outcomes(denied + allowed.keys.sorted(), filter: filter)
        for call in denied { #expect(seen[call] == .errno(EPERM), "\(call)") }
        for (call, outcome) in allowed { #expect(seen[call] == outcome, "\(call)") }
    }

    @Test("syscalls through a foreign ABI kill the process")
    func foreignArchitecture() throws {
        guard !foreignABIs.isEmpty else { return }
        let filter = try SeccompPolicy.compile(seccompProfile())
        let seen = try SeccompProbe.outcomes(foreignABIs, filter: filter)
        for call in foreignABIs { #expect(seen[call] == .signal(SIGSYS), "\(call)") }
    }

    @Test("companion: without the filter the same probe is not blocked")
    func companionUnfiltered() throws {
        // Calls whose unfiltered answer is never the filter's, root or not: the kernel
        // validates the (invalid) arguments before any privilege check.
        var calls: [String: ProbeOutcome] = [
            "clone:0x10000000": .errno(EPERM), "clone:0x20000": .errno(EPERM), "clone3": .errno(ENOSYS),
            "mount": .errno(EPERM), "chroot": .errno(EPERM), "umount2": .errno(EPERM), "setns": .errno(EPERM),
            "keyctl": .errno(EPERM), "ioctl:0x5412": .errno(EPERM), "ioctl:0x541c": .errno(EPERM),
            "personality:0x0400000": .errno(EPERM), "ptrace": .errno(EPERM), "process_vm_readv": .errno(EPERM),
            "getcwd": .errno(EPERM),  // with deny = ["getcwd"] below
        ]
        for call in foreignABIs { calls[call] = .signal(SIGSYS) }
        if getuid() == 0 {
            // As root the capability checks pass too, so every rule's call gets through to
            // the kernel's own answer (EINVAL, EFAULT, EBADF, ENOSYS, or success).
            for rule in SeccompPolicy.defaultRules where rule.condition == .always {
                if ["iopl", "ioperm"].contains(rule.syscall) && !nativeOnly.contains(rule.syscall) { continue }
                calls[rule.syscall] = SeccompProbe.outcome(of: rule)
            }
        }
        let names = calls.keys.sorted()
        let unfiltered = try SeccompProbe.outcomes(names, filter: nil)
        let filtered = try SeccompProbe.outcomes(
            names, filter: try SeccompPolicy.compile(seccompProfile(deny: ["getcwd"]))
        )
        for call in names {
            #expect(filtered[call] == calls[call], "\(call) with the filter")
            #expect(unfiltered[call] != calls[call], "\(call) without the filter: \(unfiltered[call].map { "\($0)" } ?? "-")")
            #expect(unfiltered[call] != .unsupported, "\(call)")
        }
        // A user namespace, when this host allows one, is really made without the filter.
        let userns = try SeccompProbe.outcomes(["unshare:0x10000000"], filter: nil)["unshare:0x10000000"]
        let allowsUserNamespaces = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.map { $0 > 0 } ?? false
        if allowsUserNamespaces && getuid() == 0 { #expect(userns == .ok) }
    }

    @Test("profile allow and deny reach the filter")
    func profileAdjustments() throws {
        // allow = ["ptrace"]: PTRACE_TRACEME succeeds in the probe's child.
        let allowPtrace = try SeccompPolicy.compile(seccompProfile(allow: ["ptrace"]))
        var seen = try SeccompProbe.outcomes(["ptrace", "bpf", "getcwd"], filter: allowPtrace)
        #expect(seen["ptrace"] == .ok)
        #expect(seen["bpf"] == .errno(EPERM))
        #expect(seen["getcwd"] == .ok)
        // deny = ["getcwd"]: EPERM, and the rest of the default list still holds.
        let denyGetcwd = try SeccompPolicy.compile(seccompProfile(deny: ["getcwd"]))
        seen = try SeccompProbe.outcomes(["getcwd", "ptrace", "getpid"], filter: denyGetcwd)
        #expect(seen["getcwd"] == .errno(EPERM))
        #expect(seen["ptrace"] == .errno(EPERM))
        #expect(seen["getpid"] == .ok)
        // Allowing a conditional or kill rule removes it whole.
        let allowMore = try SeccompPolicy.compile(seccompProfile(allow: ["clone", "clone3", "personality", "ioctl", "reboot"]))
        seen = try SeccompProbe.outcomes(
            ["clone:0x10000000", "clone3", "personality:0x0400000", "ioctl:0x5412", "reboot", "thread"], filter: allowMore
        )
        #expect(seen["clone:0x10000000"] == .errno(EINVAL))
        #expect(seen["clone3"] == .errno(EINVAL))
        #expect(seen["personality:0x0400000"] == .ok)
        #expect(seen["ioctl:0x5412"] == .errno(EBADF))
        // Without the rule reboot(0, 0, 0, NULL) gets the kernel's answer: EINVAL (bad magic)
        // as root, EPERM (no CAP_SYS_BOOT) otherwise; never a reboot.
        #expect(seen["reboot"] == .errno(getuid() == 0 ? EINVAL : EPERM))
        #expect(seen["thread"] == .ok)
        // deny = ["personality"]: even the query is refused.
        seen = try SeccompProbe.outcomes(["personality", "personality:0"], filter: try SeccompPolicy.compile(seccompProfile(deny: ["personality"])))
        #expect(seen["personality"] == .errno(EPERM))
        #expect(seen["personality:0"] == .errno(EPERM))
    }
}
