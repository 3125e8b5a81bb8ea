import Foundation
import Testing

@testable import MCPJailCore

/// The message of the error `body` throws, or nil.
private func loadError(_ body: () throws -> Void) -> MCPJailError? {
    do {
        try body()
        return nil
    } catch {
        return error as? MCPJailError
    }
}

@Suite("Auth key files")
struct AuthKeyTests {
    @Test("keygen writes a private key 0600 and a public key; kid is the file name")
    func keygen() throws {
        let dir = try AuthKeyDir()
        for algorithm in [TokenAlgorithm.eddsa, .es256] {
            let written = try dir.generate(algorithm, "key-\(algorithm.rawValue)")
            #expect(written.privateKeyFile == dir.path + "/key-\(algorithm.rawValue).key")
            #expect(written.verificationKeyFile == dir.path + "/key-\(algorithm.rawValue).pub")
            let mode = try FileManager.default.attributesOfItem(atPath: written.privateKeyFile)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try String(contentsOfFile: written.privateKeyFile, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(try String(contentsOfFile: written.verificationKeyFile, encoding: .utf8).hasPrefix("-----BEGIN PUBLIC KEY-----"))
            let key = try VerificationKey.load(file: written.verificationKeyFile)
            #expect(key.algorithm == algorithm)
            #expect(key.keyID == "key-\(algorithm.rawValue)")
            #expect(try TokenIssuer(keyFile: written.privateKeyFile).algorithm == algorithm)
        }
        let secret = try dir.generate(.hs256, "shared")
        #expect(secret.verificationKeyFile == secret.privateKeyFile)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/shared.pub"))
        let text = try String(contentsOfFile: secret.privateKeyFile, encoding: .utf8)
        #expect(text.count == 44 && text.hasSuffix("\n"))
        #expect(try VerificationKey.load(file: secret.privateKeyFile).algorithm == .hs256)
        #expect(try TokenIssuer(keyFile: secret.privateKeyFile).algorithm == .hs256)
    }

    @Test("keygen never overwrites")
    func noOverwrite() throws {
        let dir = try AuthKeyDir()
        try dir.generate(.eddsa, "k")
        let before = try String(contentsOfFile: dir.path + "/k.key", encoding: .utf8)
        for algorithm in TokenAlgorithm.allCases {
            #expect(throws: MCPJailError.self) { try dir.generate(algorithm, "k") }
        }
        #expect(try String(contentsOfFile: dir.path + "/k.key", encoding: .utf8) == before)
        try dir.write("only.pub", "x")
        #expect(throws: MCPJailError.self) { try dir.generate(.es256, "only") }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/only.key"))
    }

    @Test("the verifier refuses a private key, naming the file")
    func privateKeyToVerifier() throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let error = try #require(loadError { _ = try VerificationKey.load(file: key.privateKeyFile) })
        #expect(error.code == .authKey)
        #expect(error.message.contains(key.privateKeyFile))
        #expect(error.message.contains("private key"))
        #expect(error.hint?.contains(".pub") == true)
    }

    @Test("the issuer refuses a public key, naming the file")
    func publicKeyToIssuer() throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.es256, "k")
        let error = try #require(loadError { _ = try TokenIssuer(keyFile: key.verificationKeyFile) })
        #expect(error.message.contains(key.verificationKeyFile))
        #expect(error.message.contains("public key"))
    }

    @Test("missing, empty, oversized and foreign files give clear errors")
    func badFiles() throws {
        let dir = try AuthKeyDir()
        let missing = dir.path + "/nope.pub"
        #expect(loadError { _ = try VerificationKey.load(file: missing) }?.message == "cannot read key file \(missing): no such file")
        let empty = try dir.write("empty.pub", "")
        #expect(loadError { _ = try VerificationKey.load(file: empty) }?.message == "key file \(empty) is empty")
        let big = try dir.write("big.key", String(repeating: "a", count: 70_000))
        #expect(loadError { _ = try VerificationKey.load(file: big) }?.message.contains("larger than 64 KiB") == true)
        let certificate = try dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", mode: 0o644)
        #expect(loadError { _ = try VerificationKey.load(file: certificate) }?.message.contains("'CERTIFICATE'") == true)
        let garbage = try dir.write("bad.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", mode: 0o644)
        #expect(loadError { _ = try VerificationKey.load(file: garbage) }?.message.contains("neither Ed25519") == true)
    }

    @Test("an HS256 secret: whitespace stripped, at least 32 bytes, not readable by others")
    func secrets() throws {
        let dir = try AuthKeyDir()
        let secret = String(repeating: "s", count: 32)
        let padded = try dir.write("padded.key", "\n  \(secret) \n\n")
        let key = try VerificationKey.load(file: padded)
        #expect(key.algorithm == .hs256)
        #expect(key.keyID == "padded")
        let short = try dir.write("short.key", String(repeating: "s", count: 31) + "\n")
        let shortError = try #require(loadError { _ = try VerificationKey.load(file: short) })
        #expect(shortError.message.contains("31 bytes; at least 32"))
        let open = try dir.write("open.key", secret, mode: 0o644)
        let openError = try #require(loadError { _ = try VerificationKey.load(file: open) })
        #expect(openError.message.contains("can be read by others"))
        #expect(loadError { _ = try TokenIssuer(keyFile: open) } != nil)
        #expect(loadError { _ = try VerificationKey(hs256Secret: Array("short".utf8)) } != nil)
    }

    @Test("PEM text keys and kids")
    func pemText() throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.es256, "ops")
        let pem = try String(contentsOfFile: key.verificationKeyFile, encoding: .utf8)
        let loaded = try VerificationKey(pem: pem, keyID: "x")
        #expect(loaded.algorithm == .es256 && loaded.keyID == "x")
        #expect(KeyFile.keyID(forPath: "/etc/keys/ci.pub") == "ci")
        #expect(KeyFile.keyID(forPath: "ci") == "ci")
        #expect(KeyFile.keyID(forPath: "a.b.pub") == "a.b")
    }

    @Test("the verifier's configuration is checked")
    func configuration() throws {
        let dir = try AuthKeyDir()
        let first = try dir.generate(.eddsa, "same")
        try FileManager.default.createDirectory(atPath: dir.path + "/other", withIntermediateDirectories: true)
        let second = try TokenKeyGenerator.generate(.es256, prefix: dir.path + "/other/same")
        let duplicate = try #require(loadError { _ = try dir.verifier([first.verificationKeyFile, second.verificationKeyFile]) })
        #expect(duplicate.message.contains("kid 'same'"))
        #expect(loadError { _ = try dir.verifier([]) }?.message.contains("at least one key file") == true)
        #expect(loadError { _ = try dir.verifier([first.verificationKeyFile], issuer: "") } != nil)
        #expect(loadError { _ = try dir.verifier([first.verificationKeyFile], audience: "") } != nil)
        let key = try VerificationKey.load(file: first.verificationKeyFile)
        #expect(loadError { _ = try TokenVerifier(keys: [key], clockSkew: .seconds(-1)) } != nil)
        let verifier = try TokenVerifier(keys: [key])
        #expect(verifier.issuer == "mcpjail" && verifier.audience == "mcpjail" && verifier.clockSkew == .seconds(60))
    }

    @Test("token requests are checked before signing")
    func requests() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let issuer = try TokenIssuer(keyFile: key.privateKeyFile)
        let bad = [
            TokenRequest(subject: ""),
            TokenRequest(subject: "a", scopes: ["two words"]),
            TokenRequest(subject: "a", timeToLive: .zero),
            TokenRequest(subject: "a", audience: ""),
            TokenRequest(subject: "a", actors: [""]),
            TokenRequest(subject: "a", keyID: ""),
        ]
        for request in bad {
            await #expect(throws: MCPJailError.self) { _ = try await issuer.issue(request) }
        }
        #expect(try TokenRequest.parseTimeToLive("15m") == .seconds(900))
        #expect(try TokenRequest.parseTimeToLive("1h") == .seconds(3600))
        #expect(try TokenRequest.parseTimeToLive("30s") == .seconds(30))
        for text in ["", "15", "0s", "1d", "-5m", "500ms", "400d"] {
            #expect(throws: MCPJailError.self, "\(text)") { _ = try TokenRequest.parseTimeToLive(text) }
        }
    }
}
