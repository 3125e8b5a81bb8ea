import Crypto
import FoundationEssentials
import Glibc
import JWTKit

/// What a minted token says (see ``TokenIssuer``).
public struct TokenRequest: Sendable, Equatable {
    /// `sub`: who the calls are made for.
    public var subject: String
    /// `scope`, written space-separated.
    public var scopes: [String]
    /// `exp` is `iat` plus this.
    public var timeToLive: Duration
    /// `aud`.
    public var audience: String
    /// `iss`.
    public var issuer: String
    /// The RFC 8693 `act` chain, outermost (the party acting now) first.
    public var actors: [String]
    /// `kid` in the header, naming the verifier's key; none lets the verifier try each key
    /// of the algorithm.
    public var keyID: String?

    /// The longest lifetime a minted token may have.
    public static let maxTimeToLive: Duration = .seconds(366 * 24 * 3600)

    public init(
        subject: String, scopes: [String] = [], timeToLive: Duration = .seconds(15 * 60),
        audience: String = AuthConfiguration.defaultAudience, issuer: String = AuthConfiguration.defaultIssuer,
        actors: [String] = [], keyID: String? = nil
    ) {
        self.subject = subject
        self.scopes = scopes
        self.timeToLive = timeToLive
        self.audience = audience
        self.issuer = issuer
        self.actors = actors
        self.keyID = keyID
    }

    /// A lifetime like `"30s"`, `"15m"`, `"1h"` (the profile's duration syntax).
    public static func parseTimeToLive(_ text: String) throws(MCPJailError) -> Duration {
        switch DurationSyntax.parse(text) {
        case .success(let duration):
            guard duration >= .seconds(1), duration <= maxTimeToLive else {
                throw MCPJailError(.invalidArgument, "--ttl '\(text)' must be between 1s and 366 days")
            }
            return duration
        case .failure(let problem):
            throw MCPJailError(.invalidArgument, "--ttl \(problem.message)")
        }
    }

    func validate() throws(MCPJailError) {
        guard !subject.isEmpty else { throw MCPJailError(.invalidArgument, "the subject (--sub) is empty") }
        guard !issuer.isEmpty, !audience.isEmpty else {
            throw MCPJailError(.invalidArgument, "the issuer (--iss) and audience (--aud) must not be empty")
        }
        guard timeToLive >= .seconds(1), timeToLive <= Self.maxTimeToLive else {
            throw MCPJailError(.invalidArgument, "the lifetime must be between 1s and 366 days")
        }
        if scopes.contains(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) {
            throw MCPJailError(.invalidArgument, "a scope is empty or contains whitespace")
        }
        if actors.contains(where: \.isEmpty) { throw MCPJailError(.invalidArgument, "an actor (--act) is empty") }
        guard actors.count <= ActorClaim.maxDepth else {
            throw MCPJailError(.invalidArgument, "at most \(ActorClaim.maxDepth) actors (--act)")
        }
        if let keyID, keyID.isEmpty { throw MCPJailError(.invalidArgument, "the kid (--kid) is empty") }
    }
}

/// Mints compact JWTs with a private key file, for operators and tests: jwt-kit's
/// `JWTKeyCollection` does the encoding and signing (its own signers, independent of the
/// verifier's, so the tests cross-check the two).
///
/// Key files: an Ed25519 private key (PKCS#8 PEM) signs `EdDSA`, an EC P-256 private key
/// (PKCS#8 or SEC1 PEM) signs `ES256`, and a file with no PEM block is an `HS256` secret
/// under the same rule as ``AuthConfiguration``'s.
public struct TokenIssuer: Sendable {
    enum SigningKey: Sendable {
        case eddsa(EdDSA.PrivateKey)
        case es256(ES256PrivateKey)
        case hs256(HMACKey)
    }

    public let algorithm: TokenAlgorithm
    let key: SigningKey

    init(key: SigningKey) {
        self.key = key
        switch key {
        case .eddsa: algorithm = .eddsa
        case .es256: algorithm = .es256
        case .hs256: algorithm = .hs256
        }
    }

    /// Loads a signing key; errors name the file and the reason.
    public init(keyFile path: String) throws(MCPJailError) {
        let bytes = try KeyFile.read(path)
        guard let allLabels = KeyFile.pemLabels(bytes) else {
            self.init(key: .hs256(HMACKey(from: try KeyFile.secret(bytes, path: path))))
            return
        }
        let labels = allLabels.filter { $0 != "EC PARAMETERS" }  // `openssl ecparam -genkey` writes one
        guard labels.count == 1, let label = labels.first, label.hasSuffix("PRIVATE KEY") else {
            if labels.contains("PUBLIC KEY") {
                throw MCPJailError(
                    .authKey, "\(path) holds a public key; signing needs the private key",
                    hint: "give the .key file that `mcpjail token keygen` wrote beside it")
            }
            let found = labels.isEmpty ? "no PEM block" : labels.map { "'\($0)'" }.joined(separator: ", ")
            throw MCPJailError(.authKey, "\(path): expected one PEM private key block, found \(found)")
        }
        let pem = String(decoding: bytes, as: UTF8.self)
        if let key = try? EdDSA.PrivateKey(pem: pem) {
            self.init(key: .eddsa(key))
        } else if let key = try? ES256PrivateKey(pem: pem) {
            self.init(key: .es256(key))
        } else {
            throw MCPJailError(
                .authKey, "\(path): the private key is neither Ed25519 (EdDSA) nor EC P-256 (ES256), the two supported kinds")
        }
    }

    /// A signed compact JWT: header `alg`, `typ`, and `kid` if asked; claims `iss`, `sub`,
    /// `aud`, `iat` (now, whole seconds), `exp`, `jti` (random), and `scope` and `act` when given.
    public func issue(_ request: TokenRequest, now: Date = Date()) async throws(MCPJailError) -> String {
        try request.validate()
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let lifetime = TimeInterval(request.timeToLive.components.seconds)
        let claims = TokenClaims(
            iss: IssuerClaim(value: request.issuer),
            sub: SubjectClaim(value: request.subject),
            aud: AudienceClaim(value: [request.audience]),
            exp: ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime)),
            nbf: nil,
            iat: IssuedAtClaim(value: issuedAt),
            jti: IDClaim(value: UUID().uuidString.lowercased()),
            scope: request.scopes.isEmpty ? nil : ScopeList(request.scopes),
            scp: nil,
            act: ActorClaim.chain(request.actors))
        let keyID = request.keyID.map { JWKIdentifier(string: $0) }
        let keys = JWTKeyCollection()
        switch key {
        case .eddsa(let key): await keys.add(eddsa: key, kid: keyID)
        case .es256(let key): await keys.add(ecdsa: key, kid: keyID)
        case .hs256(let key): await keys.add(hmac: key, digestAlgorithm: .sha256, kid: keyID)
        }
        do {
            return try await keys.sign(claims, kid: keyID)
        } catch {
            throw MCPJailError(.internalError, "signing the token failed: \(error)")
        }
    }
}

/// Key pairs for ``TokenIssuer`` and ``TokenVerifier``, so that operators and tests need no openssl.
public enum TokenKeyGenerator {
    /// The files written: `PREFIX.key` (mode 0600) and, for EdDSA and ES256, `PREFIX.pub`.
    public struct Written: Sendable, Equatable {
        public var privateKeyFile: String
        /// The verifier's key file: the public key, or for HS256 the same secret file.
        public var verificationKeyFile: String
    }

    /// Writes a new key. Existing files are never overwritten.
    ///
    /// - EdDSA: `PREFIX.key` is the Ed25519 private key (PKCS#8 PEM), `PREFIX.pub` the public key.
    /// - ES256: the same for EC P-256.
    /// - HS256: `PREFIX.key` holds a 256-bit random secret as 43 base64url characters (the
    ///   secret is that text); the verifier is given the same file. No `.pub`.
    @discardableResult
    public static func generate(_ algorithm: TokenAlgorithm, prefix: String) throws(MCPJailError) -> Written {
        let privatePath = prefix + ".key"
        let publicPath = prefix + ".pub"
        switch algorithm {
        case .eddsa:
            let key = Curve25519.Signing.PrivateKey()
            try write(publicPath: publicPath, key.publicKey.pemRepresentation, privatePath: privatePath, key.pemRepresentation)
            return Written(privateKeyFile: privatePath, verificationKeyFile: publicPath)
        case .es256:
            let key = P256.Signing.PrivateKey()
            try write(publicPath: publicPath, key.publicKey.pemRepresentation, privatePath: privatePath, key.pemRepresentation)
            return Written(privateKeyFile: privatePath, verificationKeyFile: publicPath)
        case .hs256:
            let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
            let text = secret.base64EncodedString()
                .replacing("+", with: "-").replacing("/", with: "_")
                .replacing("=", with: "")
            try writeNew(privatePath, text + "\n", mode: 0o600)
            return Written(privateKeyFile: privatePath, verificationKeyFile: privatePath)
        }
    }

    private static func write(publicPath: String, _ publicPEM: String, privatePath: String, _ privatePEM: String) throws(MCPJailError) {
        if FileManager.default.fileExists(atPath: publicPath) {
            throw MCPJailError(.io, "\(publicPath) already exists; not overwriting a key")
        }
        try writeNew(privatePath, privatePEM + "\n", mode: 0o600)
        do {
            try writeNew(publicPath, publicPEM + "\n", mode: 0o644)
        } catch {
            unlink(privatePath)
            throw error
        }
    }

    /// Creates `path` (it must not exist) with exactly `mode`, whatever the umask.
    private static func writeNew(_ path: String, _ text: String, mode: mode_t) throws(MCPJailError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists; not overwriting a key" : String(cString: strerror(errno))
            throw MCPJailError(.io, "cannot create \(path): \(reason)")
        }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw MCPJailError(.io, "cannot set the mode of \(path): \(reason)")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                unlink(path)
                throw MCPJailError(.io, "cannot write \(path): \(reason)")
            }
            written += count
        }
    }
}
