import Testing
@testable import MCPJailCore

/// Large arguments are validated without a copy of their long strings when the schema only
/// needs their lengths: the parse leaves them out (stand-ins with their lengths), and the
/// verdict must be the one a full parse gives.
@Suite("Deferred strings: validating large arguments without copying them")
struct DeferredStringTests {
    static func deferred(_ json: String, over threshold: Int = 8) throws -> (JSONValue, DeferredStrings) {
        var copy = json
        return try copy.withUTF8 { bytes in try JSONParser.parse(UnsafeRawBufferPointer(bytes), deferringStringsOver: threshold) }
    }

    @Test("long string values become stand-ins with their length in Unicode scalars; keys and short strings stay")
    func standIns() throws {
        let json = #"{"a_very_long_member_name": "0123456789", "short": "abc", "list": ["é€😀é€😀é€😀", "\u00e9\ud83d\ude00\n\"xxxxxxxxxx"]}"#
        let (value, deferred) = try Self.deferred(json)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.members.map(\.key) == ["a_very_long_member_name", "short", "list"])
        #expect(object["short"] == .string("abc"))
        guard case .string(let first)? = object["a_very_long_member_name"],
            case .array(let list)? = object["list"], case .string(let second) = list[0], case .string(let third) = list[1]
        else { Issue.record("not strings"); return }
        #expect(deferred.lengths.count == 3)
        #expect(deferred.lengths[first] == 10)
        #expect(deferred.lengths[second] == 9)  // 9 scalars in 27 bytes
        #expect(deferred.lengths[third] == 14)  // é, 😀 (a surrogate pair), \n, ", 10 x
        #expect(first.hasPrefix("\u{0}dev.mcpjail/deferred-string/"))
    }

    @Test("a long string is still checked in full", arguments: [
        "[\"0123456789\u{1}\"]", "[\"0123456789\\ud800\"]", "[\"0123456789\\x\"]", "[\"0123456789",
    ])
    func stillChecked(_ json: String) {
        #expect(throws: JSONParseError.self) { _ = try Self.deferred(json) }
    }

    @Test("min/maxLength on stand-ins decide as a full parse does; schemas that read contents are not deferred")
    func sameVerdicts() throws {
        let schema = try CompiledSchema(
            JSONValue.object(JSONObject([
                ("type", .string("object")),
                ("properties", .object(JSONObject([
                    ("text", .object(JSONObject([("type", .string("string")), ("minLength", .number(JSONNumber("5")!)), ("maxLength", .number(JSONNumber("12")!))]))),
                    ("items", .object(JSONObject([("type", .string("array")), ("items", .object(JSONObject([("maxLength", .number(JSONNumber("10")!))])))]))),
                ]))),
            ])))
        let samples = ["", "abcd", "abcde", "ééééé", "éééééé", "😀😀😀😀😀", "0123456789ab", "0123456789abc", "é€😀é€😀é€😀é€😀é€😀", "\\n\\t\\u00e9\\ud83d\\ude00"]
        for text in samples {
            for item in samples {
                let json = "{\"text\": \"\(text)\", \"items\": [\"\(item)\", 1]}"
                let full = try schema.validate(json: Array(json.utf8))
                var copy = json
                let viaStandIns = try copy.withUTF8 { bytes in
                    try schema.validate(json: UnsafeRawBufferPointer(bytes), deferringStringsOver: 2)
                }
                let checked = try #require(viaStandIns, "a length-only schema is validated through stand-ins")
                #expect(checked.map(\.instanceLocation) == full.map(\.instanceLocation), "\(json)")
                #expect(checked.map(\.keyword) == full.map(\.keyword), "\(json)")
            }
        }
        for keyword in ["pattern", "enum", "const", "uniqueItems"] {
            let value: JSONValue = switch keyword {
            case "pattern": .string("^a")
            case "enum": .array([.string("a")])
            case "uniqueItems": .bool(true)
            default: .string("a")
            }
            let reading = try CompiledSchema(.object(JSONObject([("items", .object(JSONObject([(keyword, value)])))])))
            var json = "[\"aaaaaaaaaaaaaaaa\"]"
            let verdict = try json.withUTF8 { bytes in try reading.validate(json: UnsafeRawBufferPointer(bytes), deferringStringsOver: 2) }
            #expect(verdict == nil, "\(keyword) reads string contents: no deferred validation")
        }
    }
}
