import FoundationEssentials
import Glibc

/// Authenticate: with `[auth] required = true`, every `tools/call`, `resources/read` and
/// `prompts/get` must carry a token that verifies now (not once per session): from
/// `_meta["dev.mcpjail/authorization"]`, else `MCPJAIL_TOKEN_FILE`, else `MCPJAIL_TOKEN`
/// (``TokenSource``). The verified principal is what the later checks and the audit see.
public struct AuthCheck: RequestCheck {
    public let name = "auth"
    let verifier: TokenVerifier
    let source: TokenSource

    /// The methods that need a token.
    public static let methods: Set<String> = ["tools/call", "resources/read", "prompts/get"]

    public init(verifier: TokenVerifier, source: TokenSource) {
        self.verifier = verifier
        self.source = source
    }

    /// Loads the profile's keys; the token source reads the client's environment.
    public init(auth: Profile.Auth, clientEnvironment: [String: String]) throws(MCPJailError) {
        let configuration = AuthConfiguration(
            keyFiles: auth.keys, issuer: auth.issuer ?? "", audience: auth.audience ?? "", clockSkew: auth.clockSkew)
        self.init(verifier: try TokenVerifier(configuration: configuration), source: TokenSource(environment: clientEnvironment))
    }

    public func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        guard Self.methods.contains(request.method) else { return nil }
        var metaToken: String? = nil
        if let value = state.meta.authorization {
            guard case .string(let text) = value else {
                return refusal(AuthFailure(.malformed, "\(RequestMeta.authorizationKey) must be a string"), request)
            }
            metaToken = text
        }
        switch verifier.verify(source: source, meta: metaToken, now: Date()) {
        case .success(let principal):
            state.principal = principal
            return nil
        case .failure(let failure):
            return refusal(failure, request)
        }
    }

    private func refusal(_ failure: AuthFailure, _ request: InspectedRequest) -> Refusal {
        Refusal(failure.safeError, decidedBy: name, protocolCode: request.method == "tools/call" ? nil : JSONRPCErrorCode.refused)
    }
}
