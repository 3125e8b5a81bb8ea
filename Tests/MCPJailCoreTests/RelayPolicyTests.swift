import Foundation
import Testing
@testable import MCPJailCore

/// The relay's policy pieces, one by one: `_meta` stripping, globs and list filters, rate
/// buckets, secret redaction, error sanitizing, access decisions.
@Suite("Relay policy")
struct RelayPolicyTests {
    static func scan(_ text: String) throws -> (ScannedMessage, [UInt8]) {
        let bytes = Array(text.utf8)
        let scanned = try bytes.withUnsafeBytes { try JSONScanner.scan($0) }
        return (scanned, bytes)
    }

    static func profile(_ edit: (inout Profile) -> Void = { _ in }) -> Profile {
        var profile = Profile(name: "t", path: "/t.toml", digest: "", server: .init(command: "/bin/true"))
        edit(&profile)
        return profile
    }

    // MARK: _meta

    @Test("mcpjail's _meta keys are read and stripped; everything else stays byte for byte")
    func metaStripped() throws {
        let text = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":"p","dev.mcpjail/authorization":"Bearer abc","dev.mcpjail/idempotencyKey":"k1"},"arguments":{"a" : 1}}}"#
        let (scanned, bytes) = try Self.scan(text)
        let meta = bytes.withUnsafeBytes { RequestMeta.read(scanned, line: $0) }
        #expect(meta.authorization == "Bearer abc")
        #expect(meta.idempotencyKey == "k1")
        let stripped = String(decoding: try #require(meta.strippedLine), as: UTF8.self)
        #expect(stripped == #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":"p"},"arguments":{"a" : 1}}}"#)
    }

    @Test("escaped spellings of the keys are found too, and a line without them is untouched")
    func metaEscaped() throws {
        let (scanned, bytes) = try Self.scan(#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"dev.mcpjail\/authorization":"t"}}}"#)
        let meta = bytes.withUnsafeBytes { RequestMeta.read(scanned, line: $0) }
        #expect(meta.authorization == "t")
        #expect(meta.strippedLine.map { String(decoding: $0, as: UTF8.self) } == #"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{}}}"#)
        let (plain, plainBytes) = try Self.scan(#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":1}}}"#)
        #expect(plainBytes.withUnsafeBytes { RequestMeta.read(plain, line: $0) } == RequestMeta())
    }

    // MARK: globs and lists

    @Test("globs: * stays in a segment, ** crosses, ? is one character")
    func globs() {
        #expect(Glob("file:///srv/repo/**").matches("file:///srv/repo/a/b/c.txt"))
        #expect(!Glob("file:///srv/repo/**").matches("file:///srv/other/a"))
        #expect(Glob("file:///srv/*.md").matches("file:///srv/README.md"))
        #expect(!Glob("file:///srv/*.md").matches("file:///srv/docs/README.md"))
        #expect(Glob("review_?").matches("review_a") && !Glob("review_?").matches("review_ab"))
        #expect(Glob("*").matches("") && !Glob("a").matches("ab"))
    }

    @Test("tools/list drops hidden tools; a list with nothing hidden is forwarded as is")
    func toolListFiltered() throws {
        let profile = Self.profile { $0.tools = ["read": .init()] }
        let exposure = ExposurePolicy(profile: profile)
        let line = Array(#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"read","inputSchema":{}},{"name":"delete_all","inputSchema":{}},{"inputSchema":{}}],"nextCursor":"c"}}"#.utf8)
        let result = line.withUnsafeBytes { exposure.filterListResponse(method: "tools/list", line: $0) }
        guard case .filtered(let bytes)? = result else {
            Issue.record("expected a filtered line, got \(String(describing: result))")
            return
        }
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"read","inputSchema":{}}],"nextCursor":"c"}}"#)
        let allVisible = Array(#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"read"}]}}"#.utf8)
        #expect(allVisible.withUnsafeBytes { exposure.filterListResponse(method: "tools/list", line: $0) } == .unchanged)
        #expect(allVisible.withUnsafeBytes { exposure.filterListResponse(method: "ping", line: $0) } == nil)
    }

    @Test("resources and prompts follow their allow lists, else the tool default")
    func resourcesAndPrompts() {
        let open = ExposurePolicy(profile: Self.profile { $0.toolDefault = .allow })
        #expect(open.resourceAllowed("file:///etc/passwd") && open.promptAllowed("x"))
        let closed = ExposurePolicy(profile: Self.profile())
        #expect(!closed.resourceAllowed("file:///srv/repo/a") && !closed.promptAllowed("x"))
        let listed = ExposurePolicy(profile: Self.profile {
            $0.resources = .init(allow: ["file:///srv/repo/**"])
            $0.prompts = .init(allow: ["review_*"])
        })
        #expect(listed.resourceAllowed("file:///srv/repo/src/main.swift"))
        #expect(!listed.resourceAllowed("file:///srv/secret"))
        #expect(listed.resourceTemplateVisible("file:///srv/repo/{path}"))
        #expect(listed.resourceTemplateVisible("file:///{path}"))  // may expand into the repo; reads are checked
        #expect(!listed.resourceTemplateVisible("db://{table}"))
        #expect(listed.promptAllowed("review_pr") && !listed.promptAllowed("deploy"))
        let line = Array(#"{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///srv/repo/a","name":"a"},{"uri":"file:///etc/shadow","name":"s"}]}}"#.utf8)
        guard case .filtered(let bytes)? = line.withUnsafeBytes({ listed.filterListResponse(method: "resources/list", line: $0) }) else {
            Issue.record("resources/list was not filtered")
            return
        }
        #expect(!String(decoding: bytes, as: UTF8.self).contains("shadow"))
    }

    // MARK: access

    @Test("hidden and nonexistent tools get the same refusal; scopes are checked with auth on")
    func access() throws {
        var profile = Self.profile { $0.tools = ["write": .init(scope: "repo:write"), "read": .init()] }
        profile.auth.required = true
        let check = AccessCheck(profile: profile)
        func decide(_ tool: String, scopes: Set<String>) throws -> Refusal? {
            let (scanned, bytes) = try Self.scan(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\#(tool)","arguments":{}}}"#)
            return bytes.withUnsafeBytes { line in
                let request = InspectedRequest(method: "tools/call", id: nil, toolName: tool, scanned: scanned, line: line)
                var state = CallState(now: 0, principal: Principal(subject: "alice", scopes: scopes, expiresAt: .distantFuture))
                return check.check(request, &state)
            }
        }
        #expect(try decide("read", scopes: []) == nil)
        #expect(try decide("write", scopes: ["repo:write"]) == nil)
        let underScoped = try #require(try decide("write", scopes: ["repo:read"]))
        #expect(underScoped.error.kind == .forbidden && underScoped.error.message.contains("repo:write"))
        let hidden = try #require(try decide("delete_repo", scopes: []))
        #expect(hidden.error == SafeError(.forbidden, "tool 'delete_repo' is not available", retryable: false))
    }

    // MARK: rate

    @Test("a token bucket refuses past its size and refills with time")
    func rateLimiter() {
        let limiter = RateLimiter()
        let rate = Profile.Rate(count: 3, period: .seconds(60))
        for _ in 0..<3 { #expect(limiter.take("k", rate: rate, now: 0) == nil) }
        let wait = limiter.take("k", rate: rate, now: 0)
        #expect(wait.map { abs($0 - 20) < 0.01 } == true)  // one token per 20 s
        #expect(limiter.take("other", rate: rate, now: 0) == nil)  // buckets are separate
        #expect(limiter.take("k", rate: rate, now: 20_000_000_000) == nil)
        #expect(limiter.take("k", rate: rate, now: 20_000_000_000) != nil)
    }

    // MARK: secrets and errors

    @Test("a secret is redacted raw, JSON-escaped and in base64 at any alignment")
    func redaction() {
        let secret = "s3cr3t/\"token\"+value"
        let redactor = SecretRedactor(secrets: [secret, "short"])
        func redacted(_ text: String) -> String { redactor.redact(text) }
        #expect(redacted("key=\(secret)!") == "key=[REDACTED]!")
        #expect(redacted(JSONWriter.quoted("in json: \(secret)")) == #""in json: [REDACTED]""#)
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = Data((prefix + secret + "tail").utf8).base64EncodedString()
            #expect(redacted(encoded).contains("[REDACTED]"), "base64 with prefix '\(prefix)': \(encoded)")
            let urlSafe = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            #expect(redacted(urlSafe).contains("[REDACTED]"))
        }
        #expect(redacted("short is too short to redact") == "short is too short to redact")
        #expect(redactor.redact(UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
    }

    @Test("error text loses tracebacks and host paths, keeps the final message and URLs")
    func sanitizer() {
        let sanitizer = ErrorSanitizer(redactor: SecretRedactor(secrets: ["hunter2hunter2"]))
        let text = """
            Traceback (most recent call last):
              File "/srv/mcp/venv/lib/python3.11/site-packages/server.py", line 10, in call
                raise ValueError(x)
            ValueError: cannot open /home/alice/.ssh/id_rsa with hunter2hunter2 (see https://example.com/a/b)
            """
        let cleaned = sanitizer.sanitize(text)
        #expect(cleaned == "ValueError: cannot open <path> with [REDACTED] (see https://example.com/a/b)")
        let line = Array(#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"failed at /opt/app/x.py","data":{"trace":"  at Foo (/app/a.js:1)\nboom"}}}"#.utf8)
        let reply = line.withUnsafeBytes { sanitizer.sanitizeErrorReply($0) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(reply == #"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"failed at <path>","data":{"trace":"boom"}}}"#)
    }

    @Test("refusal replies carry the triple, retry_after and the pointer")
    func replies() throws {
        let id = RequestID(string: "a")
        let limited = String(decoding: Replies.toolError(id: id, SafeError(.rateLimited, "slow down", retryable: true, retryAfter: 2.5)), as: UTF8.self)
        let parsed = try JSONParser.parse(limited)
        #expect(parsed["result"]?["structuredContent"]?["error"] == [
            "type": "rate_limited", "message": "slow down", "retryable": true, "retry_after": .number(JSONNumber("2.5")!),
        ])
        let invalid = String(decoding: Replies.toolError(id: id, SafeError(.invalidArguments, "/n: too big", retryable: false, pointer: "/n")), as: UTF8.self)
        #expect(try JSONParser.parse(invalid)["result"]?["structuredContent"]?["error"]?["pointer"] == "/n")
    }
}
