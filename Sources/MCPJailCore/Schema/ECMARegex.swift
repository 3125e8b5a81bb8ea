/// Translates an ECMA-262 regular expression (what JSON Schema's `pattern` and
/// `patternProperties` are written in) into PCRE2's syntax (``RegularExpression``, UTF mode
/// without PCRE2_UCP), so that it matches what a JavaScript validator would match.
///
/// The differences handled here (ECMA-262 read in Unicode mode, the `u` flag, which the
/// JSON Schema test suite assumes):
/// - `\d` `\w` `\b` are ASCII in ECMA (`[0-9]`, `[A-Za-z0-9_]`): written out as ASCII sets,
///   `\b`/`\B` as look-arounds on the ASCII word set, so no engine option changes them.
/// - `\s` is ECMA's WhiteSpace + LineTerminator set (PCRE2's lacks U+00A0, U+FEFF and the
///   other Unicode spaces): written out, and `\S` as the complement of its ranges.
/// - `.` excludes only `\n \r U+2028 U+2029` in ECMA; PCRE2's excludes only `\n`.
/// - `$` is end of input in ECMA; PCRE2's also matches before a final newline: `\z`.
/// - `\v` is U+000B in ECMA, a vertical-space class in PCRE2; `\cX`, `\0`, `\xHH`, `\uHHHH`
///   (surrogate pairs joined), `\u{H…}` become `\x{H…}`.
/// - Inside `[...]`, ECMA has no POSIX classes (`[:alpha:]`): every literal there is written as
///   `\x{H…}`, so PCRE2's set syntax never applies. `[]` and `[^]` are written out.
/// - A `{` or `}` that is not a quantifier is a literal (ECMA annex B): escaped.
/// - Escapes ECMA does not define (`\a`, `\e`, `\Q`, `\z`, `\A`, `\h`, ...), groups other than
///   `(?:` `(?=` `(?!` `(?<=` `(?<!` `(?<name>`, and quantifiers on quantifiers (PCRE2's
///   possessive `a++`) are refused: they mean something else, or nothing, in ECMA-262.
/// - A backreference to a group that has not matched matches the empty string, as in ECMA
///   (PCRE2_MATCH_UNSET_BACKREF, set by ``SchemaPattern``).
///
/// Known differences that remain (documented, not translated):
/// - Each alternative of a look-behind must have a fixed length in PCRE2 10.42 (ECMA allows
///   any): `(?<=ab|c)` compiles, `(?<=a+)` is refused as an invalid pattern.
/// - `\p{…}` property names are passed through; PCRE2 accepts ECMA's names and also looser
///   spellings ECMA would reject.
/// - Matching has limits (``RegularExpression/matchLimit``): a pattern with catastrophic
///   backtracking gives up, and the validator refuses the instance. Pattern length is
///   capped (``maxPatternLength``) too.
enum ECMARegex {
    /// Longest pattern accepted, in Unicode scalars.
    static let maxPatternLength = 4096

    struct TranslationError: Error {
        var message: String
    }

    /// The PCRE2 pattern for the ECMA-262 `pattern`, or a `TranslationError`.
    static func translate(_ pattern: String) throws(TranslationError) -> String {
        let scalars = Array(pattern.unicodeScalars)
        guard scalars.count <= maxPatternLength else {
            throw TranslationError(message: "pattern longer than \(maxPatternLength) characters")
        }
        var translator = Translator(scalars: scalars)
        return try translator.run()
    }

    static let wordSet = "a-zA-Z0-9_"
    /// ECMA-262's WhiteSpace and LineTerminator code points.
    static let spaceRanges: [ClosedRange<UInt32>] = [
        0x9...0xD, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029,
        0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
    ]
    /// `\s` as the body of a character class.
    static let spaceSet = classBody(spaceRanges)
    /// `\S` as the body of a character class: every other code point (PCRE2 has no nested
    /// or subtracted sets, so the complement is written out).
    static let notSpaceSet: String = {
        var complement: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for range in spaceRanges {
            if range.lowerBound > next { complement.append(next...(range.lowerBound - 1)) }
            next = range.upperBound + 1
        }
        complement.append(next...0x10FFFF)
        return classBody(complement)
    }()

    /// A property name compared loosely: lower case, without `_`, `-` and spaces.
    static func looseName(_ name: some StringProtocol) -> String {
        String(name.lowercased().filter { $0 != "_" && $0 != "-" && $0 != " " })
    }

    /// General_Category values by loose long name (and ICU's POSIX-like aliases, which
    /// ICU accepted here before), to PCRE2's short names.
    static let generalCategories: [String: String] = {
        let names: [(String, [String])] = [
            ("L", ["letter"]), ("LC", ["casedletter"]), ("Lu", ["uppercaseletter"]),
            ("Ll", ["lowercaseletter"]), ("Lt", ["titlecaseletter"]), ("Lm", ["modifierletter"]),
            ("Lo", ["otherletter"]), ("M", ["mark", "combiningmark"]), ("Mn", ["nonspacingmark"]),
            ("Mc", ["spacingmark"]), ("Me", ["enclosingmark"]), ("N", ["number"]),
            ("Nd", ["decimalnumber", "digit"]), ("Nl", ["letternumber"]), ("No", ["othernumber"]),
            ("P", ["punctuation", "punct"]), ("Pc", ["connectorpunctuation"]), ("Pd", ["dashpunctuation"]),
            ("Ps", ["openpunctuation"]), ("Pe", ["closepunctuation"]), ("Pi", ["initialpunctuation"]),
            ("Pf", ["finalpunctuation"]), ("Po", ["otherpunctuation"]), ("S", ["symbol"]),
            ("Sm", ["mathsymbol"]), ("Sc", ["currencysymbol"]), ("Sk", ["modifiersymbol"]),
            ("So", ["othersymbol"]), ("Z", ["separator"]), ("Zs", ["spaceseparator"]),
            ("Zl", ["lineseparator"]), ("Zp", ["paragraphseparator"]), ("C", ["other"]),
            ("Cc", ["control", "cntrl"]), ("Cf", ["format"]), ("Cs", ["surrogate"]),
            ("Co", ["privateuse"]), ("Cn", ["unassigned"]),
        ]
        var table: [String: String] = [:]
        for (short, long) in names {
            table[looseName(short)] = short
            for name in long { table[name] = short }
        }
        return table
    }()

    static func classBody(_ ranges: [ClosedRange<UInt32>]) -> String {
        ranges.map { $0.count == 1 ? hex($0.lowerBound) : hex($0.lowerBound) + "-" + hex($0.upperBound) }.joined()
    }

    static let wordBoundary = "(?:(?<=[\(wordSet)])(?![\(wordSet)])|(?<![\(wordSet)])(?=[\(wordSet)]))"
    static let notWordBoundary = "(?:(?<=[\(wordSet)])(?=[\(wordSet)])|(?<![\(wordSet)])(?![\(wordSet)]))"

    static func hex(_ value: UInt32) -> String { "\\x{" + String(value, radix: 16, uppercase: true) + "}" }
}

private struct Translator {
    let scalars: [Unicode.Scalar]
    var i = 0
    var out = ""
    /// The last thing written can take a quantifier.
    var quantifiable = false
    /// The last thing written was a quantifier (a second one is an ECMA syntax error).
    var afterQuantifier = false
    var groupDepth = 0

    init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    typealias Failure = ECMARegex.TranslationError

    func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        i + offset < scalars.count ? scalars[i + offset] : nil
    }

    mutating func run() throws(Failure) -> String {
        while let c = peek() {
            switch c {
            case "\\":
                i += 1
                try escapeOutside()
            case "[":
                i += 1
                try characterClass()
                atom()
            case "(":
                i += 1
                try groupOpening()
            case ")":
                i += 1
                guard groupDepth > 0 else { throw Failure(message: "unmatched ')'") }
                groupDepth -= 1
                out += ")"
                atom()
            case "|":
                i += 1
                out += "|"
                reset()
            case "^":
                i += 1
                out += "^"
                reset()
            case "$":
                i += 1
                out += "\\z"
                reset()
            case ".":
                i += 1
                out += "[^\\x{A}\\x{D}\\x{2028}\\x{2029}]"
                atom()
            case "*", "+", "?":
                i += 1
                try quantifier(String(c))
            case "{":
                if let bounds = braceQuantifier() {
                    try quantifier(bounds)
                } else {
                    i += 1
                    out += "\\{"
                    atom()
                }
            case "}", "]":
                i += 1
                out += ECMARegex.hex(c.value)
                atom()
            default:
                i += 1
                literal(c)
                atom()
            }
        }
        guard groupDepth == 0 else { throw Failure(message: "unterminated group") }
        return out
    }

    mutating func atom() {
        quantifiable = true
        afterQuantifier = false
    }

    mutating func reset() {
        quantifiable = false
        afterQuantifier = false
    }

    mutating func literal(_ c: Unicode.Scalar) {
        if c.isASCII && !(c.properties.isAlphabetic || ("0"..."9").contains(c)) || c.value < 0x20 {
            out += ECMARegex.hex(c.value)
        } else {
            out.unicodeScalars.append(c)
        }
    }

    /// `*`, `+`, `?` or `{n,m}` (already consumed), with an optional lazy `?`.
    mutating func quantifier(_ text: String) throws(Failure) {
        guard quantifiable, !afterQuantifier else { throw Failure(message: "nothing to repeat before '\(text)'") }
        out += text
        if peek() == "?" {
            i += 1
            out += "?"
        }
        quantifiable = false
        afterQuantifier = true
    }

    /// `{n}`, `{n,}` or `{n,m}` at `i`, consumed; nil (nothing consumed) when it is not one.
    mutating func braceQuantifier() -> String? {
        var j = i + 1
        func digits() -> String {
            var s = ""
            while j < scalars.count, ("0"..."9").contains(scalars[j]) {
                s.unicodeScalars.append(scalars[j])
                j += 1
            }
            return s
        }
        let low = digits()
        guard !low.isEmpty, j < scalars.count else { return nil }
        var text = "{" + low
        if scalars[j] == "," {
            j += 1
            text += ","
            text += digits()
        }
        guard j < scalars.count, scalars[j] == "}" else { return nil }
        i = j + 1
        return text + "}"
    }

    mutating func groupOpening() throws(Failure) {
        groupDepth += 1
        reset()
        guard peek() == "?" else {
            out += "("
            return
        }
        switch (peek(1), peek(2)) {
        case (":", _):
            i += 2
            out += "(?:"
        case ("=", _), ("!", _):
            out += "(?" + String(peek(1)!)
            i += 2
        case ("<", "="), ("<", "!"):
            out += "(?<" + String(peek(2)!)
            i += 3
        case ("<", _):
            i += 2
            let name = try groupName()
            out += "(?<" + name + ">"
        default:
            throw Failure(message: "unsupported group syntax '(?'")
        }
    }

    /// `name>` after `(?<` or `\k<`, consumed; the name is ASCII letters and digits.
    mutating func groupName() throws(Failure) -> String {
        var name = ""
        while let c = peek(), c != ">" {
            guard c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) else {
                throw Failure(message: "unsupported group name")
            }
            name.unicodeScalars.append(c)
            i += 1
        }
        guard peek() == ">", !name.isEmpty else { throw Failure(message: "unterminated group name") }
        i += 1
        return name
    }

    mutating func escapeOutside() throws(Failure) {
        guard let c = peek() else { throw Failure(message: "pattern ends with '\\'") }
        i += 1
        switch c {
        case "d": out += "[0-9]"; atom()
        case "D": out += "[^0-9]"; atom()
        case "w": out += "[\(ECMARegex.wordSet)]"; atom()
        case "W": out += "[^\(ECMARegex.wordSet)]"; atom()
        case "s": out += "[\(ECMARegex.spaceSet)]"; atom()
        case "S": out += "[\(ECMARegex.notSpaceSet)]"; atom()
        case "b": out += ECMARegex.wordBoundary; reset()
        case "B": out += ECMARegex.notWordBoundary; reset()
        case "p", "P":
            out += try property(negated: c == "P")
            atom()
        case "k":
            guard peek() == "<" else { throw Failure(message: "'\\k' without a group name") }
            i += 1
            out += "\\k<" + (try groupName()) + ">"
            atom()
        case "1"..."9":
            var number = String(c)
            while let d = peek(), ("0"..."9").contains(d) {
                number.unicodeScalars.append(d)
                i += 1
            }
            out += "(?:\\" + number + ")"
            atom()
        default:
            out += ECMARegex.hex(try characterEscape(c))
            atom()
        }
    }

    /// `\p{…}` or `\P{…}` (the letter consumed) in PCRE2's spelling. PCRE2 10.42 knows the
    /// General_Category values only by their short names (`L`, `Nd`), so ECMA's long names
    /// (`Letter`, `Decimal_Number`, `General_Category=Letter`) are mapped, as is `Assigned`
    /// (not `Cn`); other names (scripts, binary properties) PCRE2 reads as ECMA writes them.
    mutating func property(negated: Bool) throws(Failure) -> String {
        let body = try propertyBody()
        let inner = String(body.dropFirst().dropLast())
        var key: Substring? = nil
        var value = Substring(inner)
        if let equals = inner.firstIndex(of: "=") {
            key = inner[..<equals]
            value = inner[inner.index(after: equals)...]
        }
        let isCategory = key.map { ["generalcategory", "gc"].contains(ECMARegex.looseName($0)) } ?? true
        let loose = ECMARegex.looseName(value)
        if isCategory, let short = ECMARegex.generalCategories[loose] {
            return (negated ? "\\P{" : "\\p{") + short + "}"
        }
        if key == nil, loose == "assigned" { return negated ? "\\p{Cn}" : "\\P{Cn}" }
        return (negated ? "\\P" : "\\p") + body
    }

    /// `{Name}` or `{Name=Value}` after `\p`, consumed and returned.
    mutating func propertyBody() throws(Failure) -> String {
        guard peek() == "{" else { throw Failure(message: "'\\p' without '{'") }
        var body = "{"
        i += 1
        while let c = peek(), c != "}" {
            guard c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "=" else {
                throw Failure(message: "invalid property name in '\\p'")
            }
            body.unicodeScalars.append(c)
            i += 1
        }
        guard peek() == "}" else { throw Failure(message: "unterminated '\\p{'") }
        i += 1
        return body + "}"
    }

    /// The code point of a single-character escape whose letter `c` is already consumed.
    mutating func characterEscape(_ c: Unicode.Scalar) throws(Failure) -> UInt32 {
        switch c {
        case "t": return 0x09
        case "n": return 0x0A
        case "v": return 0x0B
        case "f": return 0x0C
        case "r": return 0x0D
        case "0":
            if let d = peek(), ("0"..."9").contains(d) { throw Failure(message: "octal escapes are not allowed") }
            return 0
        case "c":
            guard let letter = peek(), letter.isASCII, letter.properties.isAlphabetic else {
                throw Failure(message: "'\\c' without a control letter")
            }
            i += 1
            return letter.value % 32
        case "x":
            guard let value = hexDigits(count: 2) else { throw Failure(message: "invalid '\\x' escape") }
            return value
        case "u":
            if peek() == "{" {
                i += 1
                var value: UInt32 = 0
                var count = 0
                while let d = peek(), let digit = d.hexDigitValue {
                    value = value &* 16 &+ digit
                    count += 1
                    i += 1
                    guard count <= 8 else { break }
                }
                guard count > 0, peek() == "}", value <= 0x10FFFF else { throw Failure(message: "invalid '\\u{' escape") }
                i += 1
                return value
            }
            guard let unit = hexDigits(count: 4) else { throw Failure(message: "invalid '\\u' escape") }
            // A surrogate pair written as two escapes is one code point.
            if (0xD800...0xDBFF).contains(unit), peek() == "\\", peek(1) == "u" {
                let save = i
                i += 2
                if let low = hexDigits(count: 4), (0xDC00...0xDFFF).contains(low) {
                    return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                i = save
            }
            return unit
        default:
            // Identity escapes: only the syntax characters and '/' (Unicode mode), plus '-'.
            if "^$\\.*+?()[]{}|/-".unicodeScalars.contains(c) { return c.value }
            throw Failure(message: "'\\\(c)' is not an ECMA-262 escape")
        }
    }

    mutating func hexDigits(count: Int) -> UInt32? {
        var value: UInt32 = 0
        for k in 0..<count {
            guard let d = peek(k), let digit = d.hexDigitValue else { return nil }
            value = value * 16 + digit
        }
        i += count
        return value
    }

    /// One class atom: a code point, or a set written as the body of a PCRE2 class (`\d`, `\p{L}`, ...).
    enum ClassAtom {
        case point(UInt32)
        case set(String)
    }

    /// `[...]` after the `[`, consumed; writes a PCRE2 class of the same code points.
    mutating func characterClass() throws(Failure) {
        var negated = false
        if peek() == "^" {
            negated = true
            i += 1
        }
        var atoms: [ClassAtom] = []
        var dashes: Set<Int> = []  // indices in `atoms` of unescaped '-' literals
        while true {
            guard let c = peek() else { throw Failure(message: "unterminated character class") }
            i += 1
            if c == "]" { break }
            if c == "\\" {
                guard let e = peek() else { throw Failure(message: "pattern ends with '\\'") }
                i += 1
                switch e {
                case "d": atoms.append(.set("0-9"))
                case "D": atoms.append(.set("\\D"))  // ASCII digits' complement without PCRE2_UCP
                case "w": atoms.append(.set(ECMARegex.wordSet))
                case "W": atoms.append(.set("\\W"))  // likewise [A-Za-z0-9_]'s
                case "s": atoms.append(.set(ECMARegex.spaceSet))
                case "S": atoms.append(.set(ECMARegex.notSpaceSet))
                case "p", "P": atoms.append(.set(try property(negated: e == "P")))
                case "b": atoms.append(.point(0x08))
                default: atoms.append(.point(try characterEscape(e)))
                }
            } else {
                if c == "-" { dashes.insert(atoms.count) }
                atoms.append(.point(c.value))
            }
        }
        var body = ""
        var k = 0
        while k < atoms.count {
            if case .point(let low) = atoms[k], k + 2 < atoms.count, dashes.contains(k + 1) {
                guard case .point(let high) = atoms[k + 2] else {
                    throw Failure(message: "a class escape cannot end a range")
                }
                guard low <= high else { throw Failure(message: "range out of order in character class") }
                body += ECMARegex.hex(low) + "-" + ECMARegex.hex(high)
                k += 3
                continue
            }
            if case .set = atoms[k], k + 2 < atoms.count, dashes.contains(k + 1) {
                throw Failure(message: "a class escape cannot start a range")
            }
            switch atoms[k] {
            case .point(let p): body += ECMARegex.hex(p)
            case .set(let s): body += s
            }
            k += 1
        }
        if body.isEmpty {
            // ECMA: `[]` matches nothing, `[^]` any code point.
            out += negated ? "[\\x{0}-\\x{10FFFF}]" : "[^\\x{0}-\\x{10FFFF}]"
        } else {
            out += (negated ? "[^" : "[") + body + "]"
        }
    }
}

extension Unicode.Scalar {
    fileprivate var hexDigitValue: UInt32? {
        switch value {
        case 0x30...0x39: return value - 0x30
        case 0x41...0x46: return value - 0x41 + 10
        case 0x61...0x66: return value - 0x61 + 10
        default: return nil
        }
    }
}
