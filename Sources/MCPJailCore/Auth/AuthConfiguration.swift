import FoundationEssentials
import Glibc

/// What per-call authentication checks, as plain values (a profile's `[auth]` table fills
/// them; loading the key files is ``TokenVerifier/init(configuration:)``'s job).
///
/// Key files, by content:
/// - a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding an Ed25519 key verifies `EdDSA`
///   tokens; one holding an EC P-256 key verifies `ES256` tokens;
/// - a file with no `-----BEGIN ` line anywhere is an `HS256` shared secret: its bytes with
///   surrounding whitespace stripped, at least 32 of them, in a file that others cannot read
///   (a public key that is not PEM is never mistaken for a secret that anyone could sign with);
/// - a PEM private key, certificate, or any other label is refused with the reason.
///
/// Each key's `kid` is its file name without the last extension (`keys/ci.pub` is `ci`):
/// a token whose header names a `kid` is checked against that key only.
public struct AuthConfiguration: Sendable, Equatable {
    /// The `iss` that ``TokenIssuer`` writes and the verifier expects when none is set.
    public static let defaultIssuer = "mcpjail"
    /// The `aud` that ``TokenIssuer`` writes and the verifier expects when none is set.
    public static let defaultAudience = "mcpjail"
    /// How far apart the issuer's and this host's clocks may be.
    public static let defaultClockSkew: Duration = .seconds(60)

    /// Paths of the verification keys (see the type's documentation for the formats).
    public var keyFiles: [String]
    /// The exact `iss` a token must carry.
    public var issuer: String
    /// A value the token's `aud` (a string or an array) must contain.
    public var audience: String
    /// Leeway for `exp`, `nbf` and `iat`.
    public var clockSkew: Duration

    public init(
        keyFiles: [String],
        issuer: String = AuthConfiguration.defaultIssuer,
        audience: String = AuthConfiguration.defaultAudience,
        clockSkew: Duration = AuthConfiguration.defaultClockSkew
    ) {
        self.keyFiles = keyFiles
        self.issuer = issuer
        self.audience = audience
        self.clockSkew = clockSkew
    }
}

extension MCPJailError.Code {
    /// A key file (verification or signing) that cannot be used, or an auth setting that is not valid.
    public static let authKey = MCPJailError.Code(rawValue: "auth_key")
}

/// The JWS algorithms mcpjail accepts. Anything else, `none` first of all, is refused.
public enum TokenAlgorithm: String, Sendable, CaseIterable, Hashable {
    case eddsa = "EdDSA"
    case es256 = "ES256"
    case hs256 = "HS256"
}

/// Reading key files: shared by the verifier's and the issuer's loaders.
enum KeyFile {
    /// Key files are small; anything larger is not one.
    static let maxBytes = 64 * 1024
    /// The shortest HS256 secret accepted: as long as the SHA-256 output (RFC 7518 §3.2).
    static let minimumSecretBytes = 32

    /// The file's bytes, or an error naming the file and why.
    static func read(_ path: String) throws(MCPJailError) -> [UInt8] {
        guard let data = FileContents.bytes(path, limit: maxBytes + 1) else {
            let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw MCPJailError(.authKey, "cannot read key file \(path): \(reason)")
        }
        guard data.count <= maxBytes else {
            throw MCPJailError(.authKey, "key file \(path) is larger than \(maxBytes / 1024) KiB: not a key")
        }
        guard !data.isEmpty else { throw MCPJailError(.authKey, "key file \(path) is empty") }
        return data
    }

    /// The `-----BEGIN LABEL-----` labels in the text, or nil when it is not PEM at all.
    static func pemLabels(_ bytes: [UInt8]) -> [String]? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("-----BEGIN ") else { return nil }
        var labels: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingWhitespace()
            if trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----") {
                labels.append(String(trimmed.dropFirst(11).dropLast(5)))
            }
        }
        return labels
    }

    /// An HS256 secret: the bytes without surrounding ASCII whitespace, long enough, and in
    /// a file that others cannot read.
    static func secret(_ bytes: [UInt8], path: String) throws(MCPJailError) -> [UInt8] {
        var attributes = stat()
        if stat(path, &attributes) == 0, attributes.st_mode & 0o007 != 0 {
            throw MCPJailError(
                .authKey, "HS256 secret file \(path) can be read by others",
                hint: "chmod 600 \(path); a public key must be a PEM 'PUBLIC KEY' file")
        }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.endIndex
        let end = bytes.lastIndex { !isSpace($0) }.map { $0 + 1 } ?? start
        let secret = Array(bytes[start..<max(start, end)])
        guard secret.count >= minimumSecretBytes else {
            throw MCPJailError(
                .authKey,
                "HS256 secret in \(path) is \(secret.count) bytes; at least \(minimumSecretBytes) are needed",
                hint: "mcpjail token keygen --alg HS256 --out PREFIX writes one")
        }
        return secret
    }

    /// The default `kid` of a key file: its name without the last extension.
    static func keyID(forPath path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}
