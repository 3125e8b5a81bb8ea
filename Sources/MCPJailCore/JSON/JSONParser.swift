/// Why a text is not JSON, and where (a byte offset into the input).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The input ended inside a value (or was empty).
        case unexpectedEnd
        /// A byte that cannot start or continue a value here (trailing commas, `NaN`, `'x'`, …).
        case unexpectedByte(UInt8)
        /// Bytes that are not well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF).
        case invalidUTF8
        /// A control character (U+0000–U+001F) unescaped inside a string.
        case controlCharacterInString
        /// A backslash not followed by one of `" \ / b f n r t u`, or `\u` not followed by four hex digits.
        case invalidEscape
        /// A `\uD800`–`\uDFFF` escape that is not half of a proper surrogate pair.
        case loneSurrogate
        /// A number that breaks RFC 8259's grammar (`01`, `1.`, `.5`, `+1`, `1e`).
        case invalidNumber
        /// A number whose exponent has more than nine digits.
        case numberOutOfRange
        /// An object with the same member name twice.
        case duplicateKey(String)
        /// Arrays and objects nested deeper than ``JSONParser/maxDepth``.
        case tooDeep
        /// Something other than whitespace after the value.
        case trailingData
    }

    public var kind: Kind
    /// Byte offset in the input where the problem was found.
    public var offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch kind {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte(let b):
            what = b >= 0x20 && b < 0x7F
                ? "unexpected character '\(Character(Unicode.Scalar(b)))'"
                : "unexpected byte 0x\(String(b, radix: 16, uppercase: true))"
        case .invalidUTF8: what = "invalid UTF-8"
        case .controlCharacterInString: what = "unescaped control character in string"
        case .invalidEscape: what = "invalid escape sequence"
        case .loneSurrogate: what = "unpaired UTF-16 surrogate escape"
        case .invalidNumber: what = "invalid number"
        case .numberOutOfRange: what = "number exponent out of range"
        case .duplicateKey: what = "duplicate object key"
        case .tooDeep: what = "nested deeper than \(JSONParser.maxDepth) levels"
        case .trailingData: what = "unexpected data after the JSON value"
        }
        return "\(what) at byte \(offset)"
    }
}

/// A strict RFC 8259 parser: one JSON text in, a ``JSONValue`` out, or a ``JSONParseError``.
///
/// Strict means: well-formed UTF-8 only (no byte-order mark), whitespace only where the
/// grammar allows it and only space, tab, LF and CR, no trailing commas, no comments, no
/// `NaN`/`Infinity`, no single quotes, no unescaped control characters, no lone surrogate
/// escapes, no duplicate member names (compared code point for code point), at most
/// ``maxDepth`` levels of nesting, and nothing but whitespace after the value. Any value may
/// be the top level (RFC 8259, not RFC 4627). Numbers keep their text (``JSONNumber``).
///
/// The parser is iterative: the nesting limit, not the thread's stack, bounds the work, so it
/// is safe on small task stacks.
public enum JSONParser {
    /// Deepest nesting of arrays and objects accepted (`[[…]]` 512 deep is fine, 513 is not).
    public static let maxDepth = 512

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var parser = Parser(bytes: bytes)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        let copied = copy.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }
        return try copied.get()
    }

    /// Parses `bytes`, keeping no copy of a string value longer than `threshold` bytes (as
    /// written, quotes excluded): each such string becomes a stand-in, a short string no
    /// input can hold (it carries a random token), and ``DeferredStrings`` maps it to the
    /// length of the real one in Unicode scalars. The string is still checked in full (its
    /// UTF-8 and escapes). For validating large arguments against a schema that reads no
    /// string's contents: only its lengths (``CompiledSchema/validate(json:deferringStringsOver:)``).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, deferringStringsOver threshold: Int
    ) throws(JSONParseError) -> (JSONValue, DeferredStrings) {
        var parser = Parser(bytes: bytes)
        parser.deferring = (threshold, DeferredStrings())
        let value = try parser.parseDocument()
        return (value, parser.deferring!.strings)
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var copy = text
        let result = copy.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }
}

/// A member name compared and hashed by its UTF-8 bytes (code points), not by Swift's
/// canonical equivalence.
private struct ExactKey: Hashable {
    let string: String
    static func == (a: ExactKey, b: ExactKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }
    func hash(into hasher: inout Hasher) {
        for byte in string.utf8 { hasher.combine(byte) }
    }
}

/// The string values a parse left out (see ``JSONParser/parse(_:deferringStringsOver:)``):
/// stand-in → the real string's length in Unicode scalars.
public struct DeferredStrings: Sendable {
    public private(set) var lengths: [String: Int] = [:]
    private let token = UInt64.random(in: .min ... .max)

    mutating func add(length: Int) -> String {
        let standIn = "\u{0}dev.mcpjail/deferred-string/\(token)/\(lengths.count)"
        lengths[standIn] = length
        return standIn
    }
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    /// Scratch space for strings with escapes or non-ASCII bytes.
    var scratch: [UInt8] = []
    /// String values longer than `threshold` bytes are left out (``DeferredStrings``).
    var deferring: (threshold: Int, strings: DeferredStrings)? = nil

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The open containers, innermost last. Their contents live in arrays of their own and
    /// are appended to in place (`items[items.count - 1].append`), so that each buffer stays
    /// uniquely referenced: copying a container out of an enum frame to append to it would
    /// copy every element each time, quadratic in the container's size.
    enum Frame {
        case array
        case object
    }

    @inline(__always) func fail(_ kind: JSONParseError.Kind, _ at: Int? = nil) -> JSONParseError {
        JSONParseError(kind, at: at ?? pos)
    }

    @inline(__always) mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    /// The next byte after whitespace, without consuming it.
    @inline(__always) mutating func peek() throws(JSONParseError) -> UInt8 {
        skipWhitespace()
        guard pos < bytes.count else { throw fail(.unexpectedEnd) }
        return bytes[pos]
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        var stack: [Frame] = []
        var arrays: [[JSONValue]] = []
        // `keys` is made only once an object passes `setFrom` members; a smaller one is
        // checked for duplicates against its members' names (no set to allocate and hash).
        var objects: [(members: [JSONObject.Member], keys: Set<ExactKey>?, pendingKey: String)] = []
        var value: JSONValue

        nextValue: while true {
            let c = try peek()
            switch c {
            case UInt8(ascii: "{"):
                guard stack.count < JSONParser.maxDepth else { throw fail(.tooDeep) }
                pos += 1
                if try peek() == UInt8(ascii: "}") {
                    pos += 1
                    value = .object(JSONObject())
                } else {
                    let key = try parseKeyAndColon()
                    stack.append(.object)
                    objects.append(([], nil, key))
                    continue nextValue
                }
            case UInt8(ascii: "["):
                guard stack.count < JSONParser.maxDepth else { throw fail(.tooDeep) }
                pos += 1
                if try peek() == UInt8(ascii: "]") {
                    pos += 1
                    value = .array([])
                } else {
                    stack.append(.array)
                    arrays.append([])
                    continue nextValue
                }
            case UInt8(ascii: "\""):
                value = .string(deferring == nil ? try parseString() : try parseOrDeferString())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = .number(try parseNumber())
            default:
                throw fail(c >= 0x80 ? .invalidUTF8 : .unexpectedByte(c))
            }

            // A value is complete: hand it to the enclosing containers, closing those that end.
            while true {
                guard let frame = stack.last else {
                    skipWhitespace()
                    guard pos == bytes.count else { throw fail(.trailingData) }
                    return value
                }
                switch frame {
                case .array:
                    arrays[arrays.count - 1].append(value)
                    let c = try peek()
                    pos += 1
                    if c == UInt8(ascii: ",") { continue nextValue }
                    guard c == UInt8(ascii: "]") else { throw fail(.unexpectedByte(c), pos - 1) }
                    stack.removeLast()
                    value = .array(arrays.removeLast())
                case .object:
                    let top = objects.count - 1
                    objects[top].members.append((objects[top].pendingKey, value))
                    let c = try peek()
                    pos += 1
                    if c == UInt8(ascii: ",") {
                        let keyOffset = pos
                        let next = try parseKeyAndColon()
                        guard Self.isNewKey(next, in: &objects[top].keys, members: objects[top].members) else {
                            throw fail(.duplicateKey(next), keyOffsetAfterWhitespace(keyOffset))
                        }
                        objects[top].pendingKey = next
                        continue nextValue
                    }
                    guard c == UInt8(ascii: "}") else { throw fail(.unexpectedByte(c), pos - 1) }
                    stack.removeLast()
                    value = .object(JSONObject(uniqueMembers: objects.removeLast().members))
                }
            }
        }
    }

    /// Members past which an object's names go into a set; below it, a linear scan of the
    /// members (the usual argument object has a handful) is cheaper than hashing.
    static let setFrom = 8

    /// Whether `key` differs, byte for byte, from every name in `members` (the object's
    /// members so far).
    private static func isNewKey(_ key: String, in keys: inout Set<ExactKey>?, members: [JSONObject.Member]) -> Bool {
        if keys == nil {
            if members.count < setFrom {
                return !members.contains { $0.key.utf8.elementsEqual(key.utf8) }
            }
            keys = Set(members.map { ExactKey(string: $0.key) })
        }
        return keys!.insert(ExactKey(string: key)).inserted
    }

    // Duplicate-key errors point at the key's opening quote.
    private func keyOffsetAfterWhitespace(_ offset: Int) -> Int {
        var i = offset
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        return i
    }

    /// `"name"` then `:`, with whitespace around.
    mutating func parseKeyAndColon() throws(JSONParseError) -> String {
        let c = try peek()
        guard c == UInt8(ascii: "\"") else { throw fail(c >= 0x80 ? .invalidUTF8 : .unexpectedByte(c)) }
        let key = try parseString()
        let colon = try peek()
        guard colon == UInt8(ascii: ":") else { throw fail(.unexpectedByte(colon)) }
        pos += 1
        return key
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for i in 0..<count {
            guard pos + i < bytes.count else { throw fail(.unexpectedEnd, pos + i) }
            let b = bytes[pos + i]
            guard b == start[i] else { throw fail(b >= 0x80 ? .invalidUTF8 : .unexpectedByte(b), pos + i) }
        }
        pos += count
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = pos
        switch JSONNumber.scan(bytes, from: pos) {
        case .success(let end):
            pos = end
            return JSONNumber(validatedText: String(decoding: bytes[start..<end], as: UTF8.self))
        case .failure(let offset, let outOfRange):
            if !outOfRange && offset >= bytes.count { throw fail(.unexpectedEnd, offset) }
            throw fail(outOfRange ? .numberOutOfRange : .invalidNumber, offset)
        }
    }

    /// A string starting at the opening quote; validates UTF-8 and decodes escapes.
    mutating func parseString() throws(JSONParseError) -> String {
        pos += 1  // the opening quote
        let start = pos
        // Fast path: printable ASCII without escapes.
        pos = PlainASCII.skip(bytes.baseAddress!, from: pos, count: bytes.count)
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") {
            pos += 1
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(pos - 1)]).assumingMemoryBound(to: UInt8.self), as: UTF8.self)
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: bytes[start..<pos])
        _ = try walkString(keeping: true)
        return String(decoding: scratch, as: UTF8.self)
    }

    /// A string value, or its stand-in when it is longer than the deferring threshold.
    mutating func parseOrDeferString() throws(JSONParseError) -> String {
        let start = pos
        pos += 1  // the opening quote
        scratch.removeAll(keepingCapacity: true)
        let scalars = try walkString(keeping: false)
        if pos - start - 2 > deferring!.threshold {
            return deferring!.strings.add(length: scalars)
        }
        pos = start
        return try parseString()
    }

    /// Walks a string from `pos` (inside it) to just after its closing quote, checking its
    /// UTF-8, escapes and control characters; `keeping`, appends it decoded to `scratch`.
    /// Returns how many Unicode scalars it walked.
    mutating func walkString(keeping: Bool) throws(JSONParseError) -> Int {
        var scalars = 0
        while true {
            guard pos < bytes.count else { throw fail(.unexpectedEnd) }
            let b = bytes[pos]
            switch b {
            case UInt8(ascii: "\""):
                pos += 1
                return scalars
            case UInt8(ascii: "\\"):
                let before = scratch.count
                try parseEscape()
                // One scalar per escape (a surrogate pair decodes to one).
                scalars += scratch[before...].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
                if !keeping { scratch.removeAll(keepingCapacity: true) }
            case 0..<0x20:
                throw fail(.controlCharacterInString)
            case 0x20..<0x80:
                let runEnd = PlainASCII.skip(bytes.baseAddress!, from: pos + 1, count: bytes.count)
                if keeping { scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[pos..<runEnd])) }
                scalars += runEnd - pos
                pos = runEnd
            default:
                let length = try utf8SequenceLength(at: pos)
                if keeping { scratch.append(contentsOf: bytes[pos..<(pos + length)]) }
                scalars += 1
                pos += length
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence starting at `i` (a non-ASCII lead byte).
    func utf8SequenceLength(at i: Int) throws(JSONParseError) -> Int {
        let lead = bytes[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F  // no UTF-16 surrogates
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F  // ≤ U+10FFFF
        default: throw fail(.invalidUTF8, i)
        }
        guard i + length <= bytes.count else {
            // Truncated at the end of input: still malformed UTF-8 if a continuation is wrong.
            for j in (i + 1)..<bytes.count where bytes[j] & 0xC0 != 0x80 { throw fail(.invalidUTF8, i) }
            throw fail(.unexpectedEnd, bytes.count)
        }
        let second = bytes[i + 1]
        guard second >= low && second <= high else { throw fail(.invalidUTF8, i) }
        for j in (i + 2)..<(i + length) where bytes[j] & 0xC0 != 0x80 { throw fail(.invalidUTF8, i) }
        return length
    }

    mutating func parseEscape() throws(JSONParseError) {
        let escapeStart = pos
        pos += 1
        guard pos < bytes.count else { throw fail(.unexpectedEnd) }
        let c = bytes[pos]
        pos += 1
        switch c {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hex4()
            var scalarValue = UInt32(unit)
            if unit >= 0xD800 && unit <= 0xDBFF {
                // A high surrogate must be followed by an escaped low one.
                guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                else { throw fail(.loneSurrogate, escapeStart) }
                pos += 2
                let low = try hex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw fail(.loneSurrogate, escapeStart) }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw fail(.loneSurrogate, escapeStart)
            }
            // Never nil: surrogates were handled above and the value is ≤ U+10FFFF.
            let scalar = Unicode.Scalar(scalarValue)!
            scratch.append(contentsOf: UTF8.encode(scalar)!)
        default:
            throw fail(.invalidEscape, escapeStart)
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt16 {
        guard pos + 4 <= bytes.count else {
            for i in pos..<bytes.count where hexValue(bytes[i]) == nil { throw fail(.invalidEscape, i) }
            throw fail(.unexpectedEnd, bytes.count)
        }
        var value: UInt16 = 0
        for i in pos..<(pos + 4) {
            guard let digit = hexValue(bytes[i]) else { throw fail(.invalidEscape, i) }
            value = value << 4 | UInt16(digit)
        }
        pos += 4
        return value
    }

    @inline(__always) func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
