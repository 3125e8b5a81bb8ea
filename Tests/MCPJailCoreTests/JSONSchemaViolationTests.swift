import Testing

@testable import MCPJailCore

@Suite("JSONSchema violations")
struct JSONSchemaViolationTests {
    @Test func pointerOfNestedViolation() throws {
        let schema = try compile("""
            {"type": "object", "properties": {"items": {"type": "array", "items": {
              "type": "object", "properties": {"name": {"type": "string"}}}}}}
            """)
        let violation = try #require(try schema.check(#"{"items": [{}, {"name": "a"}, {}, {"name": 5}]}"#))
        #expect(violation.instanceLocation == "/items/3/name")
        #expect(violation.keyword == "type")
        #expect(violation.schemaLocation == "#/properties/items/items/properties/name/type")
        #expect(violation.message == "expected string, got integer")
        #expect(violation.description == "/items/3/name: expected string, got integer (type)")
        #expect(try schema.check(#"{"items": [{"name": "a"}]}"#) == nil)
    }

    @Test func pointerEscapesTildeAndSlash() throws {
        let schema = try compile(#"{"properties": {"a/b~c": {"properties": {"": {"maximum": 1}}}}}"#)
        let violation = try #require(try schema.check(#"{"a/b~c": {"": 2}}"#))
        #expect(violation.instanceLocation == "/a~1b~0c/")
        #expect(violation.keyword == "maximum")
        #expect(violation.schemaLocation == "#/properties/a~1b~0c/properties//maximum")
    }

    @Test func firstViolationInOrder() throws {
        let schema = try compile("""
            {"type": "object", "required": ["path"], "additionalProperties": false,
             "properties": {"path": {"type": "string"}, "n": {"type": "integer", "minimum": 1}}}
            """)
        let missing = try #require(try schema.check(#"{"n": 2}"#))
        #expect(missing.instanceLocation == "")
        #expect(missing.keyword == "required")
        #expect(missing.message == #"missing required property "path""#)
        let extra = try #require(try schema.check(#"{"path": "x", "mode": "w"}"#))
        #expect(extra.instanceLocation == "/mode")
        #expect(extra.keyword == "additionalProperties")
        #expect(extra.schemaLocation == "#/additionalProperties")
        #expect(extra.message == #"property "mode" is not allowed"#)
        // Members are checked in instance order, before `required`.
        let first = try #require(try schema.check(#"{"n": 0, "x": 1}"#))
        #expect(first.instanceLocation == "/n")
        #expect(first.keyword == "minimum")
        #expect(first.message == "0 is less than the minimum 1")
    }

    @Test func messagesDoNotEchoHugeValues() throws {
        let long = String(repeating: "x", count: 100_000)
        let schema = try compile(#"{"pattern": "^\#(String(repeating: "a", count: 300))$"}"#)
        let violation = try #require(schema.validate(.string(long)))
        #expect(violation.message.count < 120)
        let constant = try compile(#"{"const": "\#(long)"}"#)
        #expect(try #require(constant.validate("y")).message.count < 120)
        let choices = try compile(#"{"enum": [\#((0..<5000).map { "\"value\($0)\"" }.joined(separator: ","))]}"#)
        #expect(try #require(choices.validate("nope")).message.count < 120)
        let names = try compile(#"{"propertyNames": {"maxLength": 3}}"#)
        let nameViolation = try #require(names.validate(.object(JSONObject([(long, .null)]))))
        #expect(nameViolation.keyword == "propertyNames")
        #expect(nameViolation.message.count < 200)
    }

    @Test func integersAndExactNumbers() throws {
        let integer = try compile(#"{"type": "integer"}"#)
        #expect(try integer.check("1.0") == nil)
        #expect(try integer.check("1e3") == nil)
        #expect(try integer.check("-0") == nil)
        #expect(try integer.check("1.5")?.keyword == "type")
        #expect(try integer.check("\"1\"")?.message == "expected integer, got string")
        let cents = try compile(#"{"multipleOf": 0.01}"#)
        #expect(try cents.check("19.99") == nil)
        #expect(try cents.check("19.999")?.keyword == "multipleOf")
        #expect(try compile(#"{"multipleOf": 0.1}"#).check("0.3") == nil)
        #expect(try compile(#"{"multipleOf": 3}"#).check("1e999999999")?.keyword == "multipleOf")
        #expect(try compile(#"{"multipleOf": 5}"#).check("1e999999999") == nil)
        let big = try compile(#"{"minimum": 12345678901234567890}"#)
        #expect(try big.check("12345678901234567891") == nil)
        #expect(try big.check("12345678901234567889")?.keyword == "minimum")
        let exclusive = try compile(#"{"exclusiveMaximum": 0.1}"#)
        #expect(try exclusive.check("0.0999999999999999999999") == nil)
        #expect(try exclusive.check("0.1")?.keyword == "exclusiveMaximum")
    }

    @Test func stringLengthCountsCodePoints() throws {
        let schema = try compile(#"{"minLength": 2, "maxLength": 2}"#)
        #expect(try schema.check(#""😀😀""#) == nil)
        #expect(try schema.check(#""é""#)?.keyword == "minLength")  // one code point, two bytes
        #expect(try schema.check("\"e\\u0301\"") == nil)  // two code points, one character
        #expect(try schema.check(#""abc""#)?.keyword == "maxLength")
    }

    @Test func patternsFollowECMA262() throws {
        let digits = try compile(#"{"pattern": "^\\d+$"}"#)
        #expect(try digits.check(#""123""#) == nil)
        #expect(try digits.check(#""١٢٣""#)?.keyword == "pattern")  // Arabic-Indic digits are not \d
        #expect(try digits.check(#""123\n""#)?.keyword == "pattern")  // $ is the end of input
        let word = try compile(#"{"pattern": "^\\w$"}"#)
        #expect(try word.check(#""é""#)?.keyword == "pattern")
        let space = try compile(#"{"pattern": "^\\s$"}"#)
        #expect(try space.check("\"\\u000b\"") == nil)
        #expect(try space.check("\"\\ufeff\"") == nil)
        let dot = try compile(#"{"pattern": "^.$"}"#)
        #expect(try dot.check("\"\\u0085\"") == nil)
        #expect(try dot.check("\"\\n\"")?.keyword == "pattern")
        #expect(try dot.check(#""😀""#) == nil)
        let unanchored = try compile(#"{"pattern": "b"}"#)
        #expect(try unanchored.check(#""abc""#) == nil)
        let classes = try compile(#"{"pattern": "^[[:a-]+$"}"#)  // ECMA: '[' ':' 'a' '-' literals
        #expect(try classes.check(#""[:a-""#) == nil)
        #expect(try classes.check(#""b""#)?.keyword == "pattern")
    }

    @Test func formatIsAnAnnotation() throws {
        let schema = try compile(#"{"format": "email", "type": "string"}"#)
        #expect(try schema.check(#""not an email""#) == nil)
    }

    @Test func draft7RefOverridesSiblings() throws {
        let text = ##"{"definitions": {"a": {"type": "integer"}}, "$ref": "#/definitions/a", "maximum": 1}"##
        #expect(try compile(text, dialect: .draft7).check("5") == nil)
        #expect(try compile(text, dialect: .draft2020_12).check("5")?.keyword == "maximum")
        // `$schema` wins over the caller's default.
        let declared = ##"{"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/definitions/a","##
            + #" "maximum": 1, "definitions": {"a": {"type": "integer"}}}"#
        #expect(try compile(declared, dialect: .draft2020_12).check("5") == nil)
    }

    @Test func draft7TupleItems() throws {
        let text = #"{"items": [{"type": "string"}], "additionalItems": false}"#
        let schema = try compile(text, dialect: .draft7)
        #expect(try schema.check(#"["a"]"#) == nil)
        let violation = try #require(try schema.check(#"["a", 1]"#))
        #expect(violation.instanceLocation == "/1")
        #expect(violation.keyword == "additionalItems")
        #expect(try compileError(text, dialect: .draft2020_12)?.kind == .invalidKeyword)
    }

    @Test func unevaluatedPropertiesSeeAnnotationsAcrossApplicators() throws {
        let schema = try compile("""
            {"properties": {"kind": {"enum": ["file", "url"]}},
             "if": {"properties": {"kind": {"const": "file"}}},
             "then": {"properties": {"path": {"type": "string"}}},
             "else": {"properties": {"url": {"type": "string"}}},
             "anyOf": [{"properties": {"a": true}}, {"properties": {"b": true}}],
             "unevaluatedProperties": false}
            """)
        #expect(try schema.check(#"{"kind": "file", "path": "/x", "a": 1, "b": 2}"#) == nil)
        #expect(try schema.check(#"{"kind": "url", "url": "u"}"#) == nil)
        let violation = try #require(try schema.check(#"{"kind": "url", "path": "/x"}"#))
        #expect(violation.instanceLocation == "/path")
        #expect(violation.keyword == "unevaluatedProperties")
    }

    @Test func parseAndValidateBytes() throws {
        let schema = try compile(#"{"required": ["a"]}"#)
        #expect(try schema.validate(json: Array(#"{"a": 1}"#.utf8)) == nil)
        #expect(try schema.validate(json: Array(#"{"b": 1}"#.utf8))?.keyword == "required")
        #expect(throws: JSONParseError.self) { try schema.validate(json: Array(#"{"a": 1,}"#.utf8)) }
    }
}
