import Testing
@testable import MCPJailCore

private func scan(_ text: String) throws -> ScannedMessage {
    var bytes = Array(text.utf8)
    return try bytes.withUnsafeMutableBytes { raw in try JSONScanner.scan(UnsafeRawBufferPointer(raw)) }
}

private func classify(_ text: String) throws -> JSONRPCMessageKind {
    var bytes = Array(text.utf8)
    return try bytes.withUnsafeMutableBytes { raw in
        let line = UnsafeRawBufferPointer(raw)
        return try JSONScanner.scan(line).classify(line)
    }
}

@Suite struct JSONScannerTests {
    @Test func findsTopLevelAndNestedMembers() throws {
        let text = #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,{"b":null}]}}}"#
        let message = try scan(text)
        #expect(message.kind == .object)
        #expect(message.members.map(\.key) == ["jsonrpc", "id", "method", "params"])
        let arguments = try #require(message.member("arguments", in: "params"))
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[arguments.value.start..<arguments.value.end], as: UTF8.self) == #"{"a":[1,{"b":null}]}"#)
        // Deeper members are validated but not recorded.
        #expect(message.nested.allSatisfy { $0.parent == 3 })
        #expect(message.member("a", in: "arguments") == nil)
    }

    @Test func decodesEscapedKeysAsTheServerWould() throws {
        let message = try scan(#"{"\u006dethod":"x","p\u00e4r":1}"#)
        #expect(message.members.map(\.key) == ["method", "pär"])
        // Lone surrogates in keys become U+FFFD (the digest refuses them instead).
        #expect(try scan(#"{"\ud800x":1,"\udc00":2,"\ud83d\ude00":3}"#).members.map(\.key) == ["\u{FFFD}x", "\u{FFFD}", "😀"])
    }

    @Test func reportsDuplicateKeysAtInspectedLevels() throws {
        #expect(try scan(#"{"method":"a","method":"b"}"#).firstDuplicateKey == "method")
        #expect(try scan(#"{"params":{"name":"a","n\u0061me":"b"}}"#).firstDuplicateKey == "params.name")
        #expect(try scan(#"{"params":{"name":"a"},"id":1}"#).firstDuplicateKey == nil)
    }

    @Test(arguments: [
        "", "{", "}", #"{"a":}"#, #"{"a":1,}"#, "[1,]", #"{"a" 1}"#, "{'a':1}", #"{"a":01}"#, #"{"a":1.}"#,
        #"{"a":-}"#, #"{"a":1e}"#, #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":NaN}"#, #"{"a":"\x"}"#,
        #"{"a":"\u12"}"#, "{\"a\":\"tab\there\"}", #"{"a":1} x"#, #"{"a":"unterminated}"#, "{\"a\":1}{}",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: JSONScanError.self) { try scan(text) }
    }

    @Test func rejectsInvalidUTF8() {
        for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x28, 0xA1], [0xFF]] {
            var bytes = Array(#"{"a":""#.utf8) + bad + Array(#""}"#.utf8)
            let result = bytes.withUnsafeMutableBytes { raw in Result { try JSONScanner.scan(UnsafeRawBufferPointer(raw)) } }
            #expect(throws: JSONScanError.self) { try result.get() }
        }
    }

    @Test func acceptsValidUTF8AndEscapes() throws {
        let message = try scan(#"{"a":"é 中 😀 \n \" \\ \/ \ud83d\ude00 plain ascii text longer than eight bytes"}"#)
        #expect(message.members.count == 1)
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONScanError.self) { try scan(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try scan(fine).kind == .array)
    }

    @Test func classifiesMessages() throws {
        #expect(try classify(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#) == .request(method: "ping", id: RequestID(key: "n:1", json: "1")))
        #expect(try classify(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#) == .notification(method: "notifications/initialized"))
        #expect(try classify(#"{"jsonrpc":"2.0","id":"a","result":{}}"#) == .response(id: RequestID(key: "s:a", json: #""a""#)))
        // An escaped string id matches the plain one.
        guard case .response(let escaped) = try classify(#"{"jsonrpc":"2.0","id":"\u0061","result":{}}"#) else {
            Issue.record("not a response")
            return
        }
        #expect(escaped.key == "s:a")
    }

    @Test(arguments: [
        #"{"id":1,"method":"ping"}"#,
        #"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":""}"#,
        #"{"jsonrpc":"2.0","id":1,"method":5}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}"#,
        #"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
        #"{"jsonrpc":"2.0","result":{}}"#,
        #"{"jsonrpc":"2.0"}"#,
    ])
    func refusesMalformedEnvelopes(_ text: String) throws {
        guard case .invalid = try classify(text) else {
            Issue.record("accepted \(text)")
            return
        }
    }

    @Test func scansLargeStringsQuickly() throws {
        let big = "{\"result\":{\"text\":\"" + String(repeating: "abcdefgh", count: 1 << 20) + "\",\"isError\":false}}"
        let message = try scan(big)
        #expect(message.member("isError", in: "result")?.kind == .bool)
    }
}

@Suite struct RequestIDTests {
    private func id(_ literal: String) throws -> RequestID {
        var bytes = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + Array(literal.utf8) + Array(#","result":{}}"#.utf8)
        return try bytes.withUnsafeMutableBytes { raw in
            let line = UnsafeRawBufferPointer(raw)
            guard case .response(let id) = try JSONScanner.scan(line).classify(line) else { throw JSONScanError(offset: 0, reason: "not a response") }
            return id
        }
    }

    @Test func escapedAndPlainStringIDsMatch() throws {
        #expect(try id(#""str-id-\u00e9""#).key == id("\"str-id-\u{e9}\"").key)
        #expect(try id(#""\ud83d\ude00""#).key == id("\"\u{1F600}\"").key)
        #expect(try id(#""a\"b""#).key == "s:a\"b")
        #expect(try id("7").key != id(#""7""#).key)
        // The relay's pending table is keyed by RequestID: spelling must not matter there.
        #expect(try Set([id(#""\u0041""#)]).contains(id(#""A""#)))
    }
}

@Suite struct ScanPrefixTests {
    private func prefix(_ text: String) -> [String] {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { JSONScanner.scanPrefix(UnsafeRawBufferPointer($0)).members.map(\.key) }
    }

    @Test func findsTheMembersCompleteBeforeTheCut() {
        #expect(prefix(#"{"jsonrpc":"2.0","id":7,"method":"x","params":{"pad":"xxxxx"#) == ["jsonrpc", "id", "method"])
        #expect(prefix(#"{"jsonrpc":"2.0","id":"a\u00"#) == ["jsonrpc"])
        #expect(prefix(#"{"id":1"#) == [])  // the number may go on
        #expect(prefix(#"{"id":1,"#) == ["id"])
    }

    @Test func givesNothingForWhatIsNotTheStartOfAnObject() {
        #expect(prefix(#"[{"id":1},"#) == [])
        #expect(prefix(#"{"id":1,,"method":"x","params":{"pad":"xxxxxxxxxxxxxxxxxxxxxx"#) == [])
    }
}
