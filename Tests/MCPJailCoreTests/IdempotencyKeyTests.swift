import Testing

@testable import MCPJailCore

private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

private func call(
    subject: String = "local", server: String = "github", tool: String = "create_issue", _ arguments: String?,
    meta: String? = nil, fields: [String]? = nil
) throws -> IdempotentCall {
    try IdempotencyKeys.call(
        subject: subject, server: server, tool: tool, arguments: arguments.map(parse), meta: meta.map(parse),
        fields: fields)
}

@Suite("Idempotency key derivation")
struct IdempotencyKeyTests {
    @Test("the same operation gets the same key and fingerprint, however its JSON is spelled")
    func sameOperationSameKey() throws {
        let spellings = [
            #"{"title":"Bug","labels":["a","b"],"priority":1,"meta":{"x":0.5,"y":null}}"#,
            #" { "meta" : { "y" : null , "x" : 5e-1 } , "priority" : 1.0 , "labels" : [ "a" , "b" ] , "title" : "Bug" } "#,
            #"{"priority":1e0,"title":"\u0042ug","meta":{"x":0.50,"y":null},"labels":["\u0061","b"]}"#,
            "{\n\t\"priority\": 10E-1,\n\t\"title\": \"Bug\",\n\t\"labels\": [\"a\", \"b\"],\n\t\"meta\": {\"y\": null, \"x\": 50e-2}\n}",
        ]
        let calls = try spellings.map { try call($0) }
        for other in calls.dropFirst() {
            #expect(other.key == calls[0].key)
            #expect(other.fingerprint == calls[0].fingerprint)
        }
        #expect(calls[0].key.utf8.count == 64 && calls[0].fingerprint.utf8.count == 64)
        #expect(calls[0].key != calls[0].fingerprint)
        #expect(calls[0].suppliedKey == nil)
    }

    @Test("tool, subject, server and arguments each change the key")
    func differentOperationsDiffer() throws {
        let args = #"{"title":"Bug"}"#
        let variants = [
            try call(args),
            try call(tool: "close_issue", args),
            try call(subject: "alice", args),
            try call(server: "gitlab", args),
            try call(#"{"title":"Bug "}"#),
            try call(#"{"title":"bug"}"#),
            try call(#"{"title":"Bug","extra":null}"#),
            try call(#"{"title":["Bug"]}"#),
            try call(#"{"title":"Bug","n":1}"#),
            try call(#"{"title":"Bug","n":1.0000000000000000001}"#),
            try call(#"{"title":"Bug","n":"1"}"#),
        ]
        #expect(Set(variants.map(\.key)).count == variants.count)
        // The fingerprint is the tool and arguments only.
        #expect(variants[0].fingerprint != variants[1].fingerprint)
        #expect(variants[0].fingerprint == variants[2].fingerprint)
        #expect(variants[0].fingerprint == variants[3].fingerprint)
    }

    @Test("the tuple encoding is unambiguous: moving characters between parts changes the key")
    func noBoundaryCollisions() throws {
        let a = try call(subject: "ab", server: "c", tool: "t", "{}")
        let b = try call(subject: "a", server: "bc", tool: "t", "{}")
        let c = try call(subject: "a", server: "b", tool: "ct", "{}")
        let d = try call(subject: "a\",\"b", server: "c", tool: "t", "{}")
        let e = try call(subject: "a", server: "b\",\"c", tool: "t", "{}")
        #expect(Set([a.key, b.key, c.key, d.key, e.key]).count == 5)
    }

    @Test("absent arguments are the empty object")
    func absentArgumentsAreEmpty() throws {
        #expect(try call(nil).key == (try call("{}")).key)
        #expect(try call(nil).fingerprint == (try call("{}")).fingerprint)
    }

    @Test("the key's encoding is pinned: stored keys stay valid across versions")
    func pinnedEncoding() throws {
        let argumentsDigest = SHA256Hex.digest(Array(#"{"a":1}"#.utf8))
        let expectedKey = SHA256Hex.digest(Array(
            #"["mcpjail/idempotency-key/v1","arguments","local","github","create_issue","\#(argumentsDigest)"]"#.utf8))
        let expectedFingerprint = SHA256Hex.digest(Array(
            #"["mcpjail/idempotency-fingerprint/v1","create_issue","\#(argumentsDigest)"]"#.utf8))
        let derived = try call(#"{ "a" : 1.0 }"#)
        #expect(derived.key == expectedKey)
        #expect(derived.fingerprint == expectedFingerprint)

        let supplied = try call(#"{"a":1}"#, meta: #"{"dev.mcpjail/idempotencyKey":"order-7"}"#)
        #expect(supplied.key == SHA256Hex.digest(Array(
            #"["mcpjail/idempotency-key/v1","supplied","local","github","order-7"]"#.utf8)))
    }

    @Test("the digest path (streamed arguments) gives the same call as the parsed path")
    func digestPathAgrees() throws {
        let text = #"{"b":[1,2.50,{"z":true}],"a":"x\u00e9"}"#
        let digest = try CanonicalDigest.sha256Hex(ofJSON: Array(text.utf8))
        let streamed = IdempotencyKeys.call(
            subject: "local", server: "github", tool: "create_issue", argumentsDigest: digest, suppliedKey: nil)
        #expect(streamed == (try call(text)))
        let streamedSupplied = IdempotencyKeys.call(
            subject: "local", server: "github", tool: "create_issue", argumentsDigest: digest, suppliedKey: "k-1")
        #expect(streamedSupplied == (try call(text, meta: #"{"dev.mcpjail/idempotencyKey":"k-1"}"#)))
    }

    @Test("idempotency_fields: only the named fields count; missing differs from null")
    func namedFields() throws {
        let fields = ["repo", "title"]
        let base = try call(#"{"repo":"r","title":"T","body":"first"}"#, fields: fields)
        let otherBody = try call(#"{"body":"second","title":"T","repo":"r"}"#, fields: fields)
        #expect(base.key == otherBody.key)
        #expect(base.fingerprint != otherBody.fingerprint)  // a supplied or field key reused: detectable

        // Field order and duplicates in the list do not matter.
        #expect(try call(#"{"repo":"r","title":"T"}"#, fields: ["title", "repo", "title"]).key == base.key)
        // A named field's value counts.
        #expect(try call(#"{"repo":"r","title":"U","body":"first"}"#, fields: fields).key != base.key)

        let missing = try call(#"{"repo":"r"}"#, fields: fields)
        let null = try call(#"{"repo":"r","title":null}"#, fields: fields)
        let emptyString = try call(#"{"repo":"r","title":""}"#, fields: fields)
        #expect(Set([missing.key, null.key, emptyString.key, base.key]).count == 4)
        // Arguments that are not an object have none of the fields.
        #expect(try call(#"["r","T"]"#, fields: fields).key == (try call(#"{}"#, fields: fields)).key)
        // Fields are a different derivation from all arguments, even when they cover them all.
        #expect(try call(#"{"repo":"r","title":"T"}"#, fields: fields).key != (try call(#"{"repo":"r","title":"T"}"#)).key)
    }

    @Test("a supplied key replaces derivation, scoped to subject and server; the fingerprint still sees arguments")
    func suppliedKey() throws {
        let meta = #"{"dev.mcpjail/idempotencyKey":"order-7","progressToken":1}"#
        let first = try call(#"{"title":"A"}"#, meta: meta)
        let otherArgs = try call(#"{"title":"B"}"#, meta: meta)
        #expect(first.suppliedKey == "order-7")
        #expect(first.key == otherArgs.key)
        #expect(first.fingerprint != otherArgs.fingerprint)
        #expect(try call(tool: "close_issue", #"{"title":"A"}"#, meta: meta).key == first.key)
        #expect(try call(subject: "alice", #"{"title":"A"}"#, meta: meta).key != first.key)
        #expect(try call(server: "gitlab", #"{"title":"A"}"#, meta: meta).key != first.key)
        #expect(first.key != (try call(#"{"title":"A"}"#)).key)
        // A supplied key wins over idempotency_fields.
        #expect(try call(#"{"title":"A"}"#, meta: meta, fields: ["title"]).key == first.key)
        // _meta without the member: derived.
        #expect(try call(#"{"title":"A"}"#, meta: #"{"progressToken":1}"#).suppliedKey == nil)
    }

    @Test("supplied keys: 1 to 255 printable ASCII characters, a string, in an object")
    func suppliedKeyValidation() throws {
        for valid in ["k", "a b", "~!@#$%^&*()_+{}|:\"<>?", String(repeating: "x", count: 255)] {
            #expect(throws: Never.self) { try IdempotencyKeys.validateSuppliedKey(valid) }
        }
        for invalid in ["", String(repeating: "x", count: 256), "caf\u{e9}", "line\nbreak", "tab\t", "\u{7f}", "nul\u{0}"] {
            #expect(throws: IdempotencyKeyError.self) { try IdempotencyKeys.validateSuppliedKey(invalid) }
        }
        for meta in [#"{"dev.mcpjail/idempotencyKey":7}"#, #"{"dev.mcpjail/idempotencyKey":null}"#,
                     #"{"dev.mcpjail/idempotencyKey":""}"#, #"{"dev.mcpjail/idempotencyKey":["k"]}"#, #""k""#] {
            #expect(throws: IdempotencyKeyError.self) { try call("{}", meta: meta) }
        }
        let error = try #require(throws: IdempotencyKeyError.self) {
            try call("{}", meta: #"{"dev.mcpjail/idempotencyKey":""}"#)
        }
        #expect(error.safeError.kind == .invalidRequest && !error.safeError.retryable)
        #expect(error.safeError.message.contains("dev.mcpjail/idempotencyKey"))
    }
}
