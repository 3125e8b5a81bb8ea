import Foundation

/// A compiled `pattern` / `patternProperties` regular expression: ECMA-262 source translated
/// by ``ECMARegex`` and run by Foundation's `NSRegularExpression` (ICU).
///
/// Matching is a search, not anchored, as in JSON Schema (`"a"` matches `"xax"`).
/// `NSRegularExpression` is immutable and safe to use from several threads (on Linux,
/// CoreFoundation checks the ICU matcher out per call and clones it when it is busy), hence
/// the unchecked `Sendable`. There is no match-time limit (see ``ECMARegex``).
final class SchemaPattern: @unchecked Sendable {
    /// The pattern as the schema wrote it.
    let source: String
    private let regex: NSRegularExpression
    /// Set when the pattern is a plain literal (`^abc$`-free, no metacharacters): then a
    /// substring search is enough and ICU is skipped.
    private let literal: String?

    init(_ source: String) throws(ECMARegex.TranslationError) {
        self.source = source
        let translated = try ECMARegex.translate(source)
        do {
            regex = try NSRegularExpression(pattern: translated, options: [])
        } catch {
            throw ECMARegex.TranslationError(message: "not a valid regular expression")
        }
        let metacharacters = Set("\\^$.|?*+()[]{}".unicodeScalars)
        literal = source.unicodeScalars.contains(where: metacharacters.contains) ? nil : source
    }

    /// Whether the pattern matches somewhere in `string`.
    func matches(_ string: String) -> Bool {
        if let literal {
            return literal.isEmpty || string.utf8.firstRange(of: literal.utf8) != nil
        }
        let range = NSRange(location: 0, length: string.utf16.count)
        return regex.rangeOfFirstMatch(in: string, options: [], range: range).location != NSNotFound
    }
}
