import Foundation
import JWTKit
import Synchronization
import Testing

@testable import MCPJailCore

@Suite("Token verifier: valid tokens")
struct AuthVerifierAcceptTests {
    @Test("tokens signed by jwt-kit's own signers are accepted", arguments: TokenAlgorithm.allCases)
    func accepted(algorithm: TokenAlgorithm) async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(algorithm, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(["scope": "tools:read tools:call"]), keyFile: key.privateKeyFile)
        let principal = try verifier.verify(token, now: authNow).get()
        #expect(principal.subject == "alice")
        #expect(principal.actors == [])
        #expect(principal.scopes == ["tools:read", "tools:call"])
        #expect(principal.expiresAt == authNow.addingTimeInterval(900))
        #expect(principal.has(scope: "tools:read"))
        #expect(!principal.has(scope: "tools"))
    }

    @Test("tokens minted by TokenIssuer are accepted", arguments: TokenAlgorithm.allCases)
    func issued(algorithm: TokenAlgorithm) async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(algorithm, "ops")
        let verifier = try dir.verifier([key.verificationKeyFile], issuer: "corp", audience: "time")
        let request = TokenRequest(
            subject: "bob", scopes: ["a", "b"], timeToLive: .seconds(3600), audience: "time", issuer: "corp",
            actors: ["agent", "ide"], keyID: "ops")
        let token = try await TokenIssuer(keyFile: key.privateKeyFile).issue(request, now: authNow)
        let principal = try verifier.verify(token, now: authNow.addingTimeInterval(10)).get()
        #expect(principal == Principal(subject: "bob", actors: ["agent", "ide"], scopes: ["a", "b"], expiresAt: authNow.addingTimeInterval(3600)))
    }

    @Test("a Bearer prefix and surrounding whitespace are accepted")
    func bearer() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
        for text in ["Bearer \(token)", "bearer \(token)", "  BEARER   \(token)\n", "\t\(token) "] {
            #expect(refusal(verifier.verify(text, now: authNow)) == nil, "refused: \(text.prefix(12))")
        }
    }

    @Test("aud may be an array containing the audience")
    func audienceArray() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.es256, "k")
        let verifier = try dir.verifier([key.verificationKeyFile], audience: "time")
        let good = try await jwtKitSign(authClaims(["aud": ["git", "time"]]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(good, now: authNow)) == nil)
        let bad = try await jwtKitSign(authClaims(["aud": ["git", "fs"]]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(bad, now: authNow)) == .wrongAudience)
    }

    @Test("the act chain is read outermost first")
    func actChain() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let claims = authClaims(["act": ["sub": "agent", "iss": "x", "act": ["sub": "ide", "act": ["sub": "laptop"]]]])
        let token = try await jwtKitSign(claims, keyFile: key.privateKeyFile)
        #expect(try verifier.verify(token, now: authNow).get().actors == ["agent", "ide", "laptop"])
    }

    @Test("an act without sub, or nested too deep, is malformed")
    func badActChain() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let noSub = try await jwtKitSign(authClaims(["act": ["sub": "agent", "act": ["iss": "x"]]]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(noSub, now: authNow)) == .malformed)
        var deep: AnyJSON = ["sub": "a0"]
        for level in 1...ActorClaim.maxDepth { deep = ["sub": .string("a\(level)"), "act": deep] }
        let tooDeep = try await jwtKitSign(authClaims(["act": deep]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(tooDeep, now: authNow)) == .malformed)
    }

    @Test("scope (string) and scp (array or string) are merged")
    func scopes() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.hs256, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let both = try await jwtKitSign(authClaims(["scope": " a  b ", "scp": ["c", "a"]]), keyFile: key.privateKeyFile)
        #expect(try verifier.verify(both, now: authNow).get().scopes == ["a", "b", "c"])
        let scpString = try await jwtKitSign(authClaims(["scp": "x y"]), keyFile: key.privateKeyFile)
        #expect(try verifier.verify(scpString, now: authNow).get().scopes == ["x", "y"])
        let none = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
        #expect(try verifier.verify(none, now: authNow).get().scopes.isEmpty)
        let notStrings = try await jwtKitSign(authClaims(["scp": [1, 2]]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(notStrings, now: authNow)) == .malformed)
    }

    @Test("with several keys of one algorithm and no kid, each key is tried")
    func severalKeys() async throws {
        let dir = try AuthKeyDir()
        let first = try dir.generate(.eddsa, "one")
        let second = try dir.generate(.eddsa, "two")
        let third = try dir.generate(.es256, "three")
        let verifier = try dir.verifier([first.verificationKeyFile, second.verificationKeyFile, third.verificationKeyFile])
        #expect(verifier.algorithms == [.eddsa, .es256])
        for key in [first, second, third] {
            let token = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
            #expect(refusal(verifier.verify(token, now: authNow)) == nil)
        }
    }
}

@Suite("Token verifier: refusals")
struct AuthVerifierRefusalTests {
    @Test("a forged signature or a changed payload is refused", arguments: TokenAlgorithm.allCases)
    func forged(algorithm: TokenAlgorithm) async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(algorithm, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
        var parts = tokenParts(token)

        var signature = [UInt8](try #require(base64URLDecode(parts[2])))
        signature[signature.count / 2] ^= 0x01
        let flipped = parts[0] + "." + parts[1] + "." + base64URL(signature)
        #expect(refusal(verifier.verify(flipped, now: authNow)) == .badSignature)

        let other = try await jwtKitSign(authClaims(["sub": "mallory"]), keyFile: key.privateKeyFile)
        parts[1] = tokenParts(other)[1]  // mallory's claims, alice's signature
        #expect(refusal(verifier.verify(parts.joined(separator: "."), now: authNow)) == .badSignature)

        let empty = tokenParts(token)[0] + "." + tokenParts(token)[1] + "."
        #expect(refusal(verifier.verify(empty, now: authNow)) == .badSignature)
    }

    @Test("a token signed by another key of the same algorithm is refused", arguments: TokenAlgorithm.allCases)
    func wrongKey(algorithm: TokenAlgorithm) async throws {
        let dir = try AuthKeyDir()
        let configured = try dir.generate(algorithm, "configured")
        let other = try dir.generate(algorithm, "other")
        let verifier = try dir.verifier([configured.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(), keyFile: other.privateKeyFile)
        #expect(refusal(verifier.verify(token, now: authNow)) == .badSignature)
    }

    @Test("alg none is refused, whatever its spelling")
    func algNone() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        for alg in ["none", "None", "NONE"] {
            let token = try handMadeToken(header: ["alg": .string(alg), "typ": "JWT"], claims: authClaims())
            let result = verifier.verify(token, now: authNow)
            #expect(refusal(result) == .unsupportedAlgorithm)
            if case .failure(let failure) = result { #expect(failure.message.contains("alg none")) }
            // With a signature copied from a valid token, too.
            let valid = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
            #expect(refusal(verifier.verify(token + tokenParts(valid)[2], now: authNow)) == .unsupportedAlgorithm)
        }
        let noAlg = try handMadeToken(header: ["typ": "JWT"], claims: authClaims(), signature: "AAAA")
        #expect(refusal(verifier.verify(noAlg, now: authNow)) == .malformed)
    }

    @Test("algorithm confusion: HS256 signed with the public key's bytes is refused when only EdDSA is configured")
    func algorithmConfusion() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let pem = try String(contentsOfFile: key.verificationKeyFile, encoding: .utf8)
        let publicKey = try EdDSA.PublicKey(pem: pem)
        for secret in [Array(pem.utf8), Array(pem.trimmingCharacters(in: .whitespacesAndNewlines).utf8), Array(publicKey.rawRepresentation)] {
            let token = try await jwtKitSignHS256(authClaims(), secret: secret)
            #expect(refusal(verifier.verify(token, now: authNow)) == .unsupportedAlgorithm)
            let withKid = try await jwtKitSignHS256(authClaims(), secret: secret, header: ["kid": "k"])
            #expect(refusal(verifier.verify(withKid, now: authNow)) == .unsupportedAlgorithm)
        }
        // A header that claims ES256 or RS256 for an EdDSA signature.
        for alg in ["ES256", "RS256", "HS512", "Ed25519"] {
            let valid = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
            let relabelled = try handMadeToken(header: ["alg": .string(alg)], claims: authClaims(), signature: tokenParts(valid)[2])
            #expect(refusal(verifier.verify(relabelled, now: authNow)) == .unsupportedAlgorithm)
        }
    }

    @Test("a public key given as a non-PEM file is not taken for an HS256 secret anyone could use")
    func publicKeyAsSecret() throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let pem = try String(contentsOfFile: key.verificationKeyFile, encoding: .utf8)
        let base64Only = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined() + "xxxxxxxxxxxx"
        let file = try dir.write("raw.pub", base64Only, mode: 0o644)
        #expect(throws: MCPJailError.self) { try dir.verifier([file]) }
    }

    @Test("expired tokens are refused; the clock skew is allowed")
    func expired() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(["exp": .number(authNow.timeIntervalSince1970 - 61)]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(token, now: authNow)) == .expired)
        let withinSkew = try await jwtKitSign(authClaims(["exp": .number(authNow.timeIntervalSince1970 - 30)]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(withinSkew, now: authNow)) == nil)
    }

    @Test("a token that expires mid-session stops the next call, though its signature is cached")
    func expiresMidSession() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)  // exp = now + 900
        #expect(refusal(verifier.verify(token, now: authNow)) == nil)
        #expect(verifier.cachedTokenCount == 1)
        #expect(refusal(verifier.verify(token, now: authNow.addingTimeInterval(900 + 59))) == nil)
        #expect(refusal(verifier.verify(token, now: authNow.addingTimeInterval(900 + 60))) == .expired)
        #expect(refusal(verifier.verify(token, now: authNow.addingTimeInterval(100_000))) == .expired)
        #expect(verifier.cachedTokenCount == 1)
    }

    @Test("nbf in the future and iat in the future are refused beyond the skew")
    func notYetValid() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.es256, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let now = authNow.timeIntervalSince1970
        let cases: [(AnyJSON, AnyJSON, AuthFailure.Kind?)] = [
            (.number(now + 120), .null, .notYetValid),  // nbf ahead
            (.number(now + 50), .null, nil),  // nbf within the skew
            (.number(now - 10), .null, nil),
            (.null, .number(now + 120), .notYetValid),  // iat ahead
            (.null, .number(now + 50), nil),
        ]
        for (nbf, iat, expected) in cases {
            let token = try await jwtKitSign(authClaims(["nbf": nbf, "iat": iat]), keyFile: key.privateKeyFile)
            #expect(refusal(verifier.verify(token, now: authNow)) == expected, "nbf \(nbf) iat \(iat)")
        }
        // Cached, then checked again at a later time: the nbf token becomes valid.
        let later = try await jwtKitSign(authClaims(["nbf": .number(now + 120)]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(later, now: authNow)) == .notYetValid)
        #expect(refusal(verifier.verify(later, now: authNow.addingTimeInterval(120))) == nil)
    }

    @Test("wrong issuer and wrong audience are refused")
    func wrongIssuerAudience() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile], issuer: "corp", audience: "time")
        let good = try await jwtKitSign(authClaims(["iss": "corp", "aud": "time"]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(good, now: authNow)) == nil)
        let issuer = try await jwtKitSign(authClaims(["iss": "evil", "aud": "time"]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(issuer, now: authNow)) == .wrongIssuer)
        let caseOnly = try await jwtKitSign(authClaims(["iss": "Corp", "aud": "time"]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(caseOnly, now: authNow)) == .wrongIssuer)
        let audience = try await jwtKitSign(authClaims(["iss": "corp", "aud": "git"]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(audience, now: authNow)) == .wrongAudience)
    }

    @Test("missing sub, exp, iss or aud is refused", arguments: ["sub", "exp", "iss", "aud"])
    func missingClaim(name: String) async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims([name: .null]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(token, now: authNow)) == .missingClaim)
        if name == "sub" {
            let empty = try await jwtKitSign(authClaims(["sub": ""]), keyFile: key.privateKeyFile)
            #expect(refusal(verifier.verify(empty, now: authNow)) == .missingClaim)
        }
    }

    @Test("claims of the wrong type are malformed")
    func wrongTypes() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        for change: [String: AnyJSON] in [["exp": "tomorrow"], ["sub": 42], ["aud": 1], ["iss": ["a"]], ["scope": true], ["act": "agent"]] {
            let token = try await jwtKitSign(authClaims(change), keyFile: key.privateKeyFile)
            #expect(refusal(verifier.verify(token, now: authNow)) == .malformed, "\(change)")
        }
    }

    @Test("malformed text is refused before any key is tried")
    func malformed() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let valid = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
        let parts = tokenParts(valid)
        var random = SystemRandomNumberGenerator()
        let randomBytes = String(decoding: (0..<200).map { _ in UInt8.random(in: 0...255, using: &random) }, as: UTF8.self)
        let cases: [(String, AuthFailure.Kind)] = [
            ("", .missing),
            ("   ", .missing),
            ("Bearer ", .missing),
            (randomBytes, .malformed),
            (parts[0] + "." + parts[1], .malformed),  // two segments
            (valid + ".AAAA", .malformed),  // four segments (JWE-like shape)
            ("a.b.c", .malformed),  // bad base64 / not JSON
            ("....", .malformed),
            (parts[0] + ".!!!!." + parts[2], .malformed),  // outside the alphabet
            (parts[0].replacingOccurrences(of: "e", with: "+") + "." + parts[1] + "." + parts[2], .malformed),
            ("A" + parts[0] + "." + parts[1] + "." + parts[2], .malformed),  // header no longer base64 of JSON
            (base64URL(Array("not json".utf8)) + "." + parts[1] + "." + parts[2], .malformed),
            (base64URL(Array("[1,2]".utf8)) + "." + parts[1] + "." + parts[2], .malformed),
            (parts[0] + "." + base64URL(Array("[]".utf8)) + "." + parts[2], .malformed),
            (parts[0] + "." + String(repeating: "A", count: TokenVerifier.maxTokenBytes) + "." + parts[2], .malformed),  // huge
            (String(repeating: valid, count: 3000), .malformed),  // about 1 MB
            (valid + "\u{0}", .malformed),
            ("Bearer" + valid, .malformed),
            ("Bearer Bearer " + valid, .malformed),
        ]
        for (text, expected) in cases {
            let result = verifier.verify(text, now: authNow)
            #expect(refusal(result) == expected, "\(text.prefix(40))")
        }
    }

    @Test("a crit header is refused")
    func critical() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile, header: ["crit": ["exp"]])
        #expect(refusal(verifier.verify(token, now: authNow)) == .malformed)
    }

    @Test("kid picks the key; an unknown kid or one of another algorithm is refused")
    func keyID() async throws {
        let dir = try AuthKeyDir()
        let ed = try dir.generate(.eddsa, "ed")
        let ec = try dir.generate(.es256, "ec")
        let other = try dir.generate(.eddsa, "other")
        let verifier = try dir.verifier([ed.verificationKeyFile, ec.verificationKeyFile, other.verificationKeyFile])
        let named = try await jwtKitSign(authClaims(), keyFile: ed.privateKeyFile, header: ["kid": "ed"])
        #expect(refusal(verifier.verify(named, now: authNow)) == nil)
        // The signature is other's, the kid names ed: only ed is tried.
        let misnamed = try await jwtKitSign(authClaims(), keyFile: other.privateKeyFile, header: ["kid": "ed"])
        #expect(refusal(verifier.verify(misnamed, now: authNow)) == .badSignature)
        let unknown = try await jwtKitSign(authClaims(), keyFile: ed.privateKeyFile, header: ["kid": "nobody"])
        #expect(refusal(verifier.verify(unknown, now: authNow)) == .unknownKey)
        let crossed = try await jwtKitSign(authClaims(), keyFile: ed.privateKeyFile, header: ["kid": "ec"])
        #expect(refusal(verifier.verify(crossed, now: authNow)) == .unsupportedAlgorithm)
        let numeric = try await jwtKitSign(authClaims(), keyFile: ed.privateKeyFile, header: ["kid": 7])
        #expect(refusal(verifier.verify(numeric, now: authNow)) == .malformed)
    }

    @Test("refusal messages never contain the token or its parts")
    func messagesAreSafe() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile], issuer: "corp")
        let tokens = [
            try await jwtKitSign(authClaims(["iss": "secret-issuer-name"]), keyFile: key.privateKeyFile),
            try await jwtKitSign(authClaims(["iss": "corp", "aud": "secret-audience"]), keyFile: key.privateKeyFile),
            try await jwtKitSign(authClaims(["iss": "corp"]), keyFile: key.privateKeyFile, header: ["kid": "secret-kid"]),
            try handMadeToken(header: ["alg": "secret-alg"], claims: authClaims(), signature: "c2VjcmV0"),
        ]
        for token in tokens {
            guard case .failure(let failure) = verifier.verify(token, now: authNow) else {
                Issue.record("accepted")
                continue
            }
            #expect(!failure.message.contains("secret"))
            for part in tokenParts(token) where part.count > 3 { #expect(!failure.message.contains(part)) }
            #expect(failure.safeError.kind == .unauthenticated)
        }
    }
}

@Suite("Token verifier: cache and threads")
struct AuthVerifierCacheTests {
    @Test("the cache is bounded; forgotten tokens are verified again")
    func bounded() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile], cacheCapacity: 4)
        var tokens: [String] = []
        for index in 0..<10 {
            tokens.append(try await jwtKitSign(authClaims(["sub": .string("user\(index)")]), keyFile: key.privateKeyFile))
        }
        for token in tokens { #expect(refusal(verifier.verify(token, now: authNow)) == nil) }
        #expect(verifier.cachedTokenCount == 4)
        for (index, token) in tokens.enumerated() {
            #expect(try verifier.verify(token, now: authNow).get().subject == "user\(index)")
        }
        #expect(verifier.cachedTokenCount == 4)
        let uncached = try dir.verifier([key.verificationKeyFile], cacheCapacity: 0)
        #expect(refusal(uncached.verify(tokens[0], now: authNow)) == nil)
        #expect(uncached.cachedTokenCount == 0)
    }

    @Test("refused tokens are not cached")
    func refusalsNotCached() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let token = try await jwtKitSign(authClaims(["aud": "elsewhere"]), keyFile: key.privateKeyFile)
        #expect(refusal(verifier.verify(token, now: authNow)) == .wrongAudience)
        #expect(verifier.cachedTokenCount == 0)
    }

    @Test("verify is safe from many threads at once")
    func concurrent() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.es256, "k")
        let verifier = try dir.verifier([key.verificationKeyFile], cacheCapacity: 8)
        var tokens: [String] = []
        for index in 0..<16 {
            tokens.append(try await jwtKitSign(authClaims(["sub": .string("u\(index)")]), keyFile: key.privateKeyFile))
        }
        let forged = tokenParts(tokens[0])[0] + "." + tokenParts(tokens[1])[1] + "." + tokenParts(tokens[0])[2]
        let frozen = tokens
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 400) { iteration in
            let index = iteration % frozen.count
            let accepted = (try? verifier.verify(frozen[index], now: authNow).get().subject) == "u\(index)"
            let refused = refusal(verifier.verify(forged, now: authNow)) == .badSignature
            if !accepted || !refused { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(verifier.cachedTokenCount <= 8)
    }
}
