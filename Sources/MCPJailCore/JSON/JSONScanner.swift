/// A validating, non-allocating scan of one JSON text that records where the members
/// of the top-level object (and of its object-valued members) sit in the bytes.
///
/// Why not a full parser: the relay is on every call's path and carries results of many
/// megabytes. It must know that a line is valid JSON and find `method`, `id`,
/// `params.name`, `params.arguments`, `result.isError` and `error.code`, then forward the
/// original bytes unchanged. One pass, no tree, no copies: strings are checked eight
/// bytes at a time. Keys are decoded (escapes included), so `"\u006dethod"` is seen as
/// `method`, as the server will see it.
public enum JSONScanner {
    /// Scans `bytes` (one message, without its newline). Throws at the first byte that
    /// makes it invalid JSON (RFC 8259, UTF-8, nesting at most ``maxDepth``).
    public static func scan(_ bytes: UnsafeRawBufferPointer) throws(JSONScanError) -> ScannedMessage {
        var scanner = Scanner(bytes: bytes)
        return try scanner.scanDocument()
    }

    /// The top-level members that are complete within `prefix`, the first bytes of a
    /// message too long to hold whole: enough to find the `id` of an oversize request or
    /// response when it comes before the bulk, as the SDKs write it. Empty when the prefix is
    /// not the start of an object or is invalid before it runs out.
    public static func scanPrefix(_ prefix: UnsafeRawBufferPointer) -> ScannedMessage {
        var scanner = Scanner(bytes: prefix)
        var message = ScannedMessage(kind: .object, span: ByteSpan(start: 0, end: prefix.count))
        scanner.skipWhitespace()
        guard scanner.index < prefix.count, prefix[scanner.index] == UInt8(ascii: "{") else { return message }
        do {
            _ = try scanner.scanValue(depth: 0, recordInto: .topLevel)
        } catch {
            // Only running out of input is expected; a real syntax error makes the prefix
            // worthless (a cut escape or UTF-8 sequence fails a few bytes before the end).
            if error.offset < prefix.count - 8 { return message }
        }
        // A value that ends exactly at the cut may go on (a number: `1` of `12`): drop it.
        message.members = scanner.members.filter { $0.value.end < prefix.count }
        return message
    }

    /// Deeper nesting than this is refused, so a hostile line cannot exhaust the stack.
    public static let maxDepth = 512
}

/// Where and why a line is not valid JSON.
public struct JSONScanError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A half-open byte range `[start, end)` in the scanned buffer.
public struct ByteSpan: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var count: Int { end - start }
}

/// The JSON type of a scanned value.
public enum JSONKind: Sendable, Equatable {
    case object, array, string, number, bool, null
}

/// One `"key": value` member found by the scan.
public struct ScannedMember: Sendable, Equatable {
    /// The decoded key.
    public var key: String
    public var kind: JSONKind
    /// The value's bytes, quotes included for strings.
    public var value: ByteSpan
    /// For nested members: the index of the top-level member that holds them.
    public var parent: Int
}

/// The result of ``JSONScanner/scan(_:)``.
public struct ScannedMessage: Sendable {
    /// The kind of the top-level value (a batch is an `.array`).
    public var kind: JSONKind
    /// The top-level value's span (whitespace around it excluded).
    public var span: ByteSpan
    /// Members of the top-level object, in order (empty unless `kind == .object`).
    public var members: [ScannedMember] = []
    /// Members of object-valued top-level members (`params`, `result`, `error`), in order.
    public var nested: [ScannedMember] = []

    /// The top-level member named `key`, if any (the first one; see ``firstDuplicateKey``).
    public func member(_ key: String) -> ScannedMember? {
        members.first { $0.key == key }
    }

    /// The member `key` inside the top-level object member `parent`.
    public func member(_ key: String, in parent: String) -> ScannedMember? {
        guard let index = members.firstIndex(where: { $0.key == parent }) else { return nil }
        return nested.first { $0.parent == index && $0.key == key }
    }

    /// A key that occurs twice in the top-level object or in one of its object members.
    /// JSON parsers disagree on which duplicate wins, so the relay refuses such messages
    /// rather than check one reading and forward another.
    public var firstDuplicateKey: String? {
        if let key = Self.duplicate(in: members) { return key }
        var start = 0
        while start < nested.count {
            var end = start
            while end < nested.count, nested[end].parent == nested[start].parent { end += 1 }
            if let key = Self.duplicate(in: nested[start..<end]) {
                return members[nested[start].parent].key + "." + key
            }
            start = end
        }
        return nil
    }

    private static func duplicate(in members: some Collection<ScannedMember>) -> String? {
        guard members.count > 1 else { return nil }
        // The usual message has a handful of members: pairwise comparison, no allocation.
        if members.count <= 16 {
            var rest = members.dropFirst()
            for member in members {
                if rest.contains(where: { $0.key == member.key }) { return member.key }
                rest = rest.dropFirst()
            }
            return nil
        }
        var seen = Set<String>(minimumCapacity: members.count)
        for member in members where !seen.insert(member.key).inserted { return member.key }
        return nil
    }
}

private struct Scanner {
    let bytes: UnsafeRawBufferPointer
    let base: UnsafePointer<UInt8>
    let count: Int
    var index = 0
    var members: [ScannedMember] = []
    var nested: [ScannedMember] = []

    init(bytes: UnsafeRawBufferPointer) {
        members.reserveCapacity(8)
        nested.reserveCapacity(16)
        self.bytes = bytes
        self.base = bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) }
            ?? UnsafePointer(bitPattern: 1)!
        self.count = bytes.count
    }

    mutating func scanDocument() throws(JSONScanError) -> ScannedMessage {
        skipWhitespace()
        let start = index
        let kind = try scanValue(depth: 0, recordInto: .topLevel)
        let end = index
        skipWhitespace()
        guard index == count else { throw fail("unexpected data after the JSON value") }
        var message = ScannedMessage(kind: kind, span: ByteSpan(start: start, end: end))
        message.members = members
        message.nested = nested
        return message
    }

    private func fail(_ reason: String) -> JSONScanError {
        JSONScanError(offset: index, reason: reason)
    }

    @inline(__always) private func peek() -> UInt8? {
        index < count ? base[index] : nil
    }

    @inline(__always) mutating func skipWhitespace() {
        while index < count {
            switch base[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Where members of the value being scanned are recorded: top level (-1) or the nested
    /// list under top-level member `parent`.
    enum Recording { case topLevel, nested(parent: Int) }

    mutating func scanValue(depth: Int, recordInto recording: Recording?) throws(JSONScanError) -> JSONKind {
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            try scanObject(depth: depth + 1, recording: recording)
            return .object
        case UInt8(ascii: "["):
            try scanArray(depth: depth + 1)
            return .array
        case UInt8(ascii: "\""):
            _ = try scanString(decode: false)
            return .string
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return .number
        default:
            throw fail("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONScanError) {
        let length = literal.utf8CodeUnitCount
        guard count - index >= length else { throw fail("invalid literal") }
        for offset in 0..<length where base[index + offset] != literal.utf8Start[offset] {
            throw fail("invalid literal")
        }
        index += length
    }

    mutating func scanObject(depth: Int, recording: Recording?) throws(JSONScanError) {
        guard depth <= JSONScanner.maxDepth else { throw fail("nesting deeper than \(JSONScanner.maxDepth)") }
        index += 1  // {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try scanString(decode: recording != nil)
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            let valueStart = index
            // Members of the top-level object record their own members one level down.
            let childRecording: Recording? =
                if case .topLevel = recording { .nested(parent: members.count) } else { nil }
            let kind = try scanValue(depth: depth, recordInto: childRecording)
            let span = ByteSpan(start: valueStart, end: index)
            switch recording {
            case .topLevel:
                members.append(ScannedMember(key: key ?? "", kind: kind, value: span, parent: -1))
            case .nested(let parent):
                nested.append(ScannedMember(key: key ?? "", kind: kind, value: span, parent: parent))
            case nil:
                break
            }
            skipWhitespace()
            guard let next = peek() else { throw fail("unexpected end of input in an object") }
            index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else {
                index -= 1
                throw fail("expected ',' or '}'")
            }
            skipWhitespace()
        }
    }

    mutating func scanArray(depth: Int) throws(JSONScanError) {
        guard depth <= JSONScanner.maxDepth else { throw fail("nesting deeper than \(JSONScanner.maxDepth)") }
        index += 1  // [
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            _ = try scanValue(depth: depth, recordInto: nil)
            skipWhitespace()
            guard let next = peek() else { throw fail("unexpected end of input in an array") }
            index += 1
            if next == UInt8(ascii: "]") { return }
            guard next == UInt8(ascii: ",") else {
                index -= 1
                throw fail("expected ',' or ']'")
            }
            skipWhitespace()
        }
    }

    mutating func scanNumber() throws(JSONScanError) {
        if base[index] == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("invalid number") }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let d = peek(), isDigit(d) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let d = peek(), isDigit(d) else { throw fail("invalid number: digit expected after '.'") }
            while let d = peek(), isDigit(d) { index += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            index += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            guard let d = peek(), isDigit(d) else { throw fail("invalid number: digit expected in exponent") }
            while let d = peek(), isDigit(d) { index += 1 }
        }
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    /// Scans a string starting at its opening quote. Returns the decoded text when
    /// `decode` is set, nil otherwise.
    mutating func scanString(decode: Bool) throws(JSONScanError) -> String? {
        index += 1  // opening quote
        let contentStart = index
        var hasEscapes = false
        while true {
            index = PlainASCII.skip(UnsafeRawPointer(base), from: index, count: count)
            guard index < count else { throw fail("unterminated string") }
            let byte = base[index]
            if byte == UInt8(ascii: "\"") {
                let contentEnd = index
                index += 1
                guard decode else { return nil }
                if !hasEscapes {
                    return String(decoding: UnsafeBufferPointer(start: base + contentStart, count: contentEnd - contentStart), as: UTF8.self)
                }
                return UTF8Collector.decode(bytes, ByteSpan(start: contentStart - 1, end: index))
            } else if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                try scanEscape()
            } else if byte < 0x20 {
                throw fail("control character in a string")
            } else if byte < 0x80 {
                index += 1
            } else {
                try scanUTF8Sequence()
            }
        }
    }

    mutating func scanEscape() throws(JSONScanError) {
        index += 1  // backslash
        guard let byte = peek() else { throw fail("unterminated escape") }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
            UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 1
        case UInt8(ascii: "u"):
            index += 1
            guard count - index >= 4 else { throw fail("short \\u escape") }
            for _ in 0..<4 {
                guard Self.hexValue(base[index]) != nil else { throw fail("invalid \\u escape") }
                index += 1
            }
        default:
            throw fail("invalid escape")
        }
    }

    /// Validates one multi-byte UTF-8 sequence (no overlongs, no surrogates, ≤ U+10FFFF).
    mutating func scanUTF8Sequence() throws(JSONScanError) {
        let lead = base[index]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upperBound = 0x9F
        case 0xF0: length = 4; lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upperBound = 0x8F
        default: throw fail("invalid UTF-8")
        }
        guard count - index >= length else { throw fail("truncated UTF-8") }
        let second = base[index + 1]
        guard second >= lowerBound, second <= upperBound else { throw fail("invalid UTF-8") }
        for offset in 2..<max(2, length) where base[index + offset] & 0xC0 != 0x80 {
            throw fail("invalid UTF-8")
        }
        index += length
    }

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
