import Testing

@testable import MCPJailCore

@Suite("JSON parser")
struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    func kind(_ bytes: [UInt8]) -> JSONParseError.Kind? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch { return error.kind }
    }

    func kind(_ text: String) -> JSONParseError.Kind? { kind(Array(text.utf8)) }

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("\"hi\"") == .string("hi"))
        #expect(try parse("-12.5e+3").numberValue?.text == "-12.5e+3")
        #expect(try parse("0") == 0)
    }

    @Test func containersKeepOrderAndText() throws {
        let v = try parse(#" { "b" : [1, 2.50, {"x": null}], "a": "z" } "#)
        guard case .object(let o) = v else { Issue.record("not an object"); return }
        #expect(o.keys == ["b", "a"])
        #expect(v["b"]?.arrayValue?[1].numberValue?.text == "2.50")
        #expect(v["b"]?.arrayValue?[2]["x"] == .null)
        #expect(v["missing"] == nil)
    }

    @Test func escapesAndUnicode() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC""#) == .string("é€"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse("\"é😀\"") == .string("é😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func bigNumbersStayExact() throws {
        let v = try parse("[12345678901234567890123, 0.1000000000000000000001]")
        #expect(v.arrayValue?[0].numberValue?.text == "12345678901234567890123")
        #expect(v.arrayValue?[1].numberValue?.text == "0.1000000000000000000001")
    }

    @Test(arguments: [
        "", " ", "nul", "tru", "[", "{", "[1", "{\"a\"", "{\"a\":", "\"abc", "[1,", "\"\\u12",
    ])
    func rejectsTruncated(_ text: String) {
        #expect(kind(text) == .unexpectedEnd)
    }

    @Test(arguments: [
        "[1,]", "{\"a\":1,}", "[,1]", "{,}", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{1:2}", "{'a':1}",
        "'a'", "NaN", "Infinity", "-Infinity", "undefined", "[01]", "True", "nulll", "// c\n1", "/*c*/1",
        "{\"a\":1]", "[1}", "#", "\u{0B}1",
    ])
    func rejectsSyntaxErrors(_ text: String) {
        #expect(kind(text) != nil, "accepted \(text)")
    }

    @Test(arguments: ["01", "-", "1.", ".5", "+1", "1e", "1e+", "-01", "1.e5", "0x10", "1E-", "--1"])
    func rejectsBadNumbers(_ text: String) {
        let k = kind(text)
        #expect(k != nil)
    }

    @Test func exponentRange() {
        #expect(kind("1e999999999") == nil)
        #expect(kind("1e-000000000999999999") == nil)
        #expect(kind("1e1000000000") == .numberOutOfRange)
    }

    @Test func trailingData() {
        #expect(kind("1 2") == .trailingData)
        #expect(kind("{} x") == .trailingData)
        #expect(kind("null\n\r\t ") == nil)
    }

    @Test(arguments: ["\"a\u{1}b\"", "\"tab\there\"", "\"new\nline\"", "\"\u{1F}\""])
    func rejectsControlCharacters(_ text: String) {
        #expect(kind(text) == .controlCharacterInString)
    }

    @Test(arguments: [#""\x41""#, #""\U0041""#, #""\u00G0""#, #""\'""#, #""\ ""#])
    func rejectsBadEscapes(_ text: String) {
        #expect(kind(text) == .invalidEscape)
    }

    @Test(arguments: [#""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud800x""#, #""\ude00\ud83d""#])
    func rejectsLoneSurrogates(_ text: String) {
        #expect(kind(text) == .loneSurrogate)
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],  // never valid
        [0x22, 0xC0, 0xAF, 0x22],  // overlong "/"
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate U+D800
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xC3, 0x22],  // missing continuation
        [0x22, 0x80, 0x22],  // lone continuation
        [0xEF, 0xBB, 0xBF, 0x31],  // byte-order mark
        [0x5B, 0xC3, 0xA9, 0x5D],  // non-ASCII outside a string
    ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(kind(bytes) == .invalidUTF8)
    }

    @Test func rejectsDuplicateKeys() {
        #expect(kind(#"{"a":1,"a":2}"#) == .duplicateKey("a"))
        #expect(kind(#"{"a":1,"b":{"c":1,"c":1}}"#) == .duplicateKey("c"))
        // The same key spelled with an escape is the same key.
        #expect(kind(#"{"a":1,"\u0061":2}"#) == .duplicateKey("a"))
        // Canonically equivalent but different code points: different keys.
        #expect(kind("{\"\u{E9}\":1,\"e\u{301}\":2}") == nil)
        // Same key in sibling objects is fine.
        #expect(kind(#"[{"a":1},{"a":1}]"#) == nil)
    }

    @Test("duplicates are found in small objects (names compared in turn) and large ones (a set past 8 members)", arguments: [2, 7, 8, 9, 40])
    func rejectsDuplicateKeysAtEverySize(members: Int) {
        func object(_ names: [String]) -> String { "{" + names.map { "\"\($0)\":1" }.joined(separator: ",") + "}" }
        let names = (0..<members).map { "k\($0)" }
        #expect(kind(object(names)) == nil)
        #expect(kind(object(names + ["k0"])) == .duplicateKey("k0"))
        #expect(kind(object(names + [names[members - 1]])) == .duplicateKey(names[members - 1]))
        #expect(kind(object(names + ["k\\u0030"])) == .duplicateKey("k0"))  // "k\u0030" is "k0"
        // Canonically equivalent names stay different names in either regime.
        #expect(kind(object(names + ["\u{E9}", "e\u{301}"])) == nil)
    }

    @Test func depthLimit() {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(kind(ok) == nil)
        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(kind(tooDeep) == .tooDeep)
        let objects = String(repeating: #"{"a":"#, count: 513) + "1" + String(repeating: "}", count: 513)
        #expect(kind(objects) == .tooDeep)
        // Far deeper input fails fast, without recursion.
        #expect(kind(String(repeating: "[", count: 100_000)) == .tooDeep)
    }

    @Test func errorOffsets() {
        do {
            _ = try JSONParser.parse("[1, 2,]")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 6)
            #expect(error.description == "unexpected character ']' at byte 6")
        }
    }

    @Test func acceptsAnyCollectionOfBytes() throws {
        let bytes: ArraySlice<UInt8> = Array("xx[true]".utf8)[2...]
        #expect(try JSONParser.parse(bytes) == [true])
        #expect(try JSONParser.parse(Array("[1]".utf8).lazy.map { $0 }) == [1])
        let v = try Array("{\"k\":\"v\"}".utf8).withUnsafeBytes { try JSONParser.parse($0) }
        #expect(v == ["k": "v"])
    }

    @Test func equalityIsJSONEquality() throws {
        #expect(try parse(#"{"a":1,"b":[1.0]}"#) == parse(#"{"b":[10e-1],"a":1}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1,"b":2}"#))
        #expect(try parse("\"\u{E9}\"") != parse("\"e\u{301}\""))
        #expect(try parse("[1,2]") != parse("[2,1]"))
    }

    @Test func writerRoundTrip() throws {
        let text = #"{"z":[1,2.50,-0,1E5],"a":{"s":"q\"\\\n\u0001é"},"t":true,"n":null}"#
        let v = try parse(text)
        #expect(v.description == #"{"z":[1,2.50,-0,1E5],"a":{"s":"q\"\\\n\u0001é"},"t":true,"n":null}"#)
        #expect(try parse(v.description) == v)
    }

    @Test func numberModel() {
        #expect(JSONNumber("1.5e3") != nil)
        #expect(JSONNumber("01") == nil)
        #expect(JSONNumber(" 1") == nil)
        #expect(JSONNumber("1.5e3")?.int64Value == 1500)
        #expect(JSONNumber("1.25")?.int64Value == nil)
        #expect(JSONNumber("-9223372036854775808")?.int64Value == Int64.min)
        #expect(JSONNumber("9223372036854775808")?.int64Value == nil)
        #expect(JSONNumber("1e400")?.doubleValue == .infinity)
        #expect(JSONNumber(0.1)?.text == "0.1")
        #expect(JSONNumber(-0.0)?.text == "0")
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(1e-7).map { JSONNumber($0.text) != nil } == true)
    }
}
