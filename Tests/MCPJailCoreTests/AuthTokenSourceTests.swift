import Foundation
import Testing

@testable import MCPJailCore

@Suite("Token source")
struct AuthTokenSourceTests {
    @Test("_meta wins over the token file, which wins over MCPJAIL_TOKEN")
    func precedence() throws {
        let dir = try AuthKeyDir()
        let file = try dir.write("token", "from-file\n")
        let all = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": file, "MCPJAIL_TOKEN": "from-env"])
        #expect(try all.token(meta: "from-meta").get() == TokenSource.Token(text: "from-meta", origin: .meta))
        #expect(try all.token(meta: nil).get() == TokenSource.Token(text: "from-file", origin: .file))
        let envOnly = TokenSource(environment: ["MCPJAIL_TOKEN": "  from-env \n", "MCPJAIL_TOKEN_FILE": ""])
        #expect(try envOnly.token(meta: nil).get() == TokenSource.Token(text: "from-env", origin: .environment))
        let none = TokenSource(environment: ["PATH": "/bin", "MCPJAIL_TOKEN": "  "])
        guard case .failure(let failure) = none.token(meta: nil) else {
            Issue.record("found a token in an empty environment")
            return
        }
        #expect(failure.kind == .missing)
        #expect(failure.message.contains("MCPJAIL_TOKEN_FILE"))
        // A present _meta value is authoritative, even when empty.
        #expect(try all.token(meta: "").get().origin == .meta)
    }

    @Test("a named token file that cannot be read is an error, not a fallback to MCPJAIL_TOKEN")
    func unreadableFile() throws {
        let dir = try AuthKeyDir()
        let source = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": dir.path + "/absent", "MCPJAIL_TOKEN": "from-env"])
        guard case .failure(let failure) = source.token(meta: nil) else {
            Issue.record("fell back")
            return
        }
        #expect(failure.kind == .missing)
        #expect(!failure.message.contains(dir.path))  // no host paths in what the model sees
        let empty = try dir.write("empty", " \n")
        #expect(throws: AuthFailure.self) { try TokenSource(environment: ["MCPJAIL_TOKEN_FILE": empty]).token(meta: nil).get() }
        let directory = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": dir.path])
        #expect(throws: AuthFailure.self) { try directory.token(meta: nil).get() }
    }

    @Test("a rewritten or replaced token file is seen on the next call")
    func rotation() throws {
        let dir = try AuthKeyDir()
        let path = try dir.write("token", "token-AAAA\n")
        let source = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": path])
        #expect(try source.token(meta: nil).get().text == "token-AAAA")
        #expect(try source.token(meta: nil).get().text == "token-AAAA")
        // Rewritten in place, same size, immediately: same inode, maybe the same times.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data("token-BBBB\n".utf8))
        try handle.close()
        #expect(try source.token(meta: nil).get().text == "token-BBBB")
        // Replaced by rename, the way a refresher should do it.
        let next = try dir.write("token.new", "token-CCCCCC")
        #expect(rename(next, path) == 0)
        #expect(try source.token(meta: nil).get().text == "token-CCCCCC")
        // Removed: the next call has no token.
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: AuthFailure.self) { try source.token(meta: nil).get() }
        try dir.write("token", "token-DDDD")
        #expect(try source.token(meta: nil).get().text == "token-DDDD")
    }

    @Test("an old unchanged file is read once and then served from the stat check")
    func unchangedFile() throws {
        let dir = try AuthKeyDir()
        let path = try dir.write("token", "token-old")
        var times = [timespec](repeating: timespec(tv_sec: 1_700_000_000, tv_nsec: 0), count: 2)
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)  // modified long ago
        let source = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": path])
        #expect(try source.token(meta: nil).get().text == "token-old")
        #expect(try source.token(meta: nil).get().text == "token-old")
        try Data("token-new".utf8).write(to: URL(fileURLWithPath: path))  // new times: seen
        #expect(try source.token(meta: nil).get().text == "token-new")
    }

    @Test("the verifier reads the source: a file token is verified, and a new file's token takes over")
    func verifyFromSource() async throws {
        let dir = try AuthKeyDir()
        let key = try dir.generate(.eddsa, "k")
        let verifier = try dir.verifier([key.verificationKeyFile])
        let alice = try await jwtKitSign(authClaims(), keyFile: key.privateKeyFile)
        let bob = try await jwtKitSign(authClaims(["sub": "bob"]), keyFile: key.privateKeyFile)
        let path = try dir.write("token", "Bearer \(alice)\n")
        let source = TokenSource(environment: ["MCPJAIL_TOKEN_FILE": path])
        #expect(try verifier.verify(source: source, meta: nil, now: authNow).get().subject == "alice")
        let next = try dir.write("token.new", bob)
        #expect(rename(next, path) == 0)
        #expect(try verifier.verify(source: source, meta: nil, now: authNow).get().subject == "bob")
        #expect(try verifier.verify(source: source, meta: alice, now: authNow).get().subject == "alice")
        #expect(refusal(verifier.verify(source: TokenSource(environment: [:]), meta: nil, now: authNow)) == .missing)
    }
}
