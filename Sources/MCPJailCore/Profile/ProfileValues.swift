/// The value syntaxes of a profile: sizes, durations, paths, and their TOML spelling.

/// Sizes: `"64M"`, `"16MiB"`, `"512K"`, `"1G"`, `"2T"`, `"100B"`, or a plain integer of
/// bytes (`65536` or `"65536"`). K/M/G/T are powers of 1024, the same as KiB/MiB/GiB/TiB;
/// units are case-insensitive. `KB`/`MB` are refused rather than guessed at.
enum SizeSyntax {
    static let units: [(suffix: String, multiplier: Int)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1),
    ]

    /// The number of bytes, or why the text is not a size.
    static func parse(_ text: String) -> Result<Int, ValueProblem> {
        let trimmed = text.trimmingSpaces()
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(digits.count).trimmingSpaces().lowercased()
        let example = "a size like \"64M\", \"16MiB\", \"512K\", \"1G\" or a number of bytes"
        guard !digits.isEmpty else { return .failure("'\(text)' is not \(example)") }
        var multiplier = 1
        if !unit.isEmpty {
            guard let match = units.first(where: { $0.suffix == unit }) else {
                if ["kb", "mb", "gb", "tb"].contains(unit) {
                    return .failure(
                        "'\(text)': write \(unit.prefix(1).uppercased()) or \(unit.prefix(1).uppercased())iB (powers of 1024)")
                }
                return .failure("'\(text)' is not \(example)")
            }
            multiplier = match.multiplier
        }
        guard let number = Int(digits) else { return .failure("'\(text)' is too large") }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return .failure("'\(text)' is too large") }
        return .success(bytes)
    }

    /// The shortest exact spelling: `16M`, `512K`, or plain bytes.
    static func format(_ bytes: Int) -> String {
        for (suffix, multiplier) in [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
        where bytes != 0 && bytes % multiplier == 0 {
            return "\(bytes / multiplier)\(suffix)"
        }
        return "\(bytes)"
    }
}

/// Durations: a whole number and a unit, `"500ms"`, `"2s"`, `"15m"`, `"24h"`.
enum DurationSyntax {
    static func parse(_ text: String) -> Result<Duration, ValueProblem> {
        let trimmed = text.trimmingSpaces()
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = String(trimmed.dropFirst(digits.count)).trimmingSpaces()
        let bad = "'\(text)' is not a duration like \"500ms\", \"2s\", \"15m\" or \"24h\""
        guard !digits.isEmpty, let number = Int64(digits), number <= 1_000_000_000 else {
            return .failure(ValueProblem(message: bad))
        }
        switch unit {
        case "us": return .success(.microseconds(number))
        case "ms": return .success(.milliseconds(number))
        case "s": return .success(.seconds(number))
        case "m": return .success(.seconds(number * 60))
        case "h": return .success(.seconds(number * 3600))
        default: return .failure(ValueProblem(message: bad))
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    /// The largest whole unit: `2s`, `500ms`, `15m`, `200us`.
    static func format(_ duration: Duration) -> String {
        let micros = microseconds(duration)
        if micros % 1000 != 0 { return "\(micros)us" }
        let ms = milliseconds(duration)
        if ms != 0 && ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms != 0 && ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

/// Paths: absolute, no `..`, lexically normalized; `${PROFILE_DIR}` at the start expands to
/// the directory that holds the profile file (symlinks resolved) and may be followed by
/// `/..` components, so shipped profiles can name things in their own checkout.
enum PathSyntax {
    static let profileDirVariable = "${PROFILE_DIR}"

    /// The expanded, normalized path, or why the text is not an acceptable path.
    static func expand(_ text: String, profileDirectory: String) -> Result<String, ValueProblem> {
        if text.isEmpty { return .failure("empty path") }
        if text.utf8.contains(0) { return .failure("path contains a NUL byte") }
        var base: [Substring] = []
        var rest = Substring(text)
        var leadingDotDotAllowed = false
        if text.hasPrefix(profileDirVariable) {
            rest = rest.dropFirst(profileDirVariable.count)
            guard rest.isEmpty || rest.hasPrefix("/") else {
                return .failure("'\(text)': ${PROFILE_DIR} must be followed by '/' or nothing")
            }
            base = profileDirectory.split(separator: "/", omittingEmptySubsequences: true)
            leadingDotDotAllowed = true
        } else if hasVariable(text.utf8) {
            return .failure(
                "'\(text)': only ${PROFILE_DIR} is expanded, and only at the start of a path")
        } else if !text.hasPrefix("/") {
            return .failure("'\(text)' is a relative path; paths must be absolute (or start with ${PROFILE_DIR})")
        }
        if hasVariable(rest.utf8) {
            return .failure(
                "'\(text)': only ${PROFILE_DIR} is expanded, and only at the start of a path")
        }
        var components = base
        for component in rest.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".":
                continue
            case "..":
                guard leadingDotDotAllowed else {
                    return .failure(
                        "'\(text)' has a '..' component; write the path out (only ${PROFILE_DIR}/.. may go up)")
                }
                if !components.isEmpty { components.removeLast() }
            default:
                leadingDotDotAllowed = false
                components.append(component)
            }
        }
        return .success(absolute(components))
    }

    /// Whether the text holds "${". By the UTF-8 bytes: `contains` with a string argument is
    /// Foundation's, a CFString search for every path of every profile at each start.
    private static func hasVariable(_ bytes: some Collection<UInt8>) -> Bool {
        var afterDollar = false
        for byte in bytes {
            if afterDollar && byte == UInt8(ascii: "{") { return true }
            afterDollar = byte == UInt8(ascii: "$")
        }
        return false
    }

    /// Lexical normalization of an absolute path (no `..` handling beyond dropping it at `/`).
    static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        return absolute(components)
    }

    /// "/" followed by the components, joined by "/". Written out rather than with
    /// `joined(separator:)`: that is an unspecialized generic of the standard library, whose
    /// first call has the runtime scan every protocol conformance in the binary for the
    /// element type (~0.1 ms of each `mcpjail run`, which normalizes its profile paths).
    private static func absolute(_ components: [Substring]) -> String {
        var path = "/"
        for (index, component) in components.enumerated() {
            if index > 0 { path.append("/") }
            path.append(contentsOf: component)
        }
        return path
    }

    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}

/// TOML spelling for the effective-policy output, key paths and client config snippets.
public enum TOMLText {
    public static func isBareKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.unicodeScalars.allSatisfy { scalar in
                (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                    || scalar == "_" || scalar == "-"
            }
    }

    public static func key(_ key: String) -> String {
        isBareKey(key) ? key : string(key)
    }

    /// A basic string, escaped.
    public static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func array(_ values: [String]) -> String {
        "[" + values.map(string).joined(separator: ", ") + "]"
    }

    /// A JSON value as an inline TOML value (null, which TOML lacks, as the string "null").
    static func inline(_ value: JSONValue) -> String {
        switch value {
        case .null: return "\"null\""
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number):
            // TOML floats need digits on both sides of the point.
            if let integer = number.int64Value { return String(integer) }
            let double = number.doubleValue
            return double.description.contains(".") || double.description.contains("e") ? double.description : double.description + ".0"
        case .string(let text): return string(text)
        case .array(let elements): return "[" + elements.map(inline).joined(separator: ", ") + "]"
        case .object(let object):
            if object.members.isEmpty { return "{}" }
            return "{ " + object.members.map { key($0.key) + " = " + inline($0.value) }.joined(separator: ", ") + " }"
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}

/// Why a value is not acceptable; written as a string literal at the failure site.
struct ValueProblem: Error, ExpressibleByStringInterpolation {
    let message: String
    init(message: String) { self.message = message }
    init(stringLiteral value: String) { self.message = value }
}

/// The profile's spellings of values, for other modules' output (`doctor`).
public enum ProfileFormat {
    /// `"16M"`, `"512K"`, or plain bytes.
    public static func size(_ bytes: Int) -> String { SizeSyntax.format(bytes) }
    /// `"2s"`, `"500ms"`, `"15m"`, `"200us"`.
    public static func duration(_ duration: Duration) -> String { DurationSyntax.format(duration) }
    /// `1`, `0.5`.
    public static func cores(_ cores: Double) -> String { ProfileValidator.formatCores(cores) }
}

extension Duration {
    /// Whole nanoseconds (negative durations count as zero), for monotonic deadlines.
    public var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds / 1_000_000_000))
    }

    /// Seconds as a `Double`.
    public var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
