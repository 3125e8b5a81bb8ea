/// Exact decimal arithmetic for the numeric keywords: comparisons (`minimum`, `maximum`,
/// `exclusive*`), `multipleOf`, and "is this an integer" for `type`.
///
/// JSON numbers keep their decimal text (``JSONNumber``), so `0.1`, `1e400` and
/// `12345678901234567891` are compared exactly, never through `Double`. The common case, an
/// integer of at most 18 digits, takes an `Int64` path that allocates nothing.
struct SchemaDecimal: Sendable, Equatable {
    /// value = (negative ? -1 : 1) × digits × 10^exponent; `digits` are ASCII without leading
    /// or trailing zeros, empty for zero.
    let negative: Bool
    let digits: [UInt8]
    let exponent: Int
    /// The value when it is an integer that fits an `Int64`.
    let int64: Int64?

    init(_ number: JSONNumber) {
        if let small = Self.smallInteger(number.text) {
            self.init(int64: small)
            return
        }
        let d = number.decomposed
        self.init(negative: d.negative && !d.digits.isEmpty, digits: d.digits, exponent: d.exponent,
                  int64: number.int64Value)
    }

    private init(negative: Bool, digits: [UInt8], exponent: Int, int64: Int64?) {
        self.negative = negative
        self.digits = digits
        self.exponent = exponent
        self.int64 = int64
    }

    init(int64 value: Int64) {
        var magnitude = value.magnitude
        var reversed: [UInt8] = []
        var exponent = 0
        while magnitude > 0 && magnitude % 10 == 0 {
            magnitude /= 10
            exponent += 1
        }
        while magnitude > 0 {
            reversed.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        self.init(negative: value < 0, digits: reversed.reversed(), exponent: reversed.isEmpty ? 0 : exponent,
                  int64: value)
    }

    var isZero: Bool { digits.isEmpty }

    /// True when the value has no fractional part (`1.0` and `1e2` are integers).
    var isInteger: Bool { int64 != nil || digits.isEmpty || exponent >= 0 }

    /// The integer in `text` when it is plain (`-?[0-9]{1,18}`), without allocating.
    static func smallInteger(_ text: String) -> Int64? {
        let utf8 = text.utf8
        guard utf8.count <= 19 else { return nil }
        var value: Int64 = 0
        var negative = false
        var sawDigit = false
        for byte in utf8 {
            if byte == UInt8(ascii: "-") && !negative && !sawDigit {
                negative = true
                continue
            }
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            sawDigit = true
            value = value &* 10 &+ Int64(byte &- 0x30)
        }
        guard sawDigit, value >= 0 else { return nil }
        return negative ? -value : value
    }

    /// Whether a JSON number is an integer in the JSON Schema sense (zero fractional part).
    static func isInteger(_ number: JSONNumber) -> Bool {
        let utf8 = number.text.utf8
        if !utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            return true
        }
        return SchemaDecimal(number).isInteger
    }

    /// -1, 0 or 1 as `self` is less than, equal to or greater than `other`.
    func compare(_ other: SchemaDecimal) -> Int {
        if let a = int64, let b = other.int64 { return a < b ? -1 : (a == b ? 0 : 1) }
        if isZero && other.isZero { return 0 }
        let signA = isZero ? 0 : (negative ? -1 : 1)
        let signB = other.isZero ? 0 : (other.negative ? -1 : 1)
        if signA != signB { return signA < signB ? -1 : 1 }
        let magnitude = Self.compareMagnitude(self, other)
        return signA < 0 ? -magnitude : magnitude
    }

    private static func compareMagnitude(_ a: SchemaDecimal, _ b: SchemaDecimal) -> Int {
        // Both non-zero: compare the position of the leading digit, then the digits.
        let topA = a.exponent + a.digits.count
        let topB = b.exponent + b.digits.count
        if topA != topB { return topA < topB ? -1 : 1 }
        let count = max(a.digits.count, b.digits.count)
        for i in 0..<count {
            let da = i < a.digits.count ? a.digits[i] : UInt8(ascii: "0")
            let db = i < b.digits.count ? b.digits[i] : UInt8(ascii: "0")
            if da != db { return da < db ? -1 : 1 }
        }
        return 0
    }

    /// Whether `self` is an integer multiple of `divisor` (which is positive), exactly when
    /// the divisor's significant digits fit in 64 bits, else through `Double`.
    func isMultiple(of divisor: SchemaDecimal) -> Bool {
        if isZero { return true }
        if let a = int64, let m = divisor.int64, m > 0 { return a % m == 0 }
        // self = A × 10^p, divisor = M × 10^q with A, M not divisible by 10.
        // p < q: A / (M × 10^(q-p)) would need A divisible by 10: never.
        if exponent < divisor.exponent { return false }
        guard let m = Self.uint64(divisor.digits) else { return doubleIsMultiple(of: divisor) }
        // A × 10^(p-q) mod M, digit by digit, then the power of ten by squaring.
        let modulus = UInt128(m)
        var remainder: UInt128 = 0
        for digit in digits {
            remainder = (remainder * 10 + UInt128(digit - UInt8(ascii: "0"))) % modulus
        }
        var power: UInt128 = 1 % modulus
        var base: UInt128 = 10 % modulus
        var k = exponent - divisor.exponent
        while k > 0 {
            if k & 1 == 1 { power = power * base % modulus }
            base = base * base % modulus
            k >>= 1
        }
        return remainder * power % modulus == 0
    }

    private func doubleIsMultiple(of divisor: SchemaDecimal) -> Bool {
        let quotient = doubleValue / divisor.doubleValue
        guard quotient.isFinite else { return false }
        return quotient == quotient.rounded()
    }

    var doubleValue: Double {
        let text = (negative ? "-" : "") + (digits.isEmpty ? "0" : String(decoding: digits, as: UTF8.self))
            + "e\(exponent)"
        return Double(text) ?? .nan
    }

    private static func uint64(_ digits: [UInt8]) -> UInt64? {
        guard digits.count <= 19 else { return nil }
        var value: UInt64 = 0
        for digit in digits { value = value * 10 + UInt64(digit - UInt8(ascii: "0")) }
        return value
    }
}
