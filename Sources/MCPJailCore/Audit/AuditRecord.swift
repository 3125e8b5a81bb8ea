/// One audit record: what a request asked, what mcpjail decided, and how it ended.
///
/// Written as one JSON line per request that reaches the policy pipeline, chained by
/// hash to the record before it (see ``AuditLog``).
public struct AuditRecord: Sendable, Equatable {
    /// Seconds since the Unix epoch, with microseconds.
    public var time: Double
    public var server: String
    /// SHA-256 of the profile file the session started with.
    public var profileDigest: String
    /// A random id per `mcpjail run`.
    public var session: String
    /// The JSON-RPC id as the client sent it (its JSON text), if the message had one.
    public var requestID: String?
    public var method: String
    /// For `tools/call`: the tool name.
    public var tool: String?
    /// For `tools/call`: SHA-256 of the canonical JSON of the arguments.
    public var argumentsDigest: String?
    public var decision: Decision
    /// Which check decided a denial (nil when allowed).
    public var decidedBy: String?
    public var outcome: Outcome
    /// The JSON-RPC error code, for protocol errors.
    public var errorCode: Int?
    /// The stable error type when mcpjail itself refused or failed the request.
    public var errorType: String?
    /// From the request's arrival to its response's departure.
    public var latencyMicros: Int64
    /// Size of the request line as received from the client.
    public var bytesIn: Int
    /// Size of the response line sent to the client.
    public var bytesOut: Int
    /// `required` when the profile requires tokens, else `off` (local use, flagged in every record).
    public var auth: String?
    /// The verified caller (`sub`), when auth is required.
    public var subject: String?
    /// The behalf-of chain (`act`), outermost actor first.
    public var actors: [String]?
    /// The arguments themselves (secrets redacted), only with `[audit] log_arguments = true`.
    public var arguments: JSONValue?
    /// Write tools: the idempotency key, and what happened with it: `executed` (first
    /// call), `replayed` (stored result returned, server not contacted), or the refusal.
    public var idempotencyKey: String?
    public var idempotency: String?
    /// Whether the session's server was verified against its pins (`NAME.lock`) before it
    /// started; false for a profile with `[server] pinned = false`.
    public var pinned: Bool?
    /// Egress records (`egress/connect`, `egress/http-proxy`, `egress/dns`): where the
    /// jailed server tried to go, as it asked (`name:port`, `1.2.3.4:port`, or a name for DNS).
    /// For them `bytes_in` counts bytes from the jail out, `bytes_out` bytes back in, and
    /// `latency_us` the connection's whole duration.
    public var destination: String?
    /// Egress records: the address mcpjail connected to (or refused to) for `destination`.
    public var peerAddress: String?
    /// `egress/connect` records: `tcp`, or `udp` for a datagram the jail's kernel refused.
    public var transport: String?
    /// Egress records of refused attempts that nothing listened for: how many attempts the
    /// record stands for when repeats were coalesced (absent: one). See ``EgressRefusalCoalescer``.
    public var attempts: Int?

    public enum Decision: String, Sendable, Equatable {
        case allow, deny
    }

    public enum Outcome: String, Sendable, Equatable {
        /// A `result` that is not a tool error.
        case ok
        /// A `tools/call` result with `isError: true`.
        case toolError = "tool_error"
        /// A JSON-RPC `error`.
        case protocolError = "protocol_error"
        /// No response: the session ended first (server death, client EOF).
        case noResponse = "no_response"
        /// Egress: the connection or lookup was refused or could not be made.
        case refused
    }

    public init(
        time: Double, server: String, profileDigest: String, session: String,
        requestID: String?, method: String, tool: String? = nil, argumentsDigest: String? = nil,
        decision: Decision, decidedBy: String? = nil, outcome: Outcome, errorCode: Int? = nil,
        errorType: String? = nil, latencyMicros: Int64, bytesIn: Int, bytesOut: Int,
        auth: String? = nil, subject: String? = nil, actors: [String]? = nil, arguments: JSONValue? = nil,
        idempotencyKey: String? = nil, idempotency: String? = nil,
        pinned: Bool? = nil
    ) {
        self.time = time
        self.server = server
        self.profileDigest = profileDigest
        self.session = session
        self.requestID = requestID
        self.method = method
        self.tool = tool
        self.argumentsDigest = argumentsDigest
        self.decision = decision
        self.decidedBy = decidedBy
        self.outcome = outcome
        self.errorCode = errorCode
        self.errorType = errorType
        self.latencyMicros = latencyMicros
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.auth = auth
        self.subject = subject
        self.actors = actors
        self.arguments = arguments
        self.idempotencyKey = idempotencyKey
        self.idempotency = idempotency
        self.pinned = pinned
    }
}
