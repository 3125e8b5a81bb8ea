import FoundationEssentials
import Glibc

/// Removes secret values from bytes on their way to the client or a log: each value
/// itself, its JSON-escaped spelling, and its base64 forms (standard and URL-safe, at each
/// of the three alignments inside a longer base64 text). Values shorter than
/// ``minimumLength`` bytes are not searched for: they would match ordinary text.
public struct SecretRedactor: Sendable {
    public static let replacement = Array("[REDACTED]".utf8)
    public static let minimumLength = 6

    private let needles: [[UInt8]]
    private let firstBytes: [Bool]

    public init(secrets: [String]) {
        var needles: Set<[UInt8]> = []
        for secret in secrets where secret.utf8.count >= Self.minimumLength {
            let raw = Array(secret.utf8)
            needles.insert(raw)
            let quoted = JSONWriter.quoted(secret)
            needles.insert(Array(quoted.utf8.dropFirst().dropLast()))
            for form in Self.base64Forms(raw) where form.count >= Self.minimumLength { needles.insert(form) }
        }
        // Longest first, so a value inside another value's base64 is not half-replaced.
        self.needles = needles.sorted { $0.count > $1.count }
        var firstBytes = [Bool](repeating: false, count: 256)
        for needle in self.needles { firstBytes[Int(needle[0])] = true }
        self.firstBytes = firstBytes
    }

    public var isEmpty: Bool { needles.isEmpty }

    /// The bytes with every occurrence replaced, or nil when nothing was found.
    public func redact(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        guard !needles.isEmpty else { return nil }
        var out: [UInt8]? = nil
        var copied = 0
        var index = 0
        let count = bytes.count
        while index < count {
            guard firstBytes[Int(bytes[index])] else {
                index += 1
                continue
            }
            var matchedLength = 0
            for needle in needles where needle.count <= count - index {
                var k = 0
                while k < needle.count && bytes[index + k] == needle[k] { k += 1 }
                if k == needle.count {
                    matchedLength = needle.count
                    break
                }
            }
            if matchedLength == 0 {
                index += 1
                continue
            }
            if out == nil { out = []; out!.reserveCapacity(count) }
            out!.append(contentsOf: bytes[copied..<index])
            out!.append(contentsOf: Self.replacement)
            index += matchedLength
            copied = index
        }
        guard var result = out else { return nil }
        result.append(contentsOf: bytes[copied..<count])
        return result
    }

    public func redact(_ text: String) -> String {
        var copy = text
        return copy.withUTF8 { buffer in
            redact(UnsafeRawBufferPointer(buffer)).map { String(decoding: $0, as: UTF8.self) }
        } ?? text
    }

    /// The base64 characters that depend only on the secret's bytes, for the secret placed
    /// at offsets 0, 1 and 2 of a 3-byte group, in both alphabets.
    static func base64Forms(_ raw: [UInt8]) -> [[UInt8]] {
        var forms: [[UInt8]] = []
        for offset in 0..<3 {
            let encoded = Array(Data(Array(repeating: 0, count: offset) + raw).base64EncodedString().utf8)
            // Characters fully inside the secret: from the first 6-bit group that starts at
            // or after the secret's first bit, to the last group ending at or before its end.
            let first = (offset * 8 + 5) / 6
            let last = ((offset + raw.count) * 8) / 6
            guard first < last, last <= encoded.count else { continue }
            let standard = Array(encoded[first..<last])
            forms.append(standard)
            forms.append(standard.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 })
        }
        return forms
    }
}

/// Makes a server's error text safe for the model: no stack traces, no host paths, no
/// secrets. Applied to JSON-RPC error responses and to tool results with `isError: true`;
/// successful results pass unchanged (apart from secret redaction).
public struct ErrorSanitizer: Sendable {
    public let redactor: SecretRedactor

    public init(redactor: SecretRedactor) { self.redactor = redactor }

    // Absolute paths of two or more components, not preceded by a word character, `.`,
    // `:` or `/` (so URLs like https://host/a/b keep their shape).
    // `\w` is Unicode-aware here (PCRE2_UCP), so a path with non-ASCII names is one path.
    private static let pathPattern = try! RegularExpression(
        #"(?<![\w.:/~-])/(?:[\w.@+~-]+/)+[\w.@+~-]*"#, unicodeClasses: true)

    /// The text with traceback frames dropped (the final exception line kept) and paths
    /// replaced by `<path>`, then secrets redacted.
    public func sanitize(_ text: String) -> String {
        var lines: [Substring] = []
        var inTraceback = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let start = line.firstRange(of: "Traceback (most recent call last)") {
                // The frames follow on the next lines; keep what came before on this one.
                let before = line[..<start.lowerBound].trimmingWhitespace()
                if !before.isEmpty { lines.append(Substring(before)) }
                inTraceback = true
                continue
            }
            if inTraceback {
                if line.hasPrefix(" ") || line.hasPrefix("\t") || line.isEmpty { continue }
                inTraceback = false
            }
            // Java, JavaScript and Go frames.
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.count != line.count, trimmed.hasPrefix("at ") { continue }
            if trimmed.hasPrefix("goroutine ") { continue }
            lines.append(line)
        }
        let joined = lines.joined(separator: "\n")
        let withoutPaths = Self.pathPattern.replacingMatches(in: joined, with: "<path>")
        return redactor.redact(withoutPaths)
    }

    /// A server's error response or `isError` tool result with every string inside
    /// `error` or `result` sanitized; nil when nothing changed.
    public func sanitizeErrorReply(_ line: UnsafeRawBufferPointer) -> [UInt8]? {
        guard case .object(var message)? = try? JSONParser.parse(line) else { return nil }
        var changed = false
        for key in ["error", "result"] {
            if let value = message[key] {
                message[key] = value.mapStrings { text in
                    let cleaned = sanitize(text)
                    if !cleaned.utf8.elementsEqual(text.utf8) { changed = true }
                    return cleaned
                }
            }
        }
        return changed ? JSONWriter.bytes(.object(message)) : nil
    }
}
