import Testing

@testable import MCPJailCore

/// PCRE2 behind `pattern`, `patternProperties` and the error sanitizer: matches, gives up
/// within its limits on catastrophic patterns, and the validator then refuses, not guesses.
@Suite("Regular expressions (PCRE2)")
struct RegularExpressionTests {
    @Test("search, byte offsets, look-behind, replacement")
    func basics() throws {
        let word = try RegularExpression("(?<=x)b+")
        #expect(word.firstMatch(in: "abbxbb") == .found(4..<6))
        #expect(word.firstMatch(in: "abb") == .notFound)
        #expect(word.firstMatch(in: "") == .notFound)
        #expect(try RegularExpression("^$").firstMatch(in: "") == .found(0..<0))
        // Offsets are UTF-8 bytes: "é" is two.
        #expect(try RegularExpression("b").firstMatch(in: "éb") == .found(2..<3))
        let digits = try RegularExpression("[0-9]+")
        #expect(digits.replacingMatches(in: "a1b22c", with: "#") == "a#b#c")
        #expect(digits.replacingMatches(in: "none", with: "#") == "none")
        // An empty match moves on by a whole character, not into the middle of "é".
        #expect(try RegularExpression("x*").replacingMatches(in: "éa", with: "-") == "-é-a-")
    }

    @Test("a pattern that does not compile says why and where")
    func compileErrors() {
        #expect(throws: RegularExpression.CompileError.self) { try RegularExpression("(") }
        do {
            _ = try RegularExpression("ab)")
            Issue.record("compiled")
        } catch {
            #expect(error.offset == 2)
            #expect(error.message.contains("parenthesis"))
        }
    }

    @Test("catastrophic backtracking gives up within the match limit")
    func matchLimit() throws {
        let evil = try RegularExpression("^(a+)+$")
        let subject = String(repeating: "a", count: 40) + "!"
        let clock = ContinuousClock()
        let started = clock.now
        #expect(evil.firstMatch(in: subject) == .tooCostly)
        // Not a timing assertion on the result: a bound far above what the limit allows, so
        // that an engine without a limit (2^40 steps) fails here instead of hanging the run.
        #expect(clock.now - started < .seconds(30))
        #expect(evil.firstMatch(in: "aaaa") == .found(0..<4))
        // The replacement hides what it could not inspect.
        let scrub = try RegularExpression("(a+)+$")
        #expect(scrub.replacingMatches(in: "x " + subject, with: "<?>") == "<?>")
    }

    @Test("a schema pattern the engine gives up on refuses the value, also as a property name")
    func schemaRefusesWhatItCannotDecide() throws {
        let key = String(repeating: "a", count: 40) + "!"
        let pattern = try compile(#"{"type": "string", "pattern": "^(a+)+$"}"#)
        let violation = try #require(try pattern.check("\"\(key)\""))
        #expect(violation.keyword == "pattern")
        #expect(violation.message.contains("took too long to evaluate"))
        #expect(try pattern.check("\"aaaa\"") == nil)
        #expect(try pattern.check("\"aab!\"")?.message.contains("does not match") == true)

        // Were the key taken as "not matching", additionalProperties would let it through.
        let properties = try compile(#"{"patternProperties": {"^(a+)+$": {"type": "integer"}}}"#)
        let refused = try #require(try properties.check(#"{"\#(key)": 1}"#))
        #expect(refused.keyword == "patternProperties")
        #expect(try properties.check(#"{"aaa": 1}"#) == nil)
        #expect(try properties.check(#"{"aaa": "x"}"#)?.keyword == "type")
    }

    @Test("ECMA-262 property names PCRE2 spells differently", arguments: [
        (#"^\p{Letter}+$"#, "héllo", true), (#"^\p{Letter}+$"#, "h3", false),
        (#"^\p{General_Category=Decimal_Number}+$"#, "٣4", true), (#"^\p{gc=Lu}$"#, "É", true),
        (#"^\P{Lowercase_Letter}$"#, "a", false), (#"^\p{Script=Greek}+$"#, "αβ", true),
        (#"^[\p{Nd}x]+$"#, "x٣", true), (#"^\p{Assigned}$"#, "a", true), (#"^\P{Assigned}$"#, "a", false),
        (#"^\S+$"#, "a\u{A0}", false), (#"^[\S]+$"#, "ab", true), (#"^[^\S]$"#, "\u{FEFF}", true),
        (#"^[\D\s]+$"#, "a ", true), (#"^[\W]$"#, "é", true), (#"^[\W]$"#, "_", false),
    ])
    func ecmaProperties(pattern: String, text: String, matches: Bool) throws {
        #expect(try SchemaPattern(pattern).matches(text) == matches)
    }
}
