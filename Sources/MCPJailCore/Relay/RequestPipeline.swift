/// One client request as the checks see it: what the relay parsed, plus the raw line.
///
/// `line` is only valid during the check: checks that need to keep something copy it.
public struct InspectedRequest {
    /// `tools/call` arguments past this size are never held twice: the relay digests them
    /// in place rather than copying them for the audit thread (smaller ones are copied and
    /// digested after the call is forwarded, off its path).
    public static let largeArguments = 1 << 20

    public var method: String
    public var id: RequestID?
    /// `params.name` of a `tools/call`.
    public var toolName: String?
    public var scanned: ScannedMessage
    public var line: UnsafeRawBufferPointer

    public init(method: String, id: RequestID?, toolName: String?, scanned: ScannedMessage, line: UnsafeRawBufferPointer) {
        self.method = method
        self.id = id
        self.toolName = toolName
        self.scanned = scanned
        self.line = line
    }

    /// The bytes of `params.arguments` of a `tools/call`, if present.
    public var argumentsBytes: UnsafeRawBufferPointer? {
        guard let member = scanned.member("arguments", in: "params") else { return nil }
        return UnsafeRawBufferPointer(rebasing: line[member.value.start..<member.value.end])
    }
}

/// Why a check refused a request, and how the refusal reaches the client.
public struct Refusal: Sendable, Equatable {
    public var error: SafeError
    /// The check that decided, for the audit log.
    public var decidedBy: String
    /// A JSON-RPC error code for protocol faults. nil for policy refusals, which reach a
    /// `tools/call` as a tool result with `isError: true` so the model can recover.
    public var protocolCode: Int?

    public init(_ error: SafeError, decidedBy: String, protocolCode: Int? = nil) {
        self.error = error
        self.decidedBy = decidedBy
        self.protocolCode = protocolCode
    }
}

/// What the checks learn about one request as it passes them: who is calling (from the
/// auth check), mcpjail's `_meta` keys, the parsed arguments (parsed once, by the first
/// check that needs them).
public struct CallState: Sendable {
    /// The verified caller, or nil when auth is not required.
    public var principal: Principal?
    public var meta: RequestMeta
    /// Monotonic nanoseconds when the request arrived.
    public var now: UInt64
    private var parsedArguments: JSONValue??

    public init(meta: RequestMeta = RequestMeta(), now: UInt64, principal: Principal? = nil) {
        self.meta = meta
        self.now = now
        self.principal = principal
    }

    /// The subject rate limits and idempotency keys are kept per: the token's `sub`, or
    /// `-` without auth.
    public var subject: String { principal?.subject ?? "-" }

    /// Whether the arguments have been parsed already (a check then uses that value
    /// rather than reading the bytes again).
    public var argumentsParsed: Bool { parsedArguments != nil }

    /// `params.arguments` of a `tools/call` as a value (`{}` when absent); nil when it is
    /// not valid JSON (the scanner has already refused that, so in practice never).
    public mutating func arguments(of request: InspectedRequest) -> JSONValue? {
        if let parsedArguments { return parsedArguments }
        let value: JSONValue?
        if let bytes = request.argumentsBytes {
            value = try? JSONParser.parse(bytes)
        } else {
            value = .object(JSONObject())
        }
        parsedArguments = .some(value)
        return value
    }
}

/// One check with one job. Checks run in order; the first refusal decides.
public protocol RequestCheck: Sendable {
    /// A short stable name recorded as `decided_by` in the audit log.
    var name: String { get }
    func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal?
}

/// The one place where client requests are decided, in the order the issue fixes:
/// shape → authenticate → authorize → validate arguments → rate-limit.
public struct RequestPipeline: Sendable {
    public var checks: [any RequestCheck]

    public init(checks: [any RequestCheck]) {
        self.checks = checks
    }

    /// nil to forward the request, or the first refusal.
    public func decide(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        for check in checks {
            if let refusal = check.check(request, &state) { return refusal }
        }
        return nil
    }
}

/// A `tools/call` must name its tool with a string and pass its arguments as an object:
/// anything else is refused before a server (or a later check) can misread it.
public struct ToolCallShapeCheck: RequestCheck {
    public let name = "tool_call_shape"
    public init() {}

    public func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        guard request.method == "tools/call" else { return nil }
        func invalid(_ message: String) -> Refusal {
            Refusal(SafeError(.invalidRequest, message, retryable: false), decidedBy: name, protocolCode: JSONRPCErrorCode.invalidParams)
        }
        guard let params = request.scanned.member("params"), params.kind == .object else {
            return invalid("tools/call needs params as an object")
        }
        guard request.toolName != nil else { return invalid("tools/call needs params.name as a string") }
        if let arguments = request.scanned.member("arguments", in: "params"), arguments.kind != .object {
            return invalid("tools/call params.arguments must be an object")
        }
        return nil
    }
}

/// The JSON-RPC error codes mcpjail answers with.
public enum JSONRPCErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let invalidParams = -32602
    /// mcpjail's own faults use -32000...-32019.
    public static let serverUnavailable = -32000
    public static let messageTooLarge = -32001
    /// A policy refusal of a request that has no tool result form (`resources/read`, ...).
    public static let refused = -32002
    public static let timeout = -32003
}
