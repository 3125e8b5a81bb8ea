/// The error kinds mcpjail reports, as data.
///
/// Two audiences: the person at the terminal gets one line, `mcpjail: what: why`, plus a
/// `(hint: ...)` where a known cause has a known fix (bubblewrap's style); the model on the
/// other end of the relay gets a ``SafeError``: a stable type, a short message, and whether
/// retrying can help, never a host path, stack trace or secret.
public struct MCPJailError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, extensible code (containerization's `ContainerizationError.Code` shape).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let noProfile = Code(rawValue: "no_profile")
        public static let invalidProfile = Code(rawValue: "invalid_profile")
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        public static let spawnFailed = Code(rawValue: "spawn_failed")
        public static let io = Code(rawValue: "io")
        public static let auditLog = Code(rawValue: "audit_log")
        /// The idempotency database cannot be used (corrupted, locked, unwritable).
        public static let idempotencyStore = Code(rawValue: "idempotency_store")
        public static let internalError = Code(rawValue: "internal")
        /// A pinned profile without a usable lock (`mcpjail pin NAME` writes one).
        public static let notPinned = Code(rawValue: "not_pinned")
        /// A lock that cannot be read: another format, unknown keys, a hand edit.
        public static let invalidLock = Code(rawValue: "invalid_lock")
        /// The server's command or code differs from its pins.
        public static let pinMismatch = Code(rawValue: "pin_mismatch")
    }

    public var code: Code
    /// What happened, for the person: `no profile 'x' in /a, /b (the profiles are the allowlist)`.
    public var message: String
    /// A known fix for a known cause, or nil.
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    /// The one line printed on stderr: `mcpjail: message (hint: ...)`.
    public var description: String {
        if let hint { return "mcpjail: \(message) (hint: \(hint))" }
        return "mcpjail: \(message)"
    }
}

/// What the model sees when mcpjail refuses or fails a request: the DESIGN.md error triple.
///
/// It goes into `structuredContent.error` of a tool result (`isError: true`) for a refused
/// `tools/call`, or into `error.data` of a JSON-RPC error for a protocol fault.
public struct SafeError: Sendable, Equatable {
    /// Stable machine-readable types. New checks add their own.
    public struct Kind: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let parseError = Kind(rawValue: "parse_error")
        public static let invalidRequest = Kind(rawValue: "invalid_request")
        public static let batchRefused = Kind(rawValue: "batch_refused")
        public static let messageTooLarge = Kind(rawValue: "message_too_large")
        public static let serverUnavailable = Kind(rawValue: "server_unavailable")
        public static let forbidden = Kind(rawValue: "forbidden")
        public static let limitExceeded = Kind(rawValue: "limit_exceeded")
        /// Another call with the same idempotency key is still running. Retryable.
        public static let conflict = Kind(rawValue: "conflict")
        /// An idempotency key reused with different arguments. Not retryable.
        public static let idempotencyMismatch = Kind(rawValue: "idempotency_mismatch")
        /// A write started but its outcome is unknown; it is never run again. Not retryable.
        public static let outcomeUnknown = Kind(rawValue: "outcome_unknown")
        public static let `internal` = Kind(rawValue: "internal")
        public static let invalidArguments = Kind(rawValue: "invalid_arguments")
        public static let rateLimited = Kind(rawValue: "rate_limited")
        public static let timeout = Kind(rawValue: "timeout")
        /// The server's profile was removed while it ran (revocation).
        public static let serverRevoked = Kind(rawValue: "server_revoked")
    }

    public var kind: Kind
    public var message: String
    public var retryable: Bool
    /// `rate_limited`: seconds until a retry can succeed (`retry_after` in the triple).
    public var retryAfter: Double?
    /// `invalid_arguments`: the JSON pointer of the first violation (`pointer`).
    public var pointer: String?

    public init(_ kind: Kind, _ message: String, retryable: Bool, retryAfter: Double? = nil, pointer: String? = nil) {
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.retryAfter = retryAfter
        self.pointer = pointer
    }
}
