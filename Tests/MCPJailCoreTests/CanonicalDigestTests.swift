import Testing
@testable import MCPJailCore

/// The streaming digest must agree with the tree-based canonical form on every input.
@Suite struct CanonicalDigestTests {
    static let documents: [String] = [
        #"{}"#, #"[]"#, #"null"#, #"true"#, #""plain""#, #"0"#, #"-0"#, #"1.0"#, #"1e3"#, #"1E-7"#,
        #"12345678901234567890"#, #"0.000001"#, #"-1.25e-29"#,
        #"{"b":2,"a":1}"#, #" { "a" : [ 1 , 2 , { "z" : null , "y" : true } ] } "#,
        #"{"\u0061":"\u00e9\n\t\"\\\/\u001f\u007f","é":"😀","\ud83d\ude00":1}"#,
        #"{"€":1,"a":2,"\ud800\udc00":3,"\uffff":4}"#,
        #"{"nested":{"deeper":{"deepest":[[[]]],"x":"\b\f\r"}}}"#,
        #"["a","\u0000","\u00ff","\u2028"]"#,
    ]

    @Test(arguments: documents)
    func agreesWithTheTreeForm(_ text: String) throws {
        let bytes = Array(text.utf8)
        #expect(try CanonicalDigest.sha256Hex(ofJSON: bytes) == CanonicalJSON.sha256Hex(ofJSON: bytes))
        #expect(try CanonicalDigest.sha256Hex(ofValidatedJSON: bytes) == CanonicalJSON.sha256Hex(ofJSON: bytes))
    }

    @Test func escapedQuotesAndBackslashRunsEndStringsCorrectly() throws {
        for text in [#"{"a":"x\\","b":"\"q\"","c":"\\\"","d":"\\\\"}"#, #"["\\\\\\\"", "\\"]"#] {
            let bytes = Array(text.utf8)
            #expect(try CanonicalDigest.sha256Hex(ofValidatedJSON: bytes) == CanonicalJSON.sha256Hex(ofJSON: bytes))
        }
    }

    @Test func sameValueSameDigestDifferentValueDifferentDigest() throws {
        let a = try CanonicalDigest.sha256Hex(ofJSON: Array(#"{"amount":1.50,"id":"x"}"#.utf8))
        let b = try CanonicalDigest.sha256Hex(ofJSON: Array(#"{ "id" : "\u0078", "amount" : 15e-1 }"#.utf8))
        let c = try CanonicalDigest.sha256Hex(ofJSON: Array(#"{"amount":1.51,"id":"x"}"#.utf8))
        #expect(a == b)
        #expect(a != c)
    }

    @Test(arguments: [#"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#, #""\ud800""#, #""\udc00x""#, "{", #"{"a":1e9999999999}"#])
    func refusesWhatHasNoCanonicalForm(_ text: String) {
        #expect(throws: JSONScanError.self) { try CanonicalDigest.sha256Hex(ofJSON: Array(text.utf8)) }
    }

    @Test func largeStringsStreamThrough() throws {
        let big = "{\"p\":\"" + String(repeating: "0123456789abcdef", count: 300_000) + "\\n\"}"
        let bytes = Array(big.utf8)
        #expect(try CanonicalDigest.sha256Hex(ofJSON: bytes) == CanonicalJSON.sha256Hex(ofJSON: bytes))
    }
}
