/// One server's policy, loaded from `NAME.toml` with every default filled in.
///
/// The profile files are the allowlist: a server without one is never started. Later
/// sections (`[network]`, `[seccomp]`, `[auth]`, `[secrets]`, per-tool keys) extend this
/// model and `profiles/REFERENCE.toml` together. Every default is the safe one: no
/// network, no writable host path, no host environment.
public struct Profile: Sendable, Equatable {
    /// The name the client asked for: `[A-Za-z0-9._-]{1,64}`.
    public var name: String
    /// The file the profile was read from.
    public var path: String
    /// SHA-256 (hex) of the file's bytes, recorded in every audit record.
    public var digest: String
    public var description: String
    public var server: Server
    public var filesystem: Filesystem
    public var limits: Limits
    /// `[seccomp]`: adjustments to the default syscall filter (containment issue).
    public var seccomp: Seccomp
    /// `[tools.NAME]` tables, by tool name. Per-tool keys arrive with the policy issues.
    public var tools: [String: ToolPolicy]

    public init(
        name: String, path: String, digest: String, description: String = "",
        server: Server, filesystem: Filesystem = Filesystem(), limits: Limits = Limits(),
        seccomp: Seccomp = Seccomp(), tools: [String: ToolPolicy] = [:]
    ) {
        self.name = name
        self.path = path
        self.digest = digest
        self.description = description
        self.server = server
        self.filesystem = filesystem
        self.limits = limits
        self.seccomp = seccomp
        self.tools = tools
    }

    /// `[server]`: what to start.
    public struct Server: Sendable, Equatable {
        /// Absolute path of the server's executable.
        public var command: String
        public var args: [String]
        /// The server's whole environment: nothing of the client's leaks in.
        public var env: [String: String]
        /// Absolute working directory. Default `/`.
        public var workdir: String
        /// After the client's EOF closes the server's stdin, how long the server has to exit
        /// before SIGTERM, and again before SIGKILL. Default 2 s.
        public var stopTimeout: Duration

        public init(
            command: String, args: [String] = [], env: [String: String] = [:],
            workdir: String = "/", stopTimeout: Duration = .seconds(2)
        ) {
            self.command = command
            self.args = args
            self.env = env
            self.workdir = workdir
            self.stopTimeout = stopTimeout
        }
    }

    /// `[filesystem]`: what of the host the jail sees (enforced by the containment issue).
    public struct Filesystem: Sendable, Equatable {
        public var readOnly: [String]
        public var readWrite: [String]
        /// Mount point → size in bytes.
        public var tmpfs: [String: Int]

        public init(readOnly: [String] = [], readWrite: [String] = [], tmpfs: [String: Int] = [:]) {
            self.readOnly = readOnly
            self.readWrite = readWrite
            self.tmpfs = tmpfs
        }
    }

    /// `[limits]`: resource caps. The relay's message cap lives here; the containment
    /// issue adds memory, pids, cpu and friends.
    public struct Limits: Sendable, Equatable {
        /// Largest JSON-RPC line either side may send, in bytes. Default 16 MiB.
        public var maxMessageBytes: Int

        public static let defaultMaxMessageBytes = 16 * 1024 * 1024
        /// The smallest `max_message` a profile may set (64 bytes: tests use tiny caps).
        public static let minMaxMessageBytes = 64
        /// The largest `max_message` a profile may set (1 GiB).
        public static let maxMaxMessageBytes = 1 << 30

        public init(maxMessageBytes: Int = Limits.defaultMaxMessageBytes) {
            self.maxMessageBytes = maxMessageBytes
        }
    }

    /// `[seccomp]`: syscalls to take out of (`allow`) or add to (`deny`) the default deny
    /// list. Names are checked against ``SyscallNames``.
    public struct Seccomp: Sendable, Equatable {
        public var allow: [String]
        public var deny: [String]

        public init(allow: [String] = [], deny: [String] = []) {
            self.allow = allow
            self.deny = deny
        }
    }

    /// `[tools.NAME]`: per-tool policy. Empty until the policy and idempotency issues.
    public struct ToolPolicy: Sendable, Equatable {
        public init() {}
    }
}
