import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

/// A profile with only a `[seccomp]` table set.
func seccompProfile(allow: [String] = [], deny: [String] = []) -> Profile {
    Profile(
        name: "t", path: "/t.toml", digest: "", server: Profile.Server(command: "/bin/true"),
        seccomp: Profile.Seccomp(allow: allow, deny: deny)
    )
}

@Suite("Seccomp policy")
struct SeccompPolicyTests {
    @Test("the default filter compiles to a deterministic, bounded BPF program")
    func defaultFilterCompiles() throws {
        let first = try SeccompPolicy.compile(seccompProfile())
        let second = try SeccompPolicy.compile(seccompProfile())
        #expect(first.instructionCount > 20)
        #expect(first.program.count == first.instructionCount * 8)
        #expect(first.program == second.program, "same profile, same bytes")
        // BPF_MAXINSNS is 4096; stay far below it so profile additions fit.
        #expect(first.instructionCount < 1024, "\(first.instructionCount) instructions")
        // The first instruction loads seccomp_data.arch (offset 4): the architecture check.
        let code = UInt16(first.program[0]) | UInt16(first.program[1]) << 8
        let k = UInt32(first.program[4]) | UInt32(first.program[5]) << 8 | UInt32(first.program[6]) << 16 | UInt32(first.program[7]) << 24
        #expect(code == 0x20 /* BPF_LD|BPF_W|BPF_ABS */ && k == 4)
    }

    @Test("profile adjustments change the program")
    func adjustmentsChangeProgram() throws {
        let base = try SeccompPolicy.compile(seccompProfile())
        #expect(try SeccompPolicy.compile(seccompProfile(allow: ["ptrace"])).program != base.program)
        #expect(try SeccompPolicy.compile(seccompProfile(deny: ["getcwd"])).program != base.program)
        // Denying what is already denied, twice, is the default program.
        #expect(try SeccompPolicy.compile(seccompProfile(deny: ["bpf", "bpf"])).program == base.program)
    }

    @Test("the default deny list has what the containment issue asks, with its actions")
    func defaultList() {
        var actions: [String: SeccompPolicy.Action] = [:]
        for entry in SeccompPolicy.defaultDenied { actions[entry.name] = entry.action }
        let eperm: [String] = [
            "ptrace", "process_vm_readv", "process_vm_writev", "mount", "fsopen", "fsconfig",
            "fsmount", "move_mount", "open_tree", "mount_setattr", "umount2", "pivot_root", "chroot",
            "unshare", "setns", "clone", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
            "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "swapon", "swapoff",
            "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "name_to_handle_at", "acct",
            "quotactl", "syslog", "personality", "ioctl",
        ]
        for name in eperm { #expect(actions[name] == .errno(EPERM), "\(name)") }
        let kill = [
            "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
            "iopl", "ioperm", "open_by_handle_at",
        ]
        for name in kill { #expect(actions[name] == .killProcess, "\(name)") }
        #expect(actions["clone3"] == .errno(ENOSYS))
        for entry in SeccompPolicy.defaultDenied { #expect(SyscallNames.isKnown(entry.name), "\(entry.name)") }
        // Conditional rules: clone on namespace flags, personality changes, two ioctls.
        let conditional = SeccompPolicy.defaultRules.filter { $0.condition != .always }.map(\.syscall)
        #expect(conditional == ["clone", "personality", "ioctl"])
        #expect(SeccompPolicy.describe(SeccompPolicy.defaultRules).contains("ioctl when arg1 is 0x5412 or 0x541c: EPERM"))
    }

    @Test("unknown syscall names are a profile error naming each")
    func unknownNames() {
        #expect {
            _ = try SeccompPolicy.compile(seccompProfile(allow: ["ptrac", "read"], deny: ["getcwd", "fork_bomb", "ptrac"]))
        } throws: { error in
            guard let error = error as? MCPJailError else { return false }
            return error.code == .invalidProfile && error.message.contains("'ptrac'")
                && error.message.contains("'fork_bomb'") && !error.message.contains("getcwd")
                && !error.message.contains("'read'") && error.message.contains("unknown syscalls")
        }
        #expect(throws: MCPJailError.self) { try SeccompPolicy.compile(seccompProfile(deny: ["PTRACE"])) }
        #expect(throws: MCPJailError.self) { try SeccompPolicy.compile(seccompProfile(deny: [""])) }
    }

    @Test("a name both allowed and denied is a profile error")
    func bothLists() {
        #expect {
            _ = try SeccompPolicy.rules(for: Profile.Seccomp(allow: ["ptrace"], deny: ["ptrace"]))
        } throws: { error in
            (error as? MCPJailError)?.code == .invalidProfile && "\(error)".contains("'ptrace'")
        }
    }

    @Test("allow removes every rule of a name; deny adds EPERM, keeps stronger actions, widens conditions")
    func adjustments() throws {
        let effective = try SeccompPolicy.rules(for: Profile.Seccomp(
            allow: ["ptrace", "ioctl", "read"], deny: ["getcwd", "reboot", "clone", "clone3", "getcwd"]
        ))
        func rules(_ name: String) -> [SeccompPolicy.Rule] { effective.filter { $0.syscall == name } }
        #expect(rules("ptrace").isEmpty)
        #expect(rules("ioctl").isEmpty)
        #expect(rules("read").isEmpty)
        #expect(rules("getcwd") == [SeccompPolicy.Rule("getcwd", .errno(EPERM))])
        #expect(rules("reboot") == [SeccompPolicy.Rule("reboot", .killProcess)])
        #expect(rules("clone") == [SeccompPolicy.Rule("clone", .errno(EPERM))])
        #expect(rules("clone3") == [SeccompPolicy.Rule("clone3", .errno(ENOSYS))])
        #expect(rules("personality").count == 1)
        #expect(try SeccompPolicy.rules(for: Profile.Seccomp()) == SeccompPolicy.defaultRules)
    }
}
