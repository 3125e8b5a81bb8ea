import Testing

@testable import MCPJailCore

@Suite("Canonical JSON")
struct CanonicalJSONTests {
    func canonical(_ text: String) throws -> String {
        String(decoding: try CanonicalJSON.canonicalize(Array(text.utf8)), as: UTF8.self)
    }

    func digest(_ text: String) throws -> String { try CanonicalJSON.sha256Hex(ofJSON: Array(text.utf8)) }

    @Test(arguments: [
        ("1", "1"), ("1.0", "1"), ("10e-1", "1"), ("1E0", "1"), ("0.1e1", "1"), ("100e-2", "1"),
        ("-0", "0"), ("-0.0e5", "0"), ("0e-7", "0"), ("0.000", "0"),
        ("1.5e3", "1500"), ("1500", "1500"), ("15E+2", "1500"), ("-1.50", "-1.5"),
        ("0.000001", "0.000001"), ("1e-6", "0.000001"), ("0.0000001", "1e-7"), ("1e-7", "1e-7"),
        ("123e-20", "1.23e-18"), ("-12.5e-30", "-1.25e-29"),
        ("12345678901234567890", "12345678901234567890"), ("1.2345678901234567890e19", "12345678901234567890"),
        ("123456789012345678901", "123456789012345678901"),
        ("1e21", "1e+21"), ("1e20", "100000000000000000000"), ("1234567890123456789012", "1.234567890123456789012e+21"),
        ("9007199254740993", "9007199254740993"), ("0.1000000000000000000001", "0.1000000000000000000001"),
        ("10.50", "10.5"), ("0.5", "0.5"), ("5e-324", "5e-324"), ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("1e999999999", "1e+999999999"), ("0.5e0", "0.5"),
    ])
    func numberNormalForm(_ input: String, _ expected: String) throws {
        #expect(try canonical(input) == expected, "\(input)")
        // The normal form is itself valid JSON and a fixed point.
        #expect(try canonical(expected) == expected)
    }

    @Test func keysSortedByUTF16CodeUnits() throws {
        // RFC 8785 §3.2.3's example: sorting by UTF-16 code units puts U+1F600 (a surrogate pair,
        // 0xD83D…) before U+FB33 (0xFB33), unlike sorting by code points.
        let text = "{\"\u{FB33}\":1,\"\u{1F600}\":2,\"a\":3,\"B\":4,\"\u{80}\":5,\"aa\":6,\"\":7}"
        #expect(try canonical(text) == "{\"\":7,\"B\":4,\"a\":3,\"aa\":6,\"\u{80}\":5,\"\u{1F600}\":2,\"\u{FB33}\":1}")
    }

    @Test func nestedAndNoWhitespace() throws {
        #expect(try canonical(" { \"b\" : [ 3 , { \"d\":1, \"c\" : 2 } ] , \"a\" : null } ")
            == #"{"a":null,"b":[3,{"c":2,"d":1}]}"#)
        #expect(try canonical("[]") == "[]")
        #expect(try canonical("{}") == "{}")
        #expect(try canonical("[true,false,null]") == "[true,false,null]")
    }

    @Test func minimalStringEscaping() throws {
        #expect(try canonical(#""\u0041\u00e9\/\u2028""#) == "\"Aé/\u{2028}\"")
        #expect(try canonical(#""\u0000\u0008\u0009\u000a\u000c\u000d\u001f\u007f""#)
            == "\"\\u0000\\b\\t\\n\\f\\r\\u001f\u{7F}\"")
        #expect(try canonical(#""\"\\""#) == #""\"\\""#)
        #expect(try canonical(#""\ud83d\ude00""#) == "\"😀\"")
    }

    @Test func rfc8785Example() throws {
        // RFC 8785 §3.2.2 example input (numbers chosen to be exact doubles' shortest forms).
        let input = #"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#
        // Only 333333333.33333329 differs from RFC 8785, which rounds it through a double
        // (333333333.3333333); this form keeps the exact decimal.
        #expect(try canonical(input)
            == #"{"literals":[null,true,false],"numbers":[333333333.33333329,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#)
    }

    @Test func sameValueDifferentTextSameDigest() throws {
        let a = try digest(#"{"path": "/tmp/x", "n": 1.0, "tags": ["a", "b"], "deep": {"y": 1e2, "x": -0}}"#)
        let b = try digest(#"{"deep":{"x":0,"y":100},"tags":["a","b"],"n":1,"path":"\/tmp\/x"}"#)
        let c = try digest("{\n  \"n\" : 10E-1 ,\"path\":\"\\u002ftmp\\u002fx\",\"tags\":[\"\\u0061\",\"b\"],\"deep\":{\"y\":100.000,\"x\":0.0}}")
        #expect(a == b)
        #expect(a == c)
        #expect(a.count == 64)
        #expect(a.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }

    @Test func differentValuesDifferentDigests() throws {
        let texts = [
            #"{"a":1}"#, #"{"a":"1"}"#, #"{"a":1.0000000000000000001}"#, #"{"a":[1]}"#, #"{"a":true}"#,
            #"{"a":null}"#, #"{}"#, #"{"A":1}"#, #"{"a":1,"b":null}"#, #"[1,2]"#, #"[2,1]"#,
            #"12345678901234567890"#, #"12345678901234567891"#, #"1e-7"#, #"1e-8"#, "\"\u{E9}\"", "\"e\u{301}\"",
            #""a\u0000""#, #""a""#,
        ]
        let digests = try texts.map(digest)
        #expect(Set(digests).count == texts.count)
    }

    @Test func knownDigest() throws {
        // SHA-256 of the 7 bytes {"a":1}
        #expect(try digest(#" { "a" : 1.0 } "#) == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862")
    }

    @Test func invalidJSONThrows() {
        #expect(throws: JSONParseError.self) { try CanonicalJSON.sha256Hex(ofJSON: Array(#"{"a":1,}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try CanonicalJSON.sha256Hex(ofJSON: Array(#"{"a":1,"a":1}"#.utf8)) }
    }

    @Test func serializeBuiltValues() {
        let v: JSONValue = ["z": [1, "two", nil], "a": ["k": true]]
        #expect(String(decoding: CanonicalJSON.serialize(v), as: UTF8.self) == #"{"a":{"k":true},"z":[1,"two",null]}"#)
    }

    @Test func writerEscapesLikeCanonical() {
        #expect(JSONWriter.quoted("a\"b\\c\n\u{1}\u{7F}é") == "\"a\\\"b\\\\c\\n\\u0001\u{7F}é\"")
        var w = JSONObjectWriter()
        w.field("s", "x")
        w.field("n", 5)
        w.field("b", false)
        w.optionalField("skip", nil as String?)
        w.field("raw", rawJSON: Array("[1]".utf8))
        #expect(String(decoding: w.finish(), as: UTF8.self) == #"{"s":"x","n":5,"b":false,"raw":[1]}"#)
    }
}
