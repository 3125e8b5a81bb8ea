/// The relay's half of a profile: who may call (`[auth]`), which tools, resources and
/// prompts the model sees (`[tools]`, `[resources]`, `[prompts]`), what each tool accepts
/// and how often, which host secrets the server gets (`[secrets]`) and what the audit log
/// keeps (`[audit]`). The defaults are the safe ones: unlisted tools hidden and refused,
/// strict argument schemas, secrets redacted, arguments logged only as digests.
extension Profile {
    /// `[auth]`: per-call authentication with signed JWTs.
    public struct Auth: Sendable, Equatable {
        /// Every `tools/call`, `resources/read` and `prompts/get` must carry a valid token.
        /// `false` (the default, for local use) is flagged by `check` and in every audit record.
        public var required: Bool
        /// Verification keys: PEM public keys (EdDSA, ES256) or files holding an HS256 secret.
        public var keys: [String]
        public var issuer: String?
        public var audience: String?
        /// Allowance for clock differences on `exp`, `nbf` and `iat`. Default 60 s.
        public var clockSkew: Duration
        /// Calls per subject across all tools, or nil for no limit.
        public var rate: Rate?

        public init(
            required: Bool = false, keys: [String] = [], issuer: String? = nil, audience: String? = nil,
            clockSkew: Duration = .seconds(60), rate: Rate? = nil
        ) {
            self.required = required
            self.keys = keys
            self.issuer = issuer
            self.audience = audience
            self.clockSkew = clockSkew
            self.rate = rate
        }
    }

    /// A rate like `"10/minute"`: at most `count` calls per `period`, refilled smoothly
    /// (a token bucket of `count` tokens).
    public struct Rate: Sendable, Equatable, CustomStringConvertible {
        public var count: Int
        public var period: Duration

        public init(count: Int, period: Duration) {
            self.count = count
            self.period = period
        }

        public var description: String {
            switch period {
            case .seconds(1): return "\(count)/second"
            case .seconds(60): return "\(count)/minute"
            case .seconds(3600): return "\(count)/hour"
            default: return "\(count)/day"
            }
        }
    }

    /// `[tools] default`: what happens to a tool the profile does not list.
    public enum ToolDefault: String, Sendable, Equatable {
        /// Hidden from `tools/list` and refused when called (the default).
        case deny
        /// Listed and callable, with no scope requirement and the server's schema alone.
        case allow
    }

    /// `[tools.NAME]`: one allowed tool's policy.
    public struct ToolPolicy: Sendable, Equatable {
        /// The token scope this tool needs (only checked when auth is required).
        public var scope: String?
        /// Calls per subject to this tool.
        public var rate: Rate?
        /// How long a call may run; nil means `[limits] call_timeout`.
        public var timeout: Duration?
        /// A JSON Schema fragment the arguments must also satisfy (`[tools.NAME.arguments]`).
        public var arguments: JSONValue?
        /// Reject argument properties the schemas do not name. Default true.
        public var strict: Bool
        /// The tool writes: the relay makes it idempotent (a retried call is never run twice).
        /// The profile decides this; the server's annotations do not count.
        public var write: Bool
        /// The arguments that identify one write (top-level names); nil: all of them.
        public var idempotencyFields: [String]?
        /// How long a write's key and result are kept. Default 24 h.
        public var idempotencyTTL: Duration

        public static let defaultIdempotencyTTL = Duration.seconds(24 * 3600)

        public init(
            scope: String? = nil, rate: Rate? = nil, timeout: Duration? = nil, arguments: JSONValue? = nil,
            strict: Bool = true, write: Bool = false, idempotencyFields: [String]? = nil,
            idempotencyTTL: Duration = ToolPolicy.defaultIdempotencyTTL
        ) {
            self.scope = scope
            self.rate = rate
            self.timeout = timeout
            self.arguments = arguments
            self.strict = strict
            self.write = write
            self.idempotencyFields = idempotencyFields
            self.idempotencyTTL = idempotencyTTL
        }
    }

    /// `[resources] allow` or `[prompts] allow`: glob patterns (`*` within a path segment,
    /// `**` across segments). nil: follow `[tools] default`.
    public struct Exposure: Sendable, Equatable {
        public var allow: [String]?

        public init(allow: [String]? = nil) { self.allow = allow }
    }

    /// `[secrets] NAME = { file = "..." }` or `{ env = "HOST_VAR" }`: a value injected into
    /// the server's environment as `NAME`, and redacted from everything sent to the client
    /// and from every log.
    public struct Secret: Sendable, Equatable {
        public enum Source: Sendable, Equatable {
            case file(String)
            case environment(String)
        }

        public var name: String
        public var source: Source

        public init(name: String, source: Source) {
            self.name = name
            self.source = source
        }
    }

    /// `[audit]`: what each record keeps.
    public struct AuditSettings: Sendable, Equatable {
        /// Log the arguments themselves (secrets redacted) instead of only their digest.
        public var logArguments: Bool

        public init(logArguments: Bool = false) { self.logArguments = logArguments }
    }

    /// The policy of a tool the model may see, or nil when the tool is hidden.
    public func policy(forTool name: String) -> ToolPolicy? {
        if let listed = tools[name] { return listed }
        return toolDefault == .allow ? ToolPolicy() : nil
    }
}
