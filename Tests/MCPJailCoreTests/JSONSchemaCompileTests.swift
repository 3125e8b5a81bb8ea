import Testing

@testable import MCPJailCore

@Suite("JSONSchema compile errors and robustness")
struct JSONSchemaCompileTests {
    @Test(arguments: [
        (#"{"type": 5}"#, SchemaError.Kind.invalidKeyword, "#/type"),
        (#"{"type": "strin"}"#, .invalidKeyword, "#/type"),
        (#"{"type": []}"#, .invalidKeyword, "#/type"),
        (#"{"minimum": "x"}"#, .invalidKeyword, "#/minimum"),
        (#"{"exclusiveMinimum": true}"#, .invalidKeyword, "#/exclusiveMinimum"),
        (#"{"maxLength": -1}"#, .invalidKeyword, "#/maxLength"),
        (#"{"maxItems": 1.5}"#, .invalidKeyword, "#/maxItems"),
        (#"{"multipleOf": 0}"#, .invalidKeyword, "#/multipleOf"),
        (#"{"required": "a"}"#, .invalidKeyword, "#/required"),
        (#"{"required": [1]}"#, .invalidKeyword, "#/required"),
        (#"{"enum": "a"}"#, .invalidKeyword, "#/enum"),
        (#"{"allOf": []}"#, .invalidKeyword, "#/allOf"),
        (#"{"properties": {"a": 5}}"#, .invalidKeyword, "#/properties/a"),
        (#"{"properties": []}"#, .invalidKeyword, "#/properties"),
        (#"{"uniqueItems": "yes"}"#, .invalidKeyword, "#/uniqueItems"),
        (#"{"format": 1}"#, .invalidKeyword, "#/format"),
        (#"{"$anchor": "1bad"}"#, .invalidKeyword, "#/$anchor"),
        (#"{"pattern": "("}"#, .invalidPattern, "#/pattern"),
        (#"{"pattern": "\\a"}"#, .invalidPattern, "#/pattern"),
        (#"{"pattern": "a**"}"#, .invalidPattern, "#/pattern"),
        (#"{"patternProperties": {"(?i)x": {}}}"#, .invalidPattern, "#/patternProperties"),
        (##"{"$ref": "#/$defs/missing"}"##, .unresolvableReference, "#/$ref"),
        (##"{"$ref": "#nowhere"}"##, .unresolvableReference, "#/$ref"),
        (##"{"$ref": "#/a~2b"}"##, .unresolvableReference, "#/$ref"),
        (#"{"properties": {"a": {"$ref": "http://example.com/s.json"}}}"#, .unresolvableReference, "#/properties/a/$ref"),
        (#"{"$ref": "https://json-schema.org/draft/2020-12/schema"}"#, .unresolvableReference, "#/$ref"),
        (##"{"$dynamicRef": "other.json#x"}"##, .unresolvableReference, "#/$dynamicRef"),
        (##"{"$schema": "http://json-schema.org/draft-04/schema#"}"##, .unsupportedDialect, "#/$schema"),
        (#"{"$schema": "https://json-schema.org/draft/2019-09/schema"}"#, .unsupportedDialect, "#/$schema"),
        (##"{"$ref": "#"}"##, .referenceCycle, "#"),
        (##"{"anyOf": [{"type": "string"}, {"$ref": "#"}]}"##, .referenceCycle, "#"),
        (##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"not": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"}"##,
         .referenceCycle, "#/$defs/a"),
    ])
    func invalidSchemasAreRefused(_ text: String, _ kind: SchemaError.Kind, _ location: String) throws {
        let error = try #require(try compileError(text), "\(text) compiled")
        #expect(error.kind == kind, "\(text): \(error)")
        #expect(error.schemaLocation == location, "\(text): \(error)")
        #expect(!error.message.isEmpty)
    }

    @Test func referencesWithinTheDocument() throws {
        let schema = try compile("""
            {"$id": "https://example.com/root.json",
             "properties": {
               "a": {"$ref": "#/$defs/with~1slash"},
               "b": {"$ref": "#/$defs/percent%25sign"},
               "c": {"$ref": "#name"},
               "d": {"$ref": "item.json"},
               "e": {"$ref": "https://example.com/item.json#/$defs/inner"}},
             "$defs": {
               "with/slash": {"type": "integer"},
               "percent%sign": {"type": "string"},
               "named": {"$anchor": "name", "type": "boolean"},
               "item": {"$id": "item.json", "type": "array", "$defs": {"inner": {"type": "null"}}}}}
            """)
        #expect(try schema.check(#"{"a": 1, "b": "s", "c": true, "d": [], "e": null}"#) == nil)
        #expect(try schema.check(#"{"a": "x"}"#)?.schemaLocation == "#/$defs/with~1slash/type")
        #expect(try schema.check(#"{"b": 1}"#)?.schemaLocation == "#/$defs/percent%sign/type")
        #expect(try schema.check(#"{"c": 1}"#)?.schemaLocation == "#/$defs/named/type")
        #expect(try schema.check(#"{"d": 1}"#)?.schemaLocation == "#/$defs/item/type")
        #expect(try schema.check(#"{"e": 1}"#)?.schemaLocation == "#/$defs/item/$defs/inner/type")
    }

    @Test func recursionThroughTheInstanceIsFine() throws {
        let tree = try compile(##"{"type": "object", "properties": {"child": {"$ref": "#"}, "v": {"type": "integer"}}}"##)
        var text = #"{"v": 1}"#
        for _ in 0..<50 { text = #"{"child": \#(text)}"# }
        #expect(try tree.check(text) == nil)
        let bad = text.replacingOccurrences(of: #"{"v": 1}"#, with: #"{"v": "x"}"#)
        let violation = try #require(try tree.check(bad))
        #expect(violation.instanceLocation == String(repeating: "/child", count: 50) + "/v")
    }

    @Test func deepInstancesFailClosed() throws {
        let schema = try compile(##"{"items": {"$ref": "#"}}"##)
        var value = JSONValue.array([])
        for _ in 0..<2_000 { value = .array([value]) }
        let violation = try #require(schema.validate(value))
        #expect(violation.keyword == "depth")
        #expect(!schema.isValid(value))
        var shallow = JSONValue.array([])
        for _ in 0..<100 { shallow = .array([shallow]) }
        #expect(schema.isValid(shallow))
    }

    @Test func deepAndLargeSchemasAreRefused() throws {
        var text = "true"
        for _ in 0..<200 { text = #"{"items": \#(text)}"# }
        #expect(try compileError(text)?.kind == .tooLarge)
        let many = "{" + (0..<100).map { #""p\#($0)": {"type": "string"}"# }.joined(separator: ",") + "}"
        let limits = CompiledSchema.Limits(maxNodes: 50)
        #expect(throws: SchemaError.self) { try compile(#"{"properties": \#(many)}"#, limits: limits) }
        let pattern = String(repeating: "a", count: ECMARegex.maxPatternLength + 1)
        #expect(try compileError(#"{"pattern": "\#(pattern)"}"#)?.kind == .invalidPattern)
    }

    @Test func largeInstancesStayFast() throws {
        let unique = try compile(#"{"uniqueItems": true}"#)
        let items = (0..<20_000).map { JSONValue.number(JSONNumber($0)) }
        #expect(unique.isValid(.array(items)))
        let duplicate = try #require(unique.validate(.array(items + [.number(JSONNumber(7))])))
        #expect(duplicate.message == "items 7 and 20000 are equal")
        let huge = try compile(#"{"multipleOf": 1e-999999999, "maximum": 1e999999999}"#)
        #expect(try huge.check("123.456e-5") == nil)
    }

    @Test func compiledSchemasAreSendable() async throws {
        let schema = try compile(#"{"properties": {"n": {"type": "integer", "pattern": "x"}}, "required": ["n"]}"#)
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<8 {
                group.addTask { schema.isValid(.object(JSONObject([("n", .number(JSONNumber(i)))]))) }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results == Array(repeating: true, count: 8))
    }
}
