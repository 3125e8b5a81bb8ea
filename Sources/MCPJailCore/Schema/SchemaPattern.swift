/// A compiled `pattern` / `patternProperties` regular expression: ECMA-262 source translated
/// by ``ECMARegex`` and run by PCRE2 (``RegularExpression``).
///
/// Matching is a search, not anchored, as in JSON Schema (`"a"` matches `"xax"`). A match
/// that takes more than PCRE2's limits is neither a match nor a mismatch: ``matches(_:)``
/// says nil, and the validator refuses the instance rather than guess.
final class SchemaPattern: Sendable {
    /// The pattern as the schema wrote it.
    let source: String
    private let regex: RegularExpression
    /// Set when the pattern is a plain literal (`^abc$`-free, no metacharacters): then a
    /// substring search is enough and the engine is skipped.
    private let literal: String?

    init(_ source: String) throws(ECMARegex.TranslationError) {
        self.source = source
        let translated = try ECMARegex.translate(source)
        do {
            regex = try RegularExpression(translated, unsetBackreferencesMatchEmpty: true)
        } catch {
            throw ECMARegex.TranslationError(message: "not a valid regular expression (\(error.message))")
        }
        let metacharacters = Set("\\^$.|?*+()[]{}".unicodeScalars)
        literal = source.unicodeScalars.contains(where: metacharacters.contains) ? nil : source
    }

    /// Whether the pattern matches somewhere in `string`; nil when the engine gave up
    /// (``RegularExpression/matchLimit``).
    func matches(_ string: String) -> Bool? {
        if let literal {
            return literal.isEmpty || string.utf8.firstRange(of: literal.utf8) != nil
        }
        switch regex.firstMatch(in: string) {
        case .found: return true
        case .notFound: return false
        case .tooCostly: return nil
        }
    }

    /// The refusal when the engine gave up on `pattern`.
    static func tooCostly(_ pattern: SchemaPattern) -> String {
        "the pattern \(SchemaQuote.string(pattern.source)) took too long to evaluate (more than "
            + "\(RegularExpression.matchLimit) backtracking steps)"
    }
}
