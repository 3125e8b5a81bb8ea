/// A JSON value, as RFC 8259 defines it, that keeps what a digest needs exact.
///
/// - Numbers keep their decimal text (``JSONNumber``); nothing is rounded through `Double`.
/// - Objects keep their members in input order (``JSONObject``); ``JSONParser`` refuses
///   duplicate names, so a name occurs at most once.
///
/// Equality is JSON equality, not text equality: numbers compare by value (`1.0 == 1`),
/// objects compare regardless of member order, and strings compare by Unicode scalars
/// (code point for code point, not Swift's canonical equivalence: `"é"` precomposed and
/// `"e\u{301}"` are different JSON strings and different here). Two values are equal exactly
/// when their ``CanonicalJSON`` forms are the same bytes.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key` when this is an object, else nil.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var numberValue: JSONNumber? { if case .number(let n) = self { return n } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }

    /// The JSON type name: `null`, `boolean`, `number`, `string`, `array` or `object`.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSONValue {
    /// The same value with every string (not member names) passed through `transform`.
    public func mapStrings(_ transform: (String) -> String) -> JSONValue {
        switch self {
        case .string(let text): return .string(transform(text))
        case .array(let elements): return .array(elements.map { $0.mapStrings(transform) })
        case .object(let object):
            return .object(JSONObject(uniqueMembers: object.members.map { ($0.key, $0.value.mapStrings(transform)) }))
        default: return self
        }
    }
}

// MARK: - Literals (convenient in tests and when building messages)

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements))
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text, members in their stored order.
    public var description: String {
        var out: [UInt8] = []
        JSONWriter.append(self, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - JSONObject

/// The members of a JSON object, in insertion order, each name at most once.
///
/// Lookup by name is a linear scan, which is what the small objects of JSON-RPC want.
/// Names compare by Unicode scalars (see ``JSONValue``).
public struct JSONObject: Sendable, Equatable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public typealias Member = (key: String, value: JSONValue)

    public private(set) var members: [Member]

    /// An object of `members`; when a name repeats, the last value wins at the first position.
    public init(_ members: some Sequence<(String, JSONValue)>) {
        self.members = []
        for (key, value) in members { self[key] = value }
    }

    public init() { self.members = [] }

    /// Members known to have distinct names (the parser's path); not checked again.
    init(uniqueMembers: [Member]) { self.members = uniqueMembers }

    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

    public var startIndex: Int { members.startIndex }
    public var endIndex: Int { members.endIndex }
    public subscript(position: Int) -> Member { members[position] }

    /// The names, in stored order.
    public var keys: [String] { members.map(\.key) }

    /// The value named `key`; setting nil removes the member.
    public subscript(key: String) -> JSONValue? {
        get {
            for member in members where member.key.utf8.elementsEqual(key.utf8) { return member.value }
            return nil
        }
        set {
            let index = members.firstIndex { $0.key.utf8.elementsEqual(key.utf8) }
            switch (index, newValue) {
            case (let i?, let v?): members[i].value = v
            case (let i?, nil): members.remove(at: i)
            case (nil, let v?): members.append((key, v))
            case (nil, nil): break
            }
        }
    }

    /// Order-insensitive: the same names with equal values.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members {
            guard let other = rhs[member.key], other == member.value else { return false }
        }
        return true
    }
}

// MARK: - JSONNumber

/// A JSON number, kept as the decimal text it was written in.
///
/// Nothing goes through `Double` unless asked (``doubleValue``): `12345678901234567890` and
/// `0.1000000000000000000001` stay exact. Two numbers are equal when they are the same
/// decimal value, whatever their text (`1`, `1.0`, `10e-1` and `1E0` are equal); see
/// ``canonical`` for the one normal form each value has.
///
/// The text follows RFC 8259's grammar. The written exponent is limited to nine digits
/// (|e| ≤ 999999999), a range limit RFC 8259 §6 allows, so the normal form stays finite.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The decimal text as written.
    public let text: String

    /// A number from its JSON text; nil unless `text` is exactly an RFC 8259 number
    /// (no leading `+`, no leading zeros, no `.5` or `5.`, no NaN or Infinity).
    public init?(_ text: String) {
        var copy = text
        let valid = copy.withUTF8 { buffer in
            JSONNumber.scan(UnsafeRawBufferPointer(buffer), from: 0) == .success(buffer.count)
        }
        guard valid else { return nil }
        self.text = text
    }

    /// Text already checked by the parser.
    init(validatedText: String) { self.text = validatedText }

    public init(_ value: Int) { self.text = String(value) }
    public init(_ value: Int64) { self.text = String(value) }
    public init(integerLiteral value: Int) { self.init(value) }

    /// The shortest text that reads back as `value`; nil for NaN and infinities.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        // Swift prints the shortest round-trip digits ("1e-06", "0.1", "1.0"); all valid JSON
        // except a trailing ".0", which is valid too. `description` never gives "inf"/"nan" here.
        self.text = value == value.rounded() && abs(value) < 1e15
            ? String(Int64(value)) : value.description
    }

    public var description: String { text }

    /// The value as a `Double` (nearest, may round or overflow to ±infinity).
    public var doubleValue: Double { Double(text) ?? .nan }

    /// The value as an `Int64` when it is an integer in range (`1.0e2` gives 100), else nil.
    public var int64Value: Int64? {
        let d = decomposed
        if d.digits.isEmpty { return 0 }
        guard d.exponent >= 0, d.digits.count + d.exponent <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for digit in d.digits {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            magnitude = s
        }
        for _ in 0..<d.exponent {
            let (m, o) = magnitude.multipliedReportingOverflow(by: 10)
            if o { return nil }
            magnitude = m
        }
        if d.negative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// The one normal form of this value (what ``CanonicalJSON`` writes), computed exactly
    /// from the decimal text.
    ///
    /// Write the value as `±0.d₁d₂…dₖ × 10ⁿ` with `d₁ ≠ 0` and `dₖ ≠ 0` (the significant
    /// digits, leading and trailing zeros removed, never rounded). Then, as ECMAScript's
    /// `Number.prototype.toString` lays out digits (the layout RFC 8785 uses):
    /// - zero (also `-0`, `0.0e7`) is `0`;
    /// - `k ≤ n ≤ 21`: the digits then `n − k` zeros (`1.5e3` → `1500`,
    ///   `12345678901234567890` → itself);
    /// - `0 < n ≤ 21`: the digits with a point after the `n`-th (`10.50` → `10.5`);
    /// - `−6 < n ≤ 0`: `0.`, `−n` zeros, the digits (`0.000001` → `0.000001`);
    /// - otherwise: `d₁`, then `.d₂…dₖ` if `k > 1`, then `e`, the sign `+` or `-`, and
    ///   `n − 1` (`1e21` → `1e+21`, `0.0000001` → `1e-7`, `-12.5e-30` → `-1.25e-29`);
    /// - a minus sign in front of any non-zero negative value.
    ///
    /// For every number whose text is the shortest round-trip form of a double (what JSON
    /// producers usually write) this is exactly RFC 8785's form; unlike RFC 8785 it stays
    /// exact beyond double precision, so different values never share a form.
    public var canonical: String {
        let d = decomposed
        if d.digits.isEmpty { return "0" }
        var out: [UInt8] = []
        out.reserveCapacity(d.digits.count + 8)
        if d.negative { out.append(UInt8(ascii: "-")) }
        let k = d.digits.count
        let n = d.exponent + k
        let zero = UInt8(ascii: "0")
        if k <= n && n <= 21 {
            out.append(contentsOf: d.digits)
            out.append(contentsOf: repeatElement(zero, count: n - k))
        } else if 0 < n && n <= 21 {
            out.append(contentsOf: d.digits[0..<n])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: d.digits[n...])
        } else if -6 < n && n <= 0 {
            out.append(zero)
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: repeatElement(zero, count: -n))
            out.append(contentsOf: d.digits)
        } else {
            out.append(d.digits[0])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: d.digits[1...])
            }
            out.append(UInt8(ascii: "e"))
            out.append(UInt8(ascii: n - 1 >= 0 ? "+" : "-"))
            out.append(contentsOf: String((n - 1).magnitude).utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        lhs.text == rhs.text || lhs.canonical == rhs.canonical
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    /// value = (negative ? -1 : 1) × digits × 10^exponent, digits without leading or
    /// trailing zeros (empty for zero).
    var decomposed: (negative: Bool, digits: [UInt8], exponent: Int) {
        var bytes = Array(text.utf8)[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count)
        var fractionCount = 0
        var inFraction = false
        var exponent = 0
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let b = bytes[index]
            if b == UInt8(ascii: ".") {
                inFraction = true
            } else if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                var expNegative = false
                var i = bytes.index(after: index)
                if i < bytes.endIndex, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
                    expNegative = bytes[i] == UInt8(ascii: "-")
                    i = bytes.index(after: i)
                }
                // At most nine significant exponent digits (checked by the grammar scan).
                while i < bytes.endIndex {
                    exponent = exponent &* 10 &+ Int(bytes[i] - UInt8(ascii: "0"))
                    i = bytes.index(after: i)
                }
                if expNegative { exponent = -exponent }
                break
            } else {
                digits.append(b)
                if inFraction { fractionCount += 1 }
            }
            index = bytes.index(after: index)
        }
        exponent -= fractionCount
        // Strip leading zeros (do not change the value), then trailing ones (raise the exponent).
        let firstNonZero = digits.firstIndex { $0 != UInt8(ascii: "0") }
        guard let first = firstNonZero else { return (negative, [], 0) }
        let last = digits.lastIndex { $0 != UInt8(ascii: "0") }!
        exponent += digits.count - 1 - last
        return (negative, Array(digits[first...last]), exponent)
    }

    /// The outcome of scanning a number: where it ends, or what is wrong.
    enum Scan: Equatable {
        case success(Int)
        case failure(offset: Int, outOfRange: Bool)
    }

    /// Scans an RFC 8259 number starting at `start`; returns the offset after it.
    static func scan(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Scan {
        var i = start
        let end = bytes.count
        func isDigit(_ i: Int) -> Bool { i < end && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        if i < end && bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { return .failure(offset: i, outOfRange: false) }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            // "01" is not a number: a leading zero stands alone.
            if isDigit(i) { return .failure(offset: i, outOfRange: false) }
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < end && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { return .failure(offset: i, outOfRange: false) }
            while isDigit(i) { i += 1 }
        }
        if i < end && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < end && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { return .failure(offset: i, outOfRange: false) }
            while i < end && bytes[i] == UInt8(ascii: "0") { i += 1 }
            let significantStart = i
            while isDigit(i) { i += 1 }
            if i - significantStart > 9 { return .failure(offset: significantStart, outOfRange: true) }
        }
        return .success(i)
    }
}
