import MCPJailCore
import Testing

@Suite("SyscallNames")
struct SyscallNamesTests {
    @Test("real syscall names are known", arguments: [
        "read", "write", "openat", "ptrace", "clone", "clone3", "io_uring_setup",
        "open_by_handle_at", "mount_setattr", "personality", "getcwd", "bpf",
    ])
    func knownNames(_ name: String) {
        #expect(SyscallNames.isKnown(name))
        #expect(SyscallNames.all.contains(name))
    }

    @Test("made-up, misspelled and non-syscall names are not known", arguments: [
        "", "ptrac", "PTRACE", "read ", "sys_read", "__NR_read", "fork_bomb", "syscalls",
        "arch_specific_syscall", "getpid()",
    ])
    func unknownNames(_ name: String) {
        #expect(!SyscallNames.isKnown(name))
    }

    @Test("architecture-specific names of either architecture are known")
    func perArchitecture() {
        // x86_64 only: the legacy calls asm-generic dropped.
        #expect(SyscallNames.x86_64.contains("open"))
        #expect(!SyscallNames.aarch64.contains("open"))
        #expect(SyscallNames.x86_64.contains("iopl"))
        #expect(SyscallNames.isKnown("arch_prctl"))
        // aarch64 spells 64-bit calls through asm-generic's __NR3264_* names.
        #expect(SyscallNames.aarch64.contains("fcntl"))
        #expect(SyscallNames.aarch64.contains("newfstatat"))
        #expect(SyscallNames.aarch64.contains("clone3"))
        #expect(!SyscallNames.aarch64.contains("fcntl64"))
        #expect(SyscallNames.all == SyscallNames.x86_64.union(SyscallNames.aarch64))
        #expect(SyscallNames.x86_64.count > 300 && SyscallNames.aarch64.count > 250)
    }
}
