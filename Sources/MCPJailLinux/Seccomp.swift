import CLibSeccomp
import CMCPJailShims
import Glibc
import MCPJailCore

/// A compiled seccomp filter: the classic-BPF program (an array of `struct sock_filter`,
/// 8 bytes each, in host byte order) that the spawner's C child installs with
/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, &(struct sock_fprog){count, program})` right after
/// `no_new_privs`, as the last step before exec.
///
/// Compiled in the parent before the fork (libseccomp allocates, so it cannot run in the
/// child); the child only copies bytes into a syscall.
public struct SeccompFilter: Sendable, Equatable {
    /// The `struct sock_filter` array, as bytes.
    public let program: [UInt8]
    /// Number of BPF instructions (`sock_fprog.len`).
    public var instructionCount: Int { program.count / 8 }

    public init(program: [UInt8]) {
        self.program = program
    }
}

/// The jail's syscall filter: default allow, a deny list of the calls that reach for the
/// kernel's attack surface or out of the jail, adjustable per profile with
/// `[seccomp] allow = [...]` (take names off the list) and `deny = [...]` (add names, EPERM).
///
/// The default deny list (this comment is the text behind `profiles/REFERENCE.toml`):
///
/// | syscalls | when | action |
/// |---|---|---|
/// | ptrace, process_vm_readv, process_vm_writev | always | EPERM |
/// | mount, umount2, pivot_root, chroot | always | EPERM |
/// | fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr (new mount API) | always | EPERM |
/// | unshare, setns | always | EPERM |
/// | clone | flags (arg0) carry any `CLONE_NEW*` bit: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET | EPERM |
/// | clone3 | always: its flags sit in a struct the filter cannot read | ENOSYS, so libc falls back to clone |
/// | bpf, perf_event_open, userfaultfd | always | EPERM |
/// | keyctl, add_key, request_key | always | EPERM |
/// | io_uring_setup, io_uring_enter, io_uring_register | always | EPERM |
/// | swapon, swapoff, acct, quotactl, quotactl_fd, syslog | always | EPERM |
/// | settimeofday, clock_settime, clock_adjtime, adjtimex | always | EPERM |
/// | name_to_handle_at | always | EPERM |
/// | personality | any value but 0 (`PER_LINUX`) and 0xffffffff (query), on the low 32 bits the kernel reads | EPERM |
/// | ioctl | request (arg1, low 32 bits) is TIOCSTI or TIOCLINUX | EPERM |
/// | kexec_load, kexec_file_load | always | kill process |
/// | init_module, finit_module, delete_module | always | kill process |
/// | reboot | always | kill process |
/// | iopl, ioperm (x86_64 only) | always | kill process |
/// | open_by_handle_at | always (the "shocker" container escape) | kill process |
///
/// EPERM where a program may probe for a feature and cope (a library trying io_uring or a
/// new user namespace falls back); kill-process (SIGSYS) for calls no MCP server has an
/// honest reason to make, so an exploit attempt ends the server instead of trying the next.
///
/// Architecture: the filter is for the native architecture only; a syscall made through
/// another ABI (the 32-bit `int 0x80` entry on x86_64, AArch32 compat on aarch64) kills the
/// process, and so does an x32 syscall on x86_64 (numbers with bit 30 set).
///
/// Profile adjustments: `allow` removes every rule for the name (for clone, ioctl and
/// personality: the argument checks too). `deny` adds an unconditional EPERM rule; a name the
/// default list already denies unconditionally keeps its action, and a conditional rule
/// (clone, ioctl, personality) becomes unconditional. A name in both lists, a name that is
/// not a syscall of x86_64 or aarch64 Linux (``SyscallNames``), or one libseccomp cannot
/// resolve is a profile error. A valid name the native architecture lacks (iopl on aarch64)
/// is skipped: it cannot be called there.
public enum SeccompPolicy {
    /// What the filter does with a matching call.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        /// Fail the call with this errno (EPERM, or ENOSYS for clone3).
        case errno(Int32)
        /// Kill the whole process with SIGSYS (`SCMP_ACT_KILL_PROCESS`).
        case killProcess

        public var description: String {
            switch self {
            case .errno(let e): SeccompPolicy.errnoName(e)
            case .killProcess: "kill-process"
            }
        }
    }

    /// Which calls of a syscall a rule matches.
    public enum Condition: Sendable, Hashable, CustomStringConvertible {
        /// Every call.
        case always
        /// Argument `index` has at least one of these bits set (one rule per bit:
        /// `SCMP_CMP_MASKED_EQ`, bit, bit).
        case argumentHasAnyBit(index: UInt32, bits: [UInt64])
        /// The low 32 bits of argument `index` equal one of these values (the kernel reads an
        /// `unsigned int`, so the high bits must not matter: flatpak's CVE-2019-10063).
        case argumentLow32Is(index: UInt32, values: [UInt32])
        /// The low 32 bits of argument `index` are neither 0 nor 0xffffffff: some two
        /// cyclically adjacent bits differ (32 masked comparisons; libseccomp 2.5 allows one
        /// comparison per argument in a rule, so "≠ 0 and ≠ ~0" cannot be one rule).
        case argumentLow32NotZeroOrAllOnes(index: UInt32)

        public var description: String {
            switch self {
            case .always: "always"
            case .argumentHasAnyBit(let index, let bits):
                "arg\(index) has any of " + bits.map { hex($0) }.joined(separator: ", ")
            case .argumentLow32Is(let index, let values):
                "arg\(index) is " + values.map { hex(UInt64($0)) }.joined(separator: " or ")
            case .argumentLow32NotZeroOrAllOnes(let index):
                "arg\(index) is not 0 or 0xffffffff"
            }
        }
    }

    /// One entry of the deny list.
    public struct Rule: Sendable, Hashable, CustomStringConvertible {
        public var syscall: String
        public var action: Action
        public var condition: Condition

        public init(_ syscall: String, _ action: Action, when condition: Condition = .always) {
            self.syscall = syscall
            self.action = action
            self.condition = condition
        }

        public var description: String {
            condition == .always ? "\(syscall): \(action)" : "\(syscall) when \(condition): \(action)"
        }
    }

    // Linux UAPI constants (sched.h, asm-generic/ioctls.h), the same on x86_64 and aarch64.
    static let cloneNamespaceFlags: [UInt64] = [
        0x0002_0000,  // CLONE_NEWNS
        0x0200_0000,  // CLONE_NEWCGROUP
        0x0400_0000,  // CLONE_NEWUTS
        0x0800_0000,  // CLONE_NEWIPC
        0x1000_0000,  // CLONE_NEWUSER
        0x2000_0000,  // CLONE_NEWPID
        0x4000_0000,  // CLONE_NEWNET
        // CLONE_NEWTIME (0x80) is not a clone() flag: it overlaps CSIGNAL; unshare and clone3
        // are denied whole.
    ]
    static let tiocsti: UInt32 = 0x5412
    static let tioclinux: UInt32 = 0x541C

    /// The default deny list, rule by rule, in the order the filter is built.
    public static let defaultRules: [Rule] = {
        let eperm = Action.errno(EPERM)
        var rules: [Rule] = []
        func deny(_ names: [String], _ action: Action) {
            rules += names.map { Rule($0, action) }
        }
        // Other processes' memory.
        deny(["ptrace", "process_vm_readv", "process_vm_writev"], eperm)
        // The filesystem view, old and new mount API.
        deny(["mount", "umount2", "pivot_root", "chroot"], eperm)
        deny(["fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr"], eperm)
        // Namespaces.
        deny(["unshare", "setns"], eperm)
        rules.append(Rule("clone", eperm, when: .argumentHasAnyBit(index: 0, bits: cloneNamespaceFlags)))
        rules.append(Rule("clone3", .errno(ENOSYS)))
        // Large kernel attack surface.
        deny(["bpf", "perf_event_open", "userfaultfd"], eperm)
        deny(["keyctl", "add_key", "request_key"], eperm)
        deny(["io_uring_setup", "io_uring_enter", "io_uring_register"], eperm)
        // Host-wide state.
        deny(["swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog"], eperm)
        deny(["settimeofday", "clock_settime", "clock_adjtime", "adjtimex"], eperm)
        deny(["name_to_handle_at"], eperm)
        rules.append(Rule("personality", eperm, when: .argumentLow32NotZeroOrAllOnes(index: 0)))
        rules.append(Rule("ioctl", eperm, when: .argumentLow32Is(index: 1, values: [tiocsti, tioclinux])))
        // No honest server calls these: end it.
        deny(["kexec_load", "kexec_file_load"], .killProcess)
        deny(["init_module", "finit_module", "delete_module"], .killProcess)
        deny(["reboot"], .killProcess)
        deny(["iopl", "ioperm"], .killProcess)
        deny(["open_by_handle_at"], .killProcess)
        return rules
    }()

    /// The default deny list, with the action per syscall (see the type's documentation for
    /// the table; clone, personality and ioctl are denied only for the arguments named there).
    public static let defaultDenied: [(name: String, action: Action)] = defaultRules.map { ($0.syscall, $0.action) }

    /// The effective deny list for a profile's `[seccomp]` table. Throws
    /// `MCPJailError(.invalidProfile, ...)` naming unknown syscalls and names in both lists.
    public static func rules(for seccomp: Profile.Seccomp) throws(MCPJailError) -> [Rule] {
        let unknown = unique(seccomp.allow + seccomp.deny).filter { name in
            !SyscallNames.isKnown(name) || name.withCString { seccomp_syscall_resolve_name($0) } == __NR_SCMP_ERROR
        }
        if !unknown.isEmpty {
            let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw MCPJailError(
                .invalidProfile,
                "[seccomp] names \(unknown.count == 1 ? "an unknown syscall" : "unknown syscalls"): \(list)",
                hint: "use Linux syscall names as in 'man 2 syscalls', such as ptrace or getcwd"
            )
        }
        let allowed = Set(seccomp.allow)
        let both = unique(seccomp.deny).filter { allowed.contains($0) }
        if !both.isEmpty {
            throw MCPJailError(
                .invalidProfile,
                "[seccomp] both allows and denies " + both.map { "'\($0)'" }.joined(separator: ", ")
            )
        }
        var rules = defaultRules.filter { !allowed.contains($0.syscall) }
        for name in unique(seccomp.deny) {
            if rules.contains(where: { $0.syscall == name && $0.condition == .always }) { continue }
            if let index = rules.firstIndex(where: { $0.syscall == name }) {
                rules[index] = Rule(name, .errno(EPERM))
                rules.removeAll { $0.syscall == name && $0.condition != .always }
            } else {
                rules.append(Rule(name, .errno(EPERM)))
            }
        }
        return rules
    }

    /// Compiles the filter for `profile.seccomp`: the default deny list, less `allow`, plus
    /// `deny` (EPERM). Throws `MCPJailError(.invalidProfile, ...)` naming unknown syscalls.
    /// The default list with no `[seccomp]` adjustments (most profiles) is not compiled but
    /// taken from ``precompiledDefault`` when this libseccomp and architecture made it:
    /// libseccomp took ~0.3 ms of every client start for it.
    public static func compile(_ profile: Profile) throws(MCPJailError) -> SeccompFilter {
        let rules = try rules(for: profile.seccomp)
        if rules == defaultRules, let program = precompiledDefault.program(libseccomp: libseccompVersion, architecture: seccomp_arch_native()) {
            return SeccompFilter(program: program)
        }
        return try compile(rules: rules)
    }

    /// A program libseccomp compiled ahead of time, and for which library and architecture
    /// it holds (``precompiledDefault``, generated by `make seccomp-default`).
    struct PrecompiledProgram {
        let libseccomp: (UInt32, UInt32, UInt32)
        let architecture: UInt32
        let bytes: [UInt8]

        /// The bytes when this libseccomp and architecture are the ones that made them.
        func program(libseccomp version: (UInt32, UInt32, UInt32), architecture arch: UInt32) -> [UInt8]? {
            version == libseccomp && arch == architecture && !bytes.isEmpty ? bytes : nil
        }
    }

    /// The linked libseccomp's version (major, minor, micro).
    static var libseccompVersion: (UInt32, UInt32, UInt32) {
        guard let version = seccomp_version() else { return (0, 0, 0) }
        return (version.pointee.major, version.pointee.minor, version.pointee.micro)
    }

    /// Compiles a deny list (default action allow) for the native architecture.
    public static func compile(rules: [Rule]) throws(MCPJailError) -> SeccompFilter {
        guard let context = seccomp_init(actionAllow) else {
            throw MCPJailError(.internalError, "seccomp: libseccomp could not create a filter")
        }
        defer { seccomp_release(context) }
        try check("seccomp_attr_set(ACT_BADARCH)", seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, actionKillProcess))
        // A binary tree over syscall numbers: allowed calls skip most of the deny list.
        try check("seccomp_attr_set(CTL_OPTIMIZE)", seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2))
        let native = seccomp_arch_native()
        for rule in rules {
            let number = rule.syscall.withCString { seccomp_syscall_resolve_name_arch(native, $0) }
            // A valid name this architecture lacks cannot be called here (rules(for:) has
            // already refused names libseccomp does not know at all).
            if number < 0 { continue }
            let action = rawAction(rule.action)
            for comparisons in comparisonSets(rule.condition) {
                let rc = comparisons.withUnsafeBufferPointer { buffer in
                    seccomp_rule_add_array(context, action, number, UInt32(buffer.count), buffer.baseAddress)
                }
                try check("seccomp_rule_add(\(rule.syscall))", rc)
            }
        }
        return SeccompFilter(program: try export(context))
    }

    /// Lines for `check` and the reference: one rule per line, `name[ when ...]: action`.
    public static func describe(_ rules: [Rule]) -> [String] { rules.map(\.description) }

    // MARK: - libseccomp plumbing

    // seccomp.h's action macros (function-like, so not imported).
    static let actionAllow: UInt32 = 0x7fff_0000
    static let actionKillProcess: UInt32 = 0x8000_0000
    static func rawAction(_ action: Action) -> UInt32 {
        switch action {
        case .errno(let e): 0x0005_0000 | (UInt32(bitPattern: e) & 0xffff)
        case .killProcess: actionKillProcess
        }
    }

    /// The comparisons of each libseccomp rule a condition becomes (rules OR, comparisons
    /// within one rule AND).
    static func comparisonSets(_ condition: Condition) -> [[scmp_arg_cmp]] {
        func maskedEqual(_ index: UInt32, mask: UInt64, value: UInt64) -> scmp_arg_cmp {
            scmp_arg_cmp(arg: index, op: SCMP_CMP_MASKED_EQ, datum_a: mask, datum_b: value)
        }
        switch condition {
        case .always:
            return [[]]
        case .argumentHasAnyBit(let index, let bits):
            return bits.map { [maskedEqual(index, mask: $0, value: $0)] }
        case .argumentLow32Is(let index, let values):
            return values.map { [maskedEqual(index, mask: 0xffff_ffff, value: UInt64($0))] }
        case .argumentLow32NotZeroOrAllOnes(let index):
            // Bit i set and bit i+1 (mod 32) clear, for some i: exactly the 32-bit values
            // that are not constant, i.e. neither 0 nor 0xffffffff.
            return (0..<32).map { i in
                let bit = UInt64(1) << UInt64(i), next = UInt64(1) << UInt64((i + 1) % 32)
                return [maskedEqual(index, mask: bit | next, value: bit)]
            }
        }
    }

    /// `what` is made only for a failure, not once per rule at every start.
    static func check(_ what: @autoclosure () -> String, _ rc: Int32) throws(MCPJailError) {
        if rc < 0 {
            throw MCPJailError(.internalError, "seccomp: \(what()): \(String(cString: strerror(-rc)))")
        }
    }

    /// `seccomp_export_bpf` writes to an fd (libseccomp 2.5.4 has no export to memory): a
    /// memfd, read back.
    static func export(_ context: scmp_filter_ctx) throws(MCPJailError) -> [UInt8] {
        let fd = mcpjail_memfd_create("mcpjail-seccomp")
        if fd < 0 {
            throw MCPJailError(.internalError, "seccomp: memfd_create: \(String(cString: strerror(Glibc.errno)))")
        }
        defer { close(fd) }
        try check("seccomp_export_bpf", seccomp_export_bpf(context, fd))
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0, size % 8 == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw MCPJailError(.internalError, "seccomp: seccomp_export_bpf wrote \(size) bytes")
        }
        var program = [UInt8](repeating: 0, count: Int(size))
        var offset = 0
        while offset < program.count {
            let n = program.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + offset, $0.count - offset, off_t(offset)) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 {
                throw MCPJailError(.internalError, "seccomp: reading the exported filter: \(String(cString: strerror(Glibc.errno)))")
            }
            offset += n
        }
        return program
    }

    static func errnoName(_ e: Int32) -> String {
        switch e {
        case EPERM: "EPERM"
        case ENOSYS: "ENOSYS"
        case EACCES: "EACCES"
        default: "errno \(e)"
        }
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
