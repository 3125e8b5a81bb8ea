import FoundationEssentials
import Glibc
import JWTKit
import Synchronization

/// Checks a call's bearer token: a compact JWS signed by one of the configured keys, from
/// the configured issuer, for the configured audience, within its validity window.
///
/// Synchronous and thread-safe, for the relay's plain threads: the signature check is
/// jwt-kit's ``JWTAlgorithm`` on swift-crypto keys (no actor, no task), and a bounded cache
/// of already-verified tokens (keyed by the exact token text) skips the signature and JSON
/// work for a token seen before. The times (`exp`, `nbf`, `iat`) are checked on every call,
/// cached or not, so a token that expires mid-session stops working at the next call.
public final class TokenVerifier: Sendable {
    /// Longer tokens are refused as malformed before any decoding.
    public static let maxTokenBytes = 8192
    /// How many verified tokens are remembered (oldest forgotten first).
    public static let defaultCacheCapacity = 256

    public let issuer: String
    public let audience: String
    public let clockSkew: Duration
    /// The accepted keys' algorithms, in the order of ``TokenAlgorithm/allCases``.
    public let algorithms: [TokenAlgorithm]

    private let keys: [VerificationKey]
    private let skewSeconds: TimeInterval
    private let parser = DefaultJWTParser()
    private let cache: Mutex<VerifiedTokenCache>

    /// Loads the configuration's key files; errors name the file and the reason.
    public convenience init(
        configuration: AuthConfiguration, cacheCapacity: Int = TokenVerifier.defaultCacheCapacity
    ) throws(MCPJailError) {
        guard !configuration.keyFiles.isEmpty else {
            throw MCPJailError(.authKey, "authentication needs at least one key file")
        }
        var keys: [VerificationKey] = []
        for file in configuration.keyFiles {
            keys.append(try VerificationKey.load(file: file))
        }
        try self.init(
            keys: keys, issuer: configuration.issuer, audience: configuration.audience,
            clockSkew: configuration.clockSkew, cacheCapacity: cacheCapacity)
    }

    /// A verifier for already-loaded keys. `kid`s must be unique.
    public init(
        keys: [VerificationKey],
        issuer: String = AuthConfiguration.defaultIssuer,
        audience: String = AuthConfiguration.defaultAudience,
        clockSkew: Duration = AuthConfiguration.defaultClockSkew,
        cacheCapacity: Int = TokenVerifier.defaultCacheCapacity
    ) throws(MCPJailError) {
        guard !keys.isEmpty else { throw MCPJailError(.authKey, "authentication needs at least one key") }
        guard !issuer.isEmpty else { throw MCPJailError(.authKey, "the expected token issuer is empty") }
        guard !audience.isEmpty else { throw MCPJailError(.authKey, "the expected token audience is empty") }
        guard clockSkew >= .zero, clockSkew <= .seconds(3600) else {
            throw MCPJailError(.authKey, "the clock skew must be between 0s and 1h")
        }
        var seen: [String: String] = [:]
        for key in keys {
            guard let keyID = key.keyID else { continue }
            if let other = seen[keyID] {
                throw MCPJailError(
                    .authKey, "key files \(other) and \(key.origin) both have the kid '\(keyID)'",
                    hint: "a key's kid is its file name without the extension; rename one")
            }
            seen[keyID] = key.origin
        }
        let present = Set(keys.map(\.algorithm))
        self.keys = keys
        self.algorithms = TokenAlgorithm.allCases.filter(present.contains)
        self.issuer = issuer
        self.audience = audience
        self.clockSkew = clockSkew
        let (seconds, attoseconds) = clockSkew.components
        self.skewSeconds = TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
        self.cache = Mutex(VerifiedTokenCache(capacity: max(0, cacheCapacity)))
    }

    /// The principal the token proves, or why it is refused. `compactJWT` may carry a
    /// `Bearer ` prefix and surrounding whitespace.
    public func verify(_ compactJWT: String, now: Date = Date()) -> Result<Principal, AuthFailure> {
        let token: String
        switch Self.compactToken(compactJWT) {
        case .success(let text): token = text
        case .failure(let failure): return .failure(failure)
        }
        if let cached = cache.withLock({ $0.lookup(token) }) {
            return check(cached, now: now)
        }
        switch verifySignatureAndClaims(token) {
        case .success(let verified):
            cache.withLock { $0.insert(token, verified) }
            return check(verified, now: now)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// The token ``TokenSource`` finds for a call, verified.
    public func verify(source: TokenSource, meta: String?, now: Date = Date()) -> Result<Principal, AuthFailure> {
        source.token(meta: meta).flatMap { verify($0.text, now: now) }
    }

    /// How many verified tokens the cache holds now.
    var cachedTokenCount: Int { cache.withLock { $0.count } }

    // MARK: - Steps

    /// The bare compact JWS: whitespace and `Bearer ` removed, size and alphabet checked.
    /// Byte-wise, since a cached call does little else.
    static func compactToken(_ text: String) -> Result<String, AuthFailure> {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0D).contains($0) }
        var token = Substring(text).utf8
        guard token.count <= maxTokenBytes + 1024 else {  // before any other work
            return .failure(AuthFailure(.malformed, "the token is longer than \(maxTokenBytes) bytes"))
        }
        token = token.drop(while: isSpace)
        while let last = token.last, isSpace(last) { token = token.dropLast() }
        let bearer = "bearer".utf8
        if token.starts(with: bearer, by: { $0 | 0x20 == $1 }) {
            let rest = token.dropFirst(bearer.count)
            if rest.first.map(isSpace) ?? true { token = rest.drop(while: isSpace) }
        }
        if token.isEmpty { return .failure(AuthFailure(.missing, "no token")) }
        guard token.count <= maxTokenBytes else {
            return .failure(AuthFailure(.malformed, "the token is longer than \(maxTokenBytes) bytes"))
        }
        var periods = 0
        for byte in token {
            switch byte {
            case UInt8(ascii: "."): periods += 1
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                continue
            default:
                return .failure(AuthFailure(.malformed, "the token has characters outside base64url"))
            }
        }
        guard periods == 2 else {
            return .failure(AuthFailure(.malformed, "the token is not a compact JWS (three parts separated by '.')"))
        }
        return .success(String(Substring(token)))
    }

    /// Everything that depends only on the token text: header, signature, issuer,
    /// audience, subject, actors, scopes. The result is what the cache keeps.
    private func verifySignatureAndClaims(_ token: String) -> Result<VerifiedToken, AuthFailure> {
        let bytes = Array(token.utf8)
        let header: JWTHeader
        let claims: TokenClaims
        let signature: Data
        do {
            (header, claims, signature) = try parser.parse(bytes, as: TokenClaims.self)
        } catch {
            return .failure(AuthFailure(.malformed, "the token's header or claims are not base64url-encoded JSON of the expected shape"))
        }

        guard let algorithmName = header.alg else {
            return .failure(AuthFailure(.malformed, "the token's header has no alg"))
        }
        let accepted = algorithms.map(\.rawValue).joined(separator: ", ")
        guard let algorithm = TokenAlgorithm(rawValue: algorithmName), algorithms.contains(algorithm) else {
            let what = algorithmName.lowercased() == "none" ? "unsigned tokens (alg none) are refused" : "the token's alg is not accepted"
            return .failure(AuthFailure(.unsupportedAlgorithm, "\(what) (accepted: \(accepted))"))
        }
        if header.fields["crit"] != nil {
            return .failure(AuthFailure(.malformed, "critical header extensions (crit) are not supported"))
        }

        var candidates = keys.filter { $0.algorithm == algorithm }
        if let headerField = header.fields["kid"] {
            guard let keyID = headerField.asString else {
                return .failure(AuthFailure(.malformed, "the token's kid is not a string"))
            }
            guard let named = keys.first(where: { $0.keyID == keyID }) else {
                return .failure(AuthFailure(.unknownKey, "the token's kid names no configured key"))
            }
            guard named.algorithm == algorithm else {
                return .failure(AuthFailure(.unsupportedAlgorithm, "the token's alg does not match the algorithm of the key its kid names"))
            }
            candidates = [named]
        }
        let signingInput = bytes[..<bytes.lastIndex(of: UInt8(ascii: "."))!]  // compactToken saw two periods
        let signed = candidates.contains { key in
            (try? key.jwtAlgorithm.verify(signature, signs: signingInput)) == true
        }
        guard signed else {
            return .failure(AuthFailure(.badSignature, "the signature was not made by any configured \(algorithm.rawValue) key"))
        }

        guard let tokenIssuer = claims.iss?.value else { return .failure(AuthFailure(.missingClaim, "the token has no iss claim")) }
        guard tokenIssuer == issuer else {
            return .failure(AuthFailure(.wrongIssuer, "the token's issuer is not the one this server accepts"))
        }
        guard let audiences = claims.aud?.value else { return .failure(AuthFailure(.missingClaim, "the token has no aud claim")) }
        guard audiences.contains(audience) else {
            return .failure(AuthFailure(.wrongAudience, "the token is not meant for this server (aud)"))
        }
        guard let subject = claims.sub?.value, !subject.isEmpty else {
            return .failure(AuthFailure(.missingClaim, "the token has no sub claim"))
        }
        guard let expiresAt = claims.exp?.value else { return .failure(AuthFailure(.missingClaim, "the token has no exp claim")) }
        var actors: [String] = []
        if let act = claims.act {
            guard let subjects = act.subjects else {
                return .failure(AuthFailure(
                    .malformed, "the act claim needs a sub at every level and at most \(ActorClaim.maxDepth) levels"))
            }
            actors = subjects
        }
        let scopes = Set((claims.scope?.values ?? []) + (claims.scp?.values ?? []))
        let principal = Principal(subject: subject, actors: actors, scopes: scopes, expiresAt: expiresAt)
        return .success(VerifiedToken(principal: principal, notBefore: claims.nbf?.value, issuedAt: claims.iat?.value))
    }

    /// The per-call part: the validity window against `now`, with the clock skew.
    private func check(_ verified: VerifiedToken, now: Date) -> Result<Principal, AuthFailure> {
        let now = now.timeIntervalSince1970
        if now >= verified.principal.expiresAt.timeIntervalSince1970 + skewSeconds {
            return .failure(AuthFailure(.expired, "the token has expired"))
        }
        if let notBefore = verified.notBefore, now + skewSeconds < notBefore.timeIntervalSince1970 {
            return .failure(AuthFailure(.notYetValid, "the token is not valid yet (nbf)"))
        }
        if let issuedAt = verified.issuedAt, issuedAt.timeIntervalSince1970 > now + skewSeconds {
            return .failure(AuthFailure(.notYetValid, "the token was issued in the future (iat)"))
        }
        return .success(verified.principal)
    }
}

/// A token whose signature and static claims passed; its times are checked per call.
struct VerifiedToken: Sendable {
    var principal: Principal
    var notBefore: Date?
    var issuedAt: Date?
}

/// A fixed-size map from token text to its verified claims; the oldest insertion is
/// forgotten first. Not thread-safe by itself (``TokenVerifier`` holds it in a `Mutex`).
struct VerifiedTokenCache {
    let capacity: Int
    private var entries: [String: VerifiedToken] = [:]
    private var order: [String] = []
    private var oldest = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { entries.count }

    func lookup(_ token: String) -> VerifiedToken? { entries[token] }

    mutating func insert(_ token: String, _ verified: VerifiedToken) {
        guard capacity > 0 else { return }
        if entries.updateValue(verified, forKey: token) != nil { return }
        if order.count < capacity {
            order.append(token)
        } else {
            entries.removeValue(forKey: order[oldest])
            order[oldest] = token
            oldest = (oldest + 1) % capacity
        }
    }
}
