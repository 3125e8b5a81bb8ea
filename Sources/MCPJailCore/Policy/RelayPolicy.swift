/// Everything the relay decides with, built once per session from the profile: the
/// request pipeline (shape → authenticate → authorize → validate → rate-limit), the tool
/// catalog the schema check reads, the list filters, and the sanitizer for what the server
/// sends back.
public struct RelayPolicy: Sendable {
    public let profile: Profile
    public let pipeline: RequestPipeline
    public let catalog: ToolCatalog
    public let exposure: ExposurePolicy
    public let sanitizer: ErrorSanitizer
    /// Pinned tool definitions and injection checks; also records what the server offers.
    public let review: ToolReview

    /// `authenticate` is the auth check (nil when the profile does not require tokens);
    /// `secretValues` are the values of `[secrets]`, redacted from everything sent back.
    public init(
        profile: Profile, authenticate: (any RequestCheck)?, secretValues: [String],
        compile: @escaping ToolCatalog.Compiler, rateLimiter: RateLimiter = RateLimiter(), toolPins: ToolPins? = nil
    ) {
        self.profile = profile
        review = ToolReview(pins: toolPins, blockSuspicious: profile.blockSuspicious)
        catalog = ToolCatalog(profile: profile, review: review, compile: compile)
        exposure = ExposurePolicy(profile: profile, review: review)
        sanitizer = ErrorSanitizer(redactor: SecretRedactor(secrets: secretValues))
        var checks: [any RequestCheck] = [ToolCallShapeCheck()]
        if let authenticate { checks.append(authenticate) }
        checks += [AccessCheck(profile: profile), ArgumentSchemaCheck(catalog: catalog), RateCheck(profile: profile, limiter: rateLimiter)]
        pipeline = RequestPipeline(checks: checks)
    }

    /// How long a request may wait for the server.
    public func timeout(method: String, tool: String?) -> Duration {
        if method == "tools/call", let tool, let timeout = profile.policy(forTool: tool)?.timeout { return timeout }
        return profile.limits.callTimeout
    }
}
