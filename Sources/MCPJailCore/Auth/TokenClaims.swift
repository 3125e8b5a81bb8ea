import FoundationEssentials
import Glibc
import JWTKit

/// The claims mcpjail reads and writes, decoded with jwt-kit's claim types. Every field is
/// optional here so that a missing claim is reported as ``AuthFailure/Kind/missingClaim``
/// rather than as a decoding error; ``TokenVerifier`` does the checking.
struct TokenClaims: JWTPayload {
    var iss: IssuerClaim?
    var sub: SubjectClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var jti: IDClaim?
    /// RFC 8693 §4.2 / RFC 9068: space-separated scopes (an array is accepted too).
    var scope: ScopeList?
    /// The array form some issuers use (a space-separated string is accepted too).
    var scp: ScopeList?
    /// RFC 8693 §4.1: the acting party, with earlier actors nested inside.
    var act: ActorClaim?

    /// jwt-kit's hook; the claims are checked by ``TokenVerifier``, synchronously, against
    /// the configured issuer, audience and clock, so there is nothing to do here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Scopes as a space-separated string or an array of strings.
struct ScopeList: Codable, Sendable, Equatable {
    var values: [String]

    init(_ values: [String]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            values = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        } else {
            values = try container.decode([String].self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values.joined(separator: " "))
    }
}

/// `{"sub": "agent", "act": {"sub": "earlier agent"}}`.
final class ActorClaim: Codable, Sendable {
    /// Nesting deeper than this is refused as malformed.
    static let maxDepth = 16

    let sub: String?
    let act: ActorClaim?

    init(sub: String?, act: ActorClaim?) {
        self.sub = sub
        self.act = act
    }

    /// The chain `[outermost, ..., innermost]` made from `actors` (outermost first).
    static func chain(_ actors: [String]) -> ActorClaim? {
        actors.reversed().reduce(nil) { inner, subject in ActorClaim(sub: subject, act: inner) }
    }

    /// The actors' subjects, outermost first, or nil when an actor has no `sub` or the
    /// chain is too deep.
    var subjects: [String]? {
        var result: [String] = []
        var current: ActorClaim? = self
        while let actor = current {
            guard let subject = actor.sub, !subject.isEmpty, result.count < Self.maxDepth else { return nil }
            result.append(subject)
            current = actor.act
        }
        return result
    }
}
