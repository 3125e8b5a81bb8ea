/// Authorize: the tool, resource or prompt must be exposed by the profile, and a tool's
/// `scope` must be among the caller's token scopes. Hidden and nonexistent names get the
/// same answer, so a refusal never tells the model that something exists.
public struct AccessCheck: RequestCheck {
    public let name = "access"
    let profile: Profile
    let exposure: ExposurePolicy

    public init(profile: Profile) {
        self.profile = profile
        self.exposure = ExposurePolicy(profile: profile)
    }

    public func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        switch request.method {
        case "tools/call":
            guard let tool = request.toolName else { return nil }
            guard let policy = profile.policy(forTool: tool) else {
                return Refusal(SafeError(.forbidden, "tool '\(Self.shown(tool))' is not available", retryable: false), decidedBy: name)
            }
            if profile.auth.required, let scope = policy.scope, !(state.principal?.has(scope: scope) ?? false) {
                return Refusal(SafeError(.forbidden, "tool '\(tool)' needs the scope '\(scope)', which the token does not grant", retryable: false), decidedBy: name)
            }
            return nil
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            let uri = request.scanned.member("uri", in: "params").flatMap { request.scanned.string($0, in: request.line) }
            guard let uri, exposure.resourceAllowed(uri) else {
                return Refusal(SafeError(.forbidden, "resource not available", retryable: false), decidedBy: name, protocolCode: JSONRPCErrorCode.refused)
            }
            return nil
        case "prompts/get":
            let prompt = request.scanned.member("name", in: "params").flatMap { request.scanned.string($0, in: request.line) }
            guard let prompt, exposure.promptAllowed(prompt) else {
                return Refusal(SafeError(.forbidden, "prompt not available", retryable: false), decidedBy: name, protocolCode: JSONRPCErrorCode.refused)
            }
            return nil
        default:
            return nil
        }
    }

    /// A name as echoed in a refusal: at most 64 characters.
    static func shown(_ name: String) -> String {
        name.count <= 64 ? name : String(name.prefix(64)) + "…"
    }
}

/// Rate-limit: `[tools.NAME] rate` per subject and tool, `[auth] rate` per subject over
/// every call, resource read and prompt get.
public struct RateCheck: RequestCheck {
    public let name = "rate"
    let profile: Profile
    let limiter: RateLimiter

    public init(profile: Profile, limiter: RateLimiter = RateLimiter()) {
        self.profile = profile
        self.limiter = limiter
    }

    public func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        let counted = ["tools/call", "resources/read", "prompts/get"].contains(request.method)
        guard counted else { return nil }
        if let rate = profile.auth.rate,
            let wait = limiter.take("auth\u{0}" + state.subject, rate: rate, now: state.now)
        {
            return refusal(wait: wait, rate: rate, what: "calls", request: request)
        }
        if request.method == "tools/call", let tool = request.toolName, let rate = profile.policy(forTool: tool)?.rate,
            let wait = limiter.take("tool\u{0}" + tool + "\u{0}" + state.subject, rate: rate, now: state.now)
        {
            return refusal(wait: wait, rate: rate, what: "calls to '\(tool)'", request: request)
        }
        return nil
    }

    private func refusal(wait: Double, rate: Profile.Rate, what: String, request: InspectedRequest) -> Refusal {
        let seconds = (wait * 10).rounded(.up) / 10
        let error = SafeError(
            .rateLimited, "rate limit of \(rate) \(what) reached; retry after \(seconds) s", retryable: true,
            retryAfter: seconds)
        return Refusal(error, decidedBy: name, protocolCode: request.method == "tools/call" ? nil : JSONRPCErrorCode.refused)
    }
}
