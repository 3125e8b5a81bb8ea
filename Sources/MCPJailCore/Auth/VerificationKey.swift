import Crypto
import FoundationEssentials
import Glibc
import JWTKit

/// One key a ``TokenVerifier`` accepts signatures from: its algorithm, its `kid`, and
/// where it came from (for messages).
///
/// The signature check is jwt-kit's ``JWTAlgorithm/verify(_:signs:)`` on a conformance
/// backed by swift-crypto's own key type. jwt-kit's ready-made signers are internal and
/// reachable only through the `JWTKeyCollection` actor (async), while the relay checks
/// tokens on plain threads; these conformances keep the check synchronous and lock-free.
/// The tests check them against tokens signed by jwt-kit's own signers.
public struct VerificationKey: Sendable {
    public let algorithm: TokenAlgorithm
    /// The `kid` a token may name to pick this key.
    public let keyID: String?
    /// Where the key came from: a file path, or a short description.
    public let origin: String
    let jwtAlgorithm: any JWTAlgorithm

    init(algorithm: TokenAlgorithm, keyID: String?, origin: String, jwtAlgorithm: any JWTAlgorithm) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.origin = origin
        self.jwtAlgorithm = jwtAlgorithm
    }

    /// Loads a key file (formats: ``AuthConfiguration``). The `kid` is `keyID`, else the
    /// file name without its last extension.
    public static func load(file path: String, keyID: String? = nil) throws(MCPJailError) -> VerificationKey {
        let bytes = try KeyFile.read(path)
        let keyID = keyID ?? KeyFile.keyID(forPath: path)
        guard let labels = KeyFile.pemLabels(bytes) else {
            let secret = try KeyFile.secret(bytes, path: path)
            return VerificationKey(algorithm: .hs256, keyID: keyID, origin: path, jwtAlgorithm: HS256Algorithm(secret: secret))
        }
        return try publicKey(pem: String(decoding: bytes, as: UTF8.self), labels: labels, keyID: keyID, origin: path)
    }

    /// A key from PEM text (a `PUBLIC KEY`, Ed25519 or EC P-256).
    public init(pem: String, keyID: String? = nil) throws(MCPJailError) {
        self = try Self.publicKey(pem: pem, labels: KeyFile.pemLabels(Array(pem.utf8)) ?? [], keyID: keyID, origin: "PEM text")
    }

    /// An HS256 shared secret (at least 32 bytes).
    public init(hs256Secret secret: [UInt8], keyID: String? = nil) throws(MCPJailError) {
        guard secret.count >= KeyFile.minimumSecretBytes else {
            throw MCPJailError(.authKey, "an HS256 secret needs at least \(KeyFile.minimumSecretBytes) bytes, not \(secret.count)")
        }
        self.init(algorithm: .hs256, keyID: keyID, origin: "HS256 secret", jwtAlgorithm: HS256Algorithm(secret: secret))
    }

    private static func publicKey(pem: String, labels: [String], keyID: String?, origin: String) throws(MCPJailError) -> VerificationKey {
        guard labels == ["PUBLIC KEY"] else {
            if labels.contains(where: { $0.hasSuffix("PRIVATE KEY") }) {
                throw MCPJailError(
                    .authKey, "\(origin) holds a private key; the verifier takes the public key",
                    hint: "give the .pub file that `mcpjail token keygen` wrote beside it")
            }
            let found = labels.isEmpty ? "no PEM block" : labels.map { "'\($0)'" }.joined(separator: ", ")
            throw MCPJailError(.authKey, "\(origin): expected one PEM 'PUBLIC KEY' block, found \(found)")
        }
        if let key = try? Curve25519.Signing.PublicKey(pemRepresentation: pem) {
            return VerificationKey(algorithm: .eddsa, keyID: keyID, origin: origin, jwtAlgorithm: Ed25519VerifyingAlgorithm(key: key))
        }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            return VerificationKey(algorithm: .es256, keyID: keyID, origin: origin, jwtAlgorithm: ES256VerifyingAlgorithm(key: key))
        }
        throw MCPJailError(
            .authKey, "\(origin): the public key is neither Ed25519 (EdDSA) nor EC P-256 (ES256), the two supported kinds")
    }
}

/// Verify-only keys cannot sign; this is what they throw if asked to.
struct VerifyOnlyKeyError: Error {}

/// `EdDSA` with an Ed25519 public key: swift-crypto's `isValidSignature`.
struct Ed25519VerifyingAlgorithm: JWTAlgorithm {
    let key: Curve25519.Signing.PublicKey
    var name: String { TokenAlgorithm.eddsa.rawValue }

    func sign(_ plaintext: some DataProtocol) throws -> [UInt8] { throw VerifyOnlyKeyError() }

    func verify(_ signature: some DataProtocol, signs plaintext: some DataProtocol) throws -> Bool {
        key.isValidSignature(signature, for: plaintext)
    }
}

/// `ES256`: ECDSA on P-256 over SHA-256, the signature as the 64-byte `r || s` (RFC 7518 §3.4).
struct ES256VerifyingAlgorithm: JWTAlgorithm {
    let key: P256.Signing.PublicKey
    var name: String { TokenAlgorithm.es256.rawValue }

    func sign(_ plaintext: some DataProtocol) throws -> [UInt8] { throw VerifyOnlyKeyError() }

    func verify(_ signature: some DataProtocol, signs plaintext: some DataProtocol) throws -> Bool {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
        return key.isValidSignature(signature, for: SHA256.hash(data: plaintext))
    }
}

/// `HS256`: HMAC-SHA-256, compared in constant time by swift-crypto.
struct HS256Algorithm: JWTAlgorithm {
    let key: SymmetricKey
    var name: String { TokenAlgorithm.hs256.rawValue }

    init(secret: [UInt8]) { key = SymmetricKey(data: secret) }

    func sign(_ plaintext: some DataProtocol) throws -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: plaintext, using: key))
    }

    func verify(_ signature: some DataProtocol, signs plaintext: some DataProtocol) throws -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(Array(signature), authenticating: plaintext, using: key)
    }
}
