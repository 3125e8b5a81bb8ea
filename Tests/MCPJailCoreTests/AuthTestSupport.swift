import Foundation
import JWTKit
import Testing

@testable import MCPJailCore

/// A temporary directory of key files, removed on deinit.
final class AuthKeyDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "mcpjail-auth-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// `name.key` and, for EdDSA and ES256, `name.pub`.
    @discardableResult
    func generate(_ algorithm: TokenAlgorithm, _ name: String) throws -> TokenKeyGenerator.Written {
        try TokenKeyGenerator.generate(algorithm, prefix: path + "/" + name)
    }

    /// Writes `text` to `name` with `mode`; returns the path.
    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
        return file
    }

    func verifier(_ keyFiles: [String], issuer: String = "mcpjail", audience: String = "mcpjail", cacheCapacity: Int = 256)
        throws -> TokenVerifier
    {
        try TokenVerifier(
            configuration: AuthConfiguration(keyFiles: keyFiles, issuer: issuer, audience: audience),
            cacheCapacity: cacheCapacity)
    }
}

/// Any JSON value, for hand-made headers and claims.
enum AnyJSON: Codable, Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    case string(String), number(Double), bool(Bool), array([AnyJSON]), object([String: AnyJSON]), null

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(Double(value)) }
    init(floatLiteral value: Double) { self = .number(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: AnyJSON...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, AnyJSON)...) { self = .object(Dictionary(uniqueKeysWithValues: elements)) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([AnyJSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: AnyJSON].self)) }
    }
}

/// Arbitrary claims as a jwt-kit payload.
struct RawClaims: JWTPayload {
    var fields: [String: AnyJSON]
    init(_ fields: [String: AnyJSON]) { self.fields = fields }
    init(from decoder: any Decoder) throws { fields = try [String: AnyJSON](from: decoder) }
    func encode(to encoder: any Encoder) throws { try fields.encode(to: encoder) }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A fixed "now" for the tests: 2027-01-15.
let authNow = Date(timeIntervalSince1970: 1_800_000_000)

/// Claims that a default verifier accepts at `authNow`, with `changes` applied (`.null`
/// removes a claim).
func authClaims(_ changes: [String: AnyJSON] = [:]) -> [String: AnyJSON] {
    let now = authNow.timeIntervalSince1970
    var claims: [String: AnyJSON] = [
        "iss": "mcpjail", "aud": "mcpjail", "sub": "alice",
        "iat": .number(now), "exp": .number(now + 900),
    ]
    for (key, value) in changes {
        if case .null = value { claims.removeValue(forKey: key) } else { claims[key] = value }
    }
    return claims
}

/// Signs claims with jwt-kit's own signer (not mcpjail's code) for a private key or secret file.
func jwtKitSign(_ claims: [String: AnyJSON], keyFile: String, header: JWTHeader = JWTHeader()) async throws -> String {
    let keys = JWTKeyCollection()
    let text = try String(contentsOfFile: keyFile, encoding: .utf8)
    if text.contains("-----BEGIN") {
        if let key = try? EdDSA.PrivateKey(pem: text) {
            await keys.add(eddsa: key)
        } else {
            await keys.add(ecdsa: try ES256PrivateKey(pem: text))
        }
    } else {
        await keys.add(hmac: HMACKey(from: text.trimmingCharacters(in: .whitespacesAndNewlines)), digestAlgorithm: .sha256)
    }
    return try await keys.sign(RawClaims(claims), header: header)
}

/// Signs with an HMAC-SHA-256 secret given as bytes (for algorithm-confusion attacks).
func jwtKitSignHS256(_ claims: [String: AnyJSON], secret: [UInt8], header: JWTHeader = JWTHeader()) async throws -> String {
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    return try await keys.sign(RawClaims(claims), header: header)
}

func base64URL(_ bytes: some Sequence<UInt8>) -> String {
    Data(bytes).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

func base64URLDecode(_ text: some StringProtocol) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    return Data(base64Encoded: base64)
}

/// `header.claims.signature` from JSON values, the signature given as text.
func handMadeToken(header: [String: AnyJSON], claims: [String: AnyJSON], signature: String = "") throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return base64URL(try encoder.encode(AnyJSON.object(header))) + "." + base64URL(try encoder.encode(AnyJSON.object(claims)))
        + "." + signature
}

/// The token's parts, split at the periods.
func tokenParts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

/// The kind of a refusal, or nil when the token was accepted.
func refusal(_ result: Result<Principal, AuthFailure>) -> AuthFailure.Kind? {
    if case .failure(let failure) = result { return failure.kind }
    return nil
}
