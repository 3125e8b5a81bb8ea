import ArgumentParser
import Foundation
import MCPJailCore
import Testing

@testable import MCPJailCommands

/// A temporary directory for key files, removed on deinit.
final class TokenCommandSandbox {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "mcpjail-token-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite("mcpjail token keygen and issue")
struct AuthTokenCommandTests {
    @Test("keygen then issue round-trips through the verifier", arguments: ["EdDSA", "es256", "HS256"])
    func roundTrip(alg: String) async throws {
        let sandbox = try TokenCommandSandbox()
        let prefix = sandbox.root + "/ops"
        let keygen = try Token.Keygen.parse(["--alg", alg, "--out", prefix])
        let report = try keygen.output()
        #expect(report.hasPrefix("wrote \(prefix).key"))
        let verificationFile = alg == "HS256" ? prefix + ".key" : prefix + ".pub"
        #expect(FileManager.default.fileExists(atPath: verificationFile))

        let issue = try Token.Issue.parse([
            "--key", prefix + ".key", "--sub", "alice", "--scope", "tools:read tools:call", "--scope", "admin",
            "--ttl", "1h", "--aud", "time", "--iss", "corp", "--act", "agent", "--act", "ide", "--kid", "ops",
        ])
        let now = Date()
        let token = try await issue.token(now: now)
        #expect(token.split(separator: ".").count == 3)

        let verifier = try TokenVerifier(
            configuration: AuthConfiguration(keyFiles: [verificationFile], issuer: "corp", audience: "time"))
        let principal = try verifier.verify(token, now: now).get()
        #expect(principal.subject == "alice")
        #expect(principal.actors == ["agent", "ide"])
        #expect(principal.scopes == ["tools:read", "tools:call", "admin"])
        #expect(abs(principal.expiresAt.timeIntervalSince(now) - 3600) < 1.01)
        #expect(throws: AuthFailure.self) { try verifier.verify(token, now: now.addingTimeInterval(3600 + 61)).get() }
    }

    @Test("issue defaults: 15 minutes, iss and aud mcpjail, no kid")
    func defaults() async throws {
        let sandbox = try TokenCommandSandbox()
        let prefix = sandbox.root + "/k"
        _ = try Token.Keygen.parse(["--alg", "EdDSA", "--out", prefix]).output()
        let issue = try Token.Issue.parse(["--key", prefix + ".key", "--sub", "bob"])
        let now = Date()
        let token = try await issue.token(now: now)
        var base64 = String(token.split(separator: ".")[0])
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        let header = try #require(Data(base64Encoded: base64))
        #expect(String(decoding: header, as: UTF8.self).contains("\"alg\":\"EdDSA\""))
        #expect(!String(decoding: header, as: UTF8.self).contains("kid"))
        let verifier = try TokenVerifier(configuration: AuthConfiguration(keyFiles: [prefix + ".pub"]))
        let principal = try verifier.verify(token, now: now).get()
        #expect(principal.scopes.isEmpty && principal.actors.isEmpty)
        #expect(abs(principal.expiresAt.timeIntervalSince(now) - 900) < 1.01)
    }

    @Test("bad options are reported")
    func errors() async throws {
        let sandbox = try TokenCommandSandbox()
        #expect(throws: (any Error).self) { try Token.Keygen.parse(["--alg", "RS256", "--out", sandbox.root + "/x"]) }
        #expect(throws: (any Error).self) { try Token.Keygen.parse(["--alg", "EdDSA", "--out", sandbox.root + "/"]) }
        let prefix = sandbox.root + "/k"
        _ = try Token.Keygen.parse(["--alg", "ES256", "--out", prefix]).output()
        #expect(throws: MCPJailError.self) { try Token.Keygen.parse(["--alg", "ES256", "--out", prefix]).output() }
        let badTTL = try Token.Issue.parse(["--key", prefix + ".key", "--sub", "a", "--ttl", "forever"])
        await #expect(throws: MCPJailError.self) { _ = try await badTTL.token(now: Date()) }
        let publicKey = try Token.Issue.parse(["--key", prefix + ".pub", "--sub", "a"])
        do {
            _ = try await publicKey.token(now: Date())
            Issue.record("signed with a public key")
        } catch {
            #expect(error.description.contains("\(prefix).pub holds a public key"))
        }
    }

    @Test("help: token, issue and keygen explain themselves with examples")
    func help() {
        let token = MCPJail.helpMessage(for: Token.self)
        #expect(token.contains("USAGE: mcpjail token <subcommand>"))
        #expect(token.contains("Examples:"))
        #expect(token.contains("issue") && token.contains("keygen"))
        let issue = MCPJail.helpMessage(for: Token.Issue.self)
        #expect(issue.contains("USAGE: mcpjail token issue --key <file> --sub <sub>"))
        #expect(issue.contains("Examples:"))
        #expect(issue.contains("mcpjail token issue --key ci.key --sub alice"))
        for option in ["--scope <scopes>", "--ttl <duration>", "--aud <aud>", "--iss <iss>", "--act <actor>", "--kid <kid>"] {
            #expect(issue.contains(option), "\(option)")
        }
        let keygen = MCPJail.helpMessage(for: Token.Keygen.self)
        #expect(keygen.contains("USAGE: mcpjail token keygen --alg <alg> --out <prefix>"))
        #expect(keygen.contains("Examples:"))
        #expect(keygen.contains("mcpjail token keygen --alg EdDSA --out ci"))
    }
}
