import Synchronization

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
    /// SHA-256 (hex) of the file's bytes, recorded in every audit record. Worked out when
    /// first read (``ProfileDigest``).
    public var digest: String {
        get { digestSource.value }
        set { digestSource = ProfileDigest(value: newValue) }
    }
    private var digestSource: ProfileDigest
    public var description: String
    public var server: Server
    public var filesystem: Filesystem
    /// `[network]`: the egress allow-list (default: no network but the jail's own loopback).
    public var network: Network
    public var limits: Limits
    /// `[seccomp]`: adjustments to the default syscall filter (containment issue).
    public var seccomp: Seccomp
    /// `[tools.NAME]` tables, by tool name: the tools the model may see and call.
    public var tools: [String: ToolPolicy]
    /// `[tools] default`: unlisted tools are hidden (`deny`, the default) or open.
    public var toolDefault: ToolDefault
    /// `[tools] block_suspicious`: withhold tools whose text carries injection markers.
    public var blockSuspicious: Bool = false
    /// `[auth]`: per-call tokens (see ``Auth``).
    public var auth: Auth
    /// `[resources] allow`: resource URIs the model may list and read.
    public var resources: Exposure
    /// `[prompts] allow`: prompt names the model may list and get.
    public var prompts: Exposure
    /// `[secrets]`, sorted by name.
    public var secrets: [Secret]
    public var audit: AuditSettings

    public init(
        name: String, path: String, digest: String, description: String = "",
        server: Server, filesystem: Filesystem = Filesystem(), network: Network = Network(), limits: Limits = Limits(),
        seccomp: Seccomp = Seccomp(), tools: [String: ToolPolicy] = [:], toolDefault: ToolDefault = .deny,
        auth: Auth = Auth(), resources: Exposure = Exposure(), prompts: Exposure = Exposure(),
        secrets: [Secret] = [], audit: AuditSettings = AuditSettings()
    ) {
        self.name = name
        self.path = path
        self.digestSource = ProfileDigest(value: digest)
        self.description = description
        self.server = server
        self.filesystem = filesystem
        self.network = network
        self.limits = limits
        self.seccomp = seccomp
        self.tools = tools
        self.toolDefault = toolDefault
        self.auth = auth
        self.resources = resources
        self.prompts = prompts
        self.secrets = secrets
        self.audit = audit
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
        /// Absolute paths of the server's code (a venv, a package directory): every file
        /// under them is pinned in `NAME.lock`, and bound read-only into the jail. Default [].
        public var code: [String]
        /// Whether `run` requires `NAME.lock` and verifies the command and `code` against it
        /// before exec. Default true; false runs the server unverified, and every audit
        /// record says so.
        public var pinned: Bool

        public init(
            command: String, args: [String] = [], env: [String: String] = [:],
            workdir: String = "/", stopTimeout: Duration = .seconds(2), code: [String] = [], pinned: Bool = true
        ) {
            self.command = command
            self.args = args
            self.env = env
            self.workdir = workdir
            self.stopTimeout = stopTimeout
            self.code = code
            self.pinned = pinned
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

    /// `[network]`: where the server may connect. Everything goes through mcpjail's egress
    /// proxy on the host, which checks each connection against `egress`; nothing else
    /// gets out.
    public struct Network: Sendable, Equatable {
        /// Allowed destinations. Default [] (no network).
        public var egress: [EgressRule]
        /// Connections open at once through the proxy; more are refused. Default 64.
        public var maxConnections: Int
        /// A connection with no byte either way for this long is closed. Default 5 minutes.
        public var idleTimeout: Duration

        public static let defaultMaxConnections = 64
        public static let maxMaxConnections = 4096
        public static let defaultIdleTimeout = Duration.seconds(300)

        public init(
            egress: [EgressRule] = [], maxConnections: Int = Network.defaultMaxConnections,
            idleTimeout: Duration = Network.defaultIdleTimeout
        ) {
            self.egress = egress
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
        }

        public var policy: EgressPolicy { EgressPolicy(rules: egress) }
    }

    /// `[limits]`: resource caps. `nil` means unlimited (never the default for memory, pids,
    /// open files or file size). How each cap is enforced: memory and pids by a cgroup
    /// (v2, else v1), cpu by a cgroup's CPU bandwidth, open files, file size and CPU time by
    /// rlimits set in the jail's child before exec, wall time by the supervisor, and the
    /// message cap by the relay.
    public struct Limits: Sendable, Equatable {
        /// Largest JSON-RPC line either side may send, in bytes. Default 16 MiB.
        public var maxMessageBytes: Int
        /// Memory (RAM, no swap) of the whole jail, in bytes (cgroup). Default 1 GiB.
        public var memoryBytes: Int?
        /// Processes and threads in the whole jail (cgroup pids controller). Default 256.
        public var pids: Int?
        /// CPU bandwidth in cores (1 = one full core, 0.5 = half). Default unlimited.
        public var cpuCores: Double?
        /// Open file descriptors per process (RLIMIT_NOFILE). Default 1024.
        public var openFiles: Int
        /// Largest file a process may write (RLIMIT_FSIZE). Default 1 GiB.
        public var fileSizeBytes: Int?
        /// CPU time per process (RLIMIT_CPU, whole seconds, rounded up). Default unlimited.
        public var cpuTime: Duration?
        /// Wall-clock length of the whole session; the supervisor ends it. Default unlimited.
        public var wallTime: Duration?
        /// What happens when this host cannot enforce a memory or pids cap for this user.
        public var enforce: Enforcement
        /// How long one request may wait for the server before the relay answers `timeout`
        /// (per tool: `[tools.NAME] timeout`). Default 2 minutes.
        public var callTimeout: Duration
        /// How long a relay thread whose peer answered quickly last time polls for the next
        /// message before it sleeps in read(2); zero never spins. Default 200 µs.
        public var relaySpin: Duration

        /// `strict`: `run` refuses. `best-effort`: `run` starts with what the host can do
        /// and logs what is missing.
        public enum Enforcement: String, Sendable, Equatable, CaseIterable {
            case strict
            case bestEffort = "best-effort"
        }

        public static let defaultMaxMessageBytes = 16 * 1024 * 1024
        /// The smallest `max_message` a profile may set (64 bytes: tests use tiny caps).
        public static let minMaxMessageBytes = 64
        /// The largest `max_message` a profile may set (1 GiB).
        public static let maxMaxMessageBytes = 1 << 30

        public static let defaultMemoryBytes = 1 << 30
        public static let minMemoryBytes = 4 << 20
        public static let defaultPids = 256
        public static let maxPids = 4_194_304
        public static let minCPUCores = 0.01
        public static let maxCPUCores = 1024.0
        public static let defaultOpenFiles = 1024
        public static let minOpenFiles = 16
        public static let maxOpenFiles = 1 << 20
        public static let defaultFileSizeBytes = 1 << 30
        public static let minFileSizeBytes = 4096
        public static let defaultCallTimeout = Duration.seconds(120)
        public static let defaultRelaySpin = Duration.microseconds(200)
        public static let maxRelaySpin = Duration.milliseconds(10)

        public init(
            maxMessageBytes: Int = Limits.defaultMaxMessageBytes,
            memoryBytes: Int? = Limits.defaultMemoryBytes,
            pids: Int? = Limits.defaultPids,
            cpuCores: Double? = nil,
            openFiles: Int = Limits.defaultOpenFiles,
            fileSizeBytes: Int? = Limits.defaultFileSizeBytes,
            cpuTime: Duration? = nil,
            wallTime: Duration? = nil,
            enforce: Enforcement = .strict,
            callTimeout: Duration = Limits.defaultCallTimeout,
            relaySpin: Duration = Limits.defaultRelaySpin
        ) {
            self.maxMessageBytes = maxMessageBytes
            self.memoryBytes = memoryBytes
            self.pids = pids
            self.cpuCores = cpuCores
            self.openFiles = openFiles
            self.fileSizeBytes = fileSizeBytes
            self.cpuTime = cpuTime
            self.wallTime = wallTime
            self.enforce = enforce
            self.callTimeout = callTimeout
            self.relaySpin = relaySpin
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
}

/// How each `[limits]` key is enforced, as `check` and `doctor` describe it. Whether this
/// host and user can use the cgroup mechanisms is `doctor`'s (and `run`'s) question.
public enum LimitMechanism: String, Sendable, CaseIterable {
    case memory = "cgroup memory controller, swap off"
    case pids = "cgroup pids controller"
    case cpu = "cgroup cpu bandwidth"
    case openFiles = "rlimit RLIMIT_NOFILE"
    case fileSize = "rlimit RLIMIT_FSIZE"
    case cpuTime = "rlimit RLIMIT_CPU, per process, whole seconds"
    case wallTime = "supervisor timer, whole session"
}

extension Profile {
    /// Sets the digest to the SHA-256 of `bytes`, worked out when first read.
    mutating func setDigest(of bytes: [UInt8]) {
        digestSource = ProfileDigest(bytes: bytes)
    }
}

/// A profile file's SHA-256 (hex), worked out when first asked for. `run` needs it only
/// once the server is starting (audit records, the session registry), and the first
/// SHA-256 of a process costs ~0.2 ms here: BoringSSL probes the CPU's features with
/// CPUID, which a virtual machine traps. Worked out while the profile was read, that sat on
/// the path to the jail's start.
final class ProfileDigest: Sendable, Equatable {
    private enum State {
        case bytes([UInt8])
        case value(String)
    }

    private let state: Mutex<State>

    init(bytes: [UInt8]) { state = Mutex(.bytes(bytes)) }
    init(value: String) { state = Mutex(.value(value)) }

    var value: String {
        state.withLock { state in
            switch state {
            case .value(let value):
                return value
            case .bytes(let bytes):
                let value = bytes.withUnsafeBytes { SHA256Hex.digest($0) }
                state = .value(value)
                return value
            }
        }
    }

    static func == (left: ProfileDigest, right: ProfileDigest) -> Bool { left === right || left.value == right.value }
}
