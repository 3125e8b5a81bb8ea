import FoundationEssentials
import Glibc

/// Who a verified token speaks for: what the relay decides a call on.
///
/// Built only by ``TokenVerifier`` from a token whose signature, issuer, audience and times
/// all checked out, so holding one means "this caller proved this identity".
public struct Principal: Sendable, Equatable {
    /// The `sub` claim: the party the call is made for (a person, a service).
    public var subject: String
    /// The RFC 8693 delegation chain from nested `act` claims, outermost (the party acting
    /// now) first: `{"sub": "alice", "act": {"sub": "agent", "act": {"sub": "ide"}}}` gives
    /// `["agent", "ide"]`. Empty when the subject acts for itself.
    public var actors: [String]
    /// The granted scopes: the space-separated `scope` claim and the `scp` array, merged.
    public var scopes: Set<String>
    /// The `exp` claim. The token stops working after it (plus the clock skew).
    public var expiresAt: Date

    public init(subject: String, actors: [String] = [], scopes: Set<String> = [], expiresAt: Date) {
        self.subject = subject
        self.actors = actors
        self.scopes = scopes
        self.expiresAt = expiresAt
    }

    /// Whether the token granted `scope` (exact, case-sensitive match; no wildcards).
    public func has(scope: String) -> Bool { scopes.contains(scope) }
}

/// Why a token was refused: a stable kind and a short message that is safe to show the
/// caller (it never contains the token, nor claim values taken from it).
public struct AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable, machine-readable reasons.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// No token at all (no `_meta` entry, no token file, no `MCPJAIL_TOKEN`), or an
        /// empty one, or a token file that cannot be read.
        case missing
        /// Not a compact JWS: wrong shape, bad base64url, bad JSON, too large, a claim of
        /// the wrong type, or a header this verifier does not understand (`crit`).
        case malformed
        /// The `alg` is `none`, unknown, or not one of the configured keys' algorithms.
        case unsupportedAlgorithm
        /// The `kid` names no configured key.
        case unknownKey
        /// No configured key of the token's algorithm made this signature.
        case badSignature
        /// A required claim (`sub`, `iss`, `aud`, `exp`) is absent.
        case missingClaim
        /// `iss` is not the configured issuer.
        case wrongIssuer
        /// `aud` does not contain the configured audience.
        case wrongAudience
        /// `exp` (plus the clock skew) has passed.
        case expired
        /// `nbf` is still ahead, or `iat` lies in the future, beyond the clock skew.
        case notYetValid
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// Whether the same call can succeed later with a fresh or different token (the
    /// caller should get one): true for missing, expired and not-yet-valid tokens.
    public var retryable: Bool {
        switch kind {
        case .missing, .expired, .notYetValid: true
        default: false
        }
    }

    /// The model-facing form of this refusal.
    public var safeError: SafeError {
        SafeError(.unauthenticated, "authentication failed: \(message)", retryable: retryable)
    }
}

extension SafeError.Kind {
    /// The call carried no acceptable token (see ``AuthFailure``).
    public static let unauthenticated = SafeError.Kind(rawValue: "unauthenticated")
}
