import Testing

@testable import MCPJailCore

@Suite("JSONSchema strict mode and combining")
struct JSONSchemaStrictTests {
    @Test func strictRejectsUnnamedProperties() throws {
        let text = #"{"type": "object", "properties": {"a": {"type": "integer"}}}"#
        #expect(try compile(text).check(#"{"a": 1, "b": 2}"#) == nil)
        let strict = try compile(text, strict: true)
        #expect(try strict.check(#"{"a": 1}"#) == nil)
        let violation = try #require(try strict.check(#"{"a": 1, "b": 2}"#))
        #expect(violation.instanceLocation == "/b")
        #expect(violation.keyword == "unevaluatedProperties")
        #expect(violation.message.contains("strict"))
    }

    @Test func propertiesNamedInBranchesCount() throws {
        let strict = try compile("""
            {"properties": {"a": {}},
             "allOf": [{"properties": {"b": {}}}],
             "if": {"properties": {"kind": {"const": "x"}}, "required": ["kind"]},
             "then": {"properties": {"x": {}}},
             "oneOf": [{"properties": {"o": {"type": "string"}}, "required": ["o"]}, {"required": ["a"]}]}
            """, strict: true)
        #expect(try strict.check(#"{"a": 1, "b": 2}"#) == nil)
        #expect(try strict.check(#"{"o": "s", "b": 2, "kind": "x", "x": 1}"#) == nil)
        // `kind` is named by the `if` that holds; `x` only by a `then` that did not apply.
        #expect(try strict.check(#"{"a": 1, "kind": "y", "x": 1}"#)?.instanceLocation == "/kind")
        #expect(try strict.check(#"{"a": 1, "c": 1}"#)?.instanceLocation == "/c")
    }

    @Test func strictAppliesToNestedObjectsAndRefs() throws {
        let strict = try compile("""
            {"type": "object",
             "properties": {
               "config": {"type": "object", "properties": {"depth": {"type": "integer"}}},
               "address": {"$ref": "#/$defs/address"},
               "list": {"type": "array", "items": {"properties": {"n": {}}}},
               "meta": {"type": "object"}},
             "$defs": {"address": {"properties": {"street": {"type": "string"}}}}}
            """, strict: true)
        #expect(try strict.check(#"{"config": {"depth": 1}, "address": {"street": "x"}, "list": [{"n": 1}]}"#) == nil)
        #expect(try strict.check(#"{"config": {"depth": 1, "x": 2}}"#)?.instanceLocation == "/config/x")
        #expect(try strict.check(#"{"address": {"street": "s", "zip": 1}}"#)?.instanceLocation == "/address/zip")
        #expect(try strict.check(#"{"list": [{"n": 1}, {"m": 2}]}"#)?.instanceLocation == "/list/1/m")
        // A nested free-form object (type object, no properties) stays open.
        #expect(try strict.check(#"{"meta": {"anything": [1, 2]}}"#) == nil)
    }

    @Test func rootObjectWithoutPropertiesIsClosed() throws {
        let strict = try compile(#"{"type": "object"}"#, strict: true)
        #expect(try strict.check("{}") == nil)
        #expect(try strict.check(#"{"a": 1}"#)?.instanceLocation == "/a")
        #expect(try compile(#"{"type": "object"}"#).check(#"{"a": 1}"#) == nil)
    }

    @Test func explicitlyOpenSchemasStayOpen() throws {
        let open = try compile(#"{"properties": {"a": {}}, "additionalProperties": true}"#, strict: true)
        #expect(try open.check(#"{"a": 1, "b": 2}"#) == nil)
        let typed = try compile(#"{"properties": {"a": {}}, "additionalProperties": {"type": "string"}}"#, strict: true)
        #expect(try typed.check(#"{"a": 1, "b": "s"}"#) == nil)
        #expect(try typed.check(#"{"a": 1, "b": 2}"#)?.keyword == "type")
        let patterned = try compile(#"{"properties": {"a": {}}, "patternProperties": {"^x-": {}}}"#, strict: true)
        #expect(try patterned.check(#"{"a": 1, "x-b": 2}"#) == nil)
        #expect(try patterned.check(#"{"a": 1, "y": 2}"#) == nil)  // has patternProperties: not closed
        // A branch's additionalProperties evaluates its members for the whole object.
        let branch = try compile(#"{"properties": {"a": {}}, "allOf": [{"additionalProperties": true}]}"#, strict: true)
        #expect(try branch.check(#"{"a": 1, "z": 2}"#) == nil)
    }

    @Test func namesArePooledPerInstanceLocation() throws {
        // A profile fragment that constrains one member of a nested object does not close it
        // against the members the server's schema names there.
        let server = try json(#"{"properties": {"opts": {"properties": {"follow": {}, "depth": {"type": "integer"}}}}}"#)
        let fragment = try json(#"{"properties": {"opts": {"properties": {"follow": {"const": false}}}}}"#)
        let both = try CompiledSchema(allOf: [server, fragment], strict: true)
        #expect(try both.check(#"{"opts": {"follow": false, "depth": 2}}"#) == nil)
        #expect(try both.check(#"{"opts": {"follow": false, "x": 2}}"#)?.instanceLocation == "/opts/x")
        // `properties` and `patternProperties` applied to the same member pool their names.
        let twice = try compile("""
            {"properties": {"a": {"properties": {"p": {}}}}, "patternProperties": {"^a$": {"properties": {"q": {}}}}}
            """, strict: true)
        #expect(try twice.check(#"{"a": {"p": 1, "q": 2}}"#) == nil)
        #expect(try twice.check(#"{"a": {"p": 1, "r": 2}}"#)?.instanceLocation == "/a/r")
        // `items` and `contains` applied to the same element pool their names too.
        let items = try compile("""
            {"items": {"properties": {"a": {}, "b": {}}}, "contains": {"properties": {"a": {"const": 1}}, "required": ["a"]}}
            """, strict: true)
        #expect(try items.check(#"[{"a": 1, "b": 2}]"#) == nil)
        #expect(try items.check(#"[{"a": 1, "c": 2}]"#)?.instanceLocation == "/0/c")
    }

    @Test func namesFromBranchesThatFailDoNotCount() throws {
        let strict = try compile("""
            {"properties": {"k": {}},
             "anyOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
                       {"properties": {"b": {}}, "required": ["b"]}],
             "not": {"properties": {"n": {"const": 1}}, "required": ["n"]}}
            """, strict: true)
        #expect(try strict.check(#"{"k": 1, "b": 1}"#) == nil)
        #expect(try strict.check(#"{"k": 1, "a": "s"}"#) == nil)
        // `a` is named only by the branch that fails (a is not a string).
        #expect(try strict.check(#"{"k": 1, "b": 1, "a": 5}"#)?.instanceLocation == "/a")
        // `n` is named only inside `not`.
        #expect(try strict.check(#"{"k": 1, "b": 1, "n": 2}"#)?.instanceLocation == "/n")
    }

    @Test func strictWorksForDraft7() throws {
        let text = #"{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {}},"#
            + #" "allOf": [{"properties": {"b": {}}}]}"#
        let strict = try compile(text, strict: true)
        #expect(try strict.check(#"{"a": 1, "b": 2}"#) == nil)
        #expect(try strict.check(#"{"a": 1, "c": 2}"#)?.instanceLocation == "/c")
    }

    @Test func combineServerSchemaWithProfileFragment() throws {
        let server = try json("""
            {"type": "object",
             "properties": {"path": {"type": "string", "maxLength": 4096}, "mode": {"enum": ["r", "w"]},
                            "opts": {"$ref": "#/$defs/opts"}},
             "required": ["path"],
             "$defs": {"opts": {"type": "object", "properties": {"follow": {"type": "boolean"}}}}}
            """)
        let fragment = try json("""
            {"properties": {"path": {"pattern": "^/srv/"}, "mode": {"const": "r"}, "opts": {"$ref": "#/$defs/opts"}},
             "$defs": {"opts": {"properties": {"follow": {"const": false}}}}}
            """)
        let both = try CompiledSchema(allOf: [server, fragment], strict: true)
        #expect(try both.check(#"{"path": "/srv/data"}"#) == nil)
        #expect(try both.check(#"{"path": "/srv/data", "mode": "r", "opts": {"follow": false}}"#) == nil)

        let outside = try #require(try both.check(#"{"path": "/etc/passwd"}"#))
        #expect(outside.instanceLocation == "/path")
        #expect(outside.keyword == "pattern")
        #expect(outside.schemaLocation == "#/allOf/1/properties/path/pattern")
        #expect(try both.check(#"{"path": "/srv/x", "mode": "w"}"#)?.schemaLocation == "#/allOf/1/properties/mode/const")
        // Each document's "#/$defs/opts" is its own.
        #expect(try both.check(#"{"path": "/srv/x", "opts": {"follow": true}}"#)?.schemaLocation
                    == "#/allOf/1/$defs/opts/properties/follow/const")
        #expect(try both.check(#"{"path": "/srv/x", "opts": {"follow": 1}}"#)?.schemaLocation
                    == "#/allOf/0/$defs/opts/properties/follow/type")
        #expect(try both.check("{}")?.schemaLocation == "#/allOf/0/required")
        // Strict: a property neither document names.
        #expect(try both.check(#"{"path": "/srv/x", "extra": 1}"#)?.instanceLocation == "/extra")
        #expect(try both.check(#"{"path": "/srv/x", "opts": {"follow": false, "x": 1}}"#)?.instanceLocation
                    == "/opts/x")
        // Without strict, the server's open object accepts extra members.
        let loose = try CompiledSchema(allOf: [server, fragment])
        #expect(try loose.check(#"{"path": "/srv/x", "extra": 1}"#) == nil)
    }

    @Test func combineKeepsEachDocumentsDialect() throws {
        let server = try json("""
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
             "properties": {"n": {"$ref": "#/definitions/n", "maximum": 1}},
             "definitions": {"n": {"type": "integer"}}}
            """)
        let fragment = try json(#"{"properties": {"n": {"maximum": 10}}}"#)
        let both = try CompiledSchema(allOf: [server, fragment])
        #expect(try both.check(#"{"n": 5}"#) == nil)  // draft-07 ignores the sibling maximum 1
        #expect(try both.check(#"{"n": 11}"#)?.schemaLocation == "#/allOf/1/properties/n/maximum")
        #expect(throws: SchemaError.self) { try CompiledSchema(allOf: []) }
    }
}
