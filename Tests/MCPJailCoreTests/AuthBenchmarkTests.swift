import Foundation
import JWTKit
import Testing

@testable import MCPJailCore

/// The cost of one `verify` call, cached and uncached, per algorithm. Off by default (timings
/// in a debug build mean little); run in release with
/// `MCPJAIL_AUTH_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter AuthBenchmark`.
@Suite("Auth benchmark", .serialized, .enabled(if: ProcessInfo.processInfo.environment["MCPJAIL_AUTH_BENCH"] != nil))
struct AuthBenchmarkTests {
    /// Median of `rounds` runs of `iterations` calls, in nanoseconds per call.
    private func measure(iterations: Int, rounds: Int = 7, _ body: () -> Bool) -> Double {
        var samples: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            var ok = true
            let elapsed = clock.measure {
                for _ in 0..<iterations where !body() { ok = false }
            }
            #expect(ok)
            let (seconds, attoseconds) = elapsed.components
            samples.append((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(iterations))
        }
        return samples.sorted()[rounds / 2]
    }

    @Test("verify per call", arguments: TokenAlgorithm.allCases)
    func verify(algorithm: TokenAlgorithm) async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(algorithm, "k")
        let request = TokenRequest(subject: "alice", scopes: ["tools:read", "tools:call"], actors: ["agent"])
        let token = try await TokenIssuer(keyFile: key.privateKeyFile).issue(request, now: authNow)
        let uncached = try dir.verifier([key.verificationKeyFile], cacheCapacity: 0)
        let cached = try dir.verifier([key.verificationKeyFile])
        let uncachedNs = measure(iterations: 2000) { (try? uncached.verify(token, now: authNow).get()) != nil }
        let cachedNs = measure(iterations: 200_000) { (try? cached.verify(token, now: authNow).get()) != nil }
        let forged = tokenParts(token)[0] + "." + tokenParts(token)[1] + "." + String(tokenParts(token)[2].reversed())
        let forgedNs = measure(iterations: 2000) { refusal(cached.verify(forged, now: authNow)) != nil }
        // The parts: the signature check alone, and the parse alone.
        let verificationKey = try VerificationKey.load(file: key.verificationKeyFile)
        let bytes = Array(token.utf8)
        let signingInput = bytes[..<bytes.lastIndex(of: UInt8(ascii: "."))!]
        let signature = try #require(base64URLDecode(tokenParts(token)[2]))
        let signatureNs = measure(iterations: 2000) {
            (try? verificationKey.jwtAlgorithm.verify(signature, signs: signingInput)) == true
        }
        let parser = DefaultJWTParser()
        let parseNs = measure(iterations: 2000) { (try? parser.parse(bytes, as: TokenClaims.self)) != nil }
        print(
            "auth-bench \(algorithm.rawValue): token \(token.utf8.count) B; uncached \(Int(uncachedNs)) ns/call "
                + "(signature \(Int(signatureNs)), parse \(Int(parseNs))); cached \(Int(cachedNs)) ns/call; "
                + "forged \(Int(forgedNs)) ns/call")
    }

    @Test("token source per call")
    func source() throws {
        let dir = try AuthKeyDir()
        let path = try dir.write("token", String(repeating: "x", count: 400))
        var times = [timespec](repeating: timespec(tv_sec: 1_700_000_000, tv_nsec: 0), count: 2)
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        let fileSource = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": path])
        let fileNs = measure(iterations: 100_000) { (try? fileSource.token(meta: nil).get()) != nil }
        let metaNs = measure(iterations: 100_000) { (try? fileSource.token(meta: "abc").get()) != nil }
        print("auth-bench source: file (stat, unchanged) \(Int(fileNs)) ns/call; _meta \(Int(metaNs)) ns/call")
    }
}
