import Crypto
import Glibc

/// SHA-256 of the ``CanonicalJSON`` form of a JSON text, computed without materialising
/// either the value or its canonical bytes.
///
/// Why a second path to the same digest: ``CanonicalJSON/sha256Hex(ofJSON:)`` builds a
/// ``JSONValue`` (every string copied) and then the canonical bytes (copied again), which
/// is three times the size of the arguments. The relay digests every `tools/call`'s
/// arguments, some of them megabytes, and must stay small. Here the tree holds only byte
/// ranges and decoded keys (to sort them), and the canonical bytes stream through a small
/// buffer into the hasher. Tests hold both paths to the same digest.
public enum CanonicalDigest {
    /// The digest, lowercase hex; throws ``JSONScanError`` for text that is not strict JSON
    /// (including duplicate keys and lone surrogates, which have no canonical form).
    public static func sha256Hex(ofJSON bytes: UnsafeRawBufferPointer) throws(JSONScanError) -> String {
        let scanned = try JSONScanner.scan(bytes)
        var builder = SpanTreeBuilder(bytes: bytes, index: scanned.span.start)
        let root = try builder.value()
        var emitter = CanonicalEmitter(bytes: bytes)
        try emitter.emit(root)
        return emitter.finish()
    }

    public static func sha256Hex(ofJSON bytes: [UInt8]) throws(JSONScanError) -> String {
        try withBytes(bytes) { (raw) throws(JSONScanError) in try sha256Hex(ofJSON: raw) }
    }

    /// The same digest for text that ``JSONScanner`` has already accepted (the relay scans
    /// every line before it digests a part of it), without scanning it again. Duplicate keys
    /// and lone surrogates are still refused.
    public static func sha256Hex(ofValidatedJSON bytes: [UInt8]) throws(JSONScanError) -> String {
        try withBytes(bytes) { (raw) throws(JSONScanError) in
            guard !raw.isEmpty else { throw JSONScanError(offset: 0, reason: "empty input") }
            var builder = SpanTreeBuilder(bytes: raw, index: 0)
            let root = try builder.value()
            var emitter = CanonicalEmitter(bytes: raw)
            try emitter.emit(root)
            return emitter.finish()
        }
    }

    private static func withBytes(
        _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(JSONScanError) -> String
    ) throws(JSONScanError) -> String {
        var result: Result<String, JSONScanError> = .failure(JSONScanError(offset: 0, reason: "empty input"))
        bytes.withUnsafeBytes { raw in
            do throws(JSONScanError) { result = .success(try body(raw)) } catch { result = .failure(error) }
        }
        return try result.get()
    }
}

/// A JSON value as byte ranges of the source text.
private enum SpanNode {
    /// A number, string (quotes included) or literal.
    case scalar(ByteSpan, JSONKind)
    case array([SpanNode])
    /// Members already sorted by key in UTF-16 order.
    case object([(key: String, value: SpanNode)])
}

/// Builds a ``SpanNode`` tree from text the scanner has already validated.
private struct SpanTreeBuilder {
    let bytes: UnsafeRawBufferPointer
    var index: Int

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value() throws(JSONScanError) -> SpanNode {
        skipWhitespace()
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [(key: String, value: SpanNode)] = []
            skipWhitespace()
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                let keyStart = index
                skipString()
                let key = try decodedKey(ByteSpan(start: keyStart, end: index))
                skipWhitespace()
                index += 1  // :
                members.append((key, try value()))
                skipWhitespace()
                let separator = bytes[index]
                index += 1
                if separator == UInt8(ascii: "}") { break }
            }
            members.sort { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            for i in members.indices.dropFirst() where members[i].key == members[i - 1].key {
                throw JSONScanError(offset: start, reason: "duplicate key \"\(members[i].key)\"")
            }
            return .object(members)
        case UInt8(ascii: "["):
            index += 1
            var items: [SpanNode] = []
            skipWhitespace()
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                items.append(try value())
                skipWhitespace()
                let separator = bytes[index]
                index += 1
                if separator == UInt8(ascii: "]") { break }
            }
            return .array(items)
        case UInt8(ascii: "\""):
            skipString()
            return .scalar(ByteSpan(start: start, end: index), .string)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            index += bytes[index] == UInt8(ascii: "t") ? 4 : 5
            return .scalar(ByteSpan(start: start, end: index), .bool)
        case UInt8(ascii: "n"):
            index += 4
            return .scalar(ByteSpan(start: start, end: index), .null)
        default:
            while index < bytes.count, Self.isNumberByte(bytes[index]) { index += 1 }
            return .scalar(ByteSpan(start: start, end: index), .number)
        }
    }

    static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
    }

    /// Moves past a string: to the first quote not escaped by an odd run of backslashes
    /// (memchr finds candidates at memory speed).
    mutating func skipString() {
        index += 1
        let base = bytes.baseAddress!
        while true {
            let quote = UnsafeRawPointer(memchr(base + index, Int32(UInt8(ascii: "\"")), bytes.count - index)!) - base
            var backslashes = 0
            while quote - backslashes - 1 >= index, bytes[quote - backslashes - 1] == UInt8(ascii: "\\") { backslashes += 1 }
            index = quote + 1
            if backslashes % 2 == 0 { return }
        }
    }

    func decodedKey(_ span: ByteSpan) throws(JSONScanError) -> String {
        var collector = UTF8Collector()
        try StringTranscoder.transcode(bytes, span, into: &collector, loneSurrogates: .refuse)
        return String(decoding: collector.bytes, as: UTF8.self)
    }
}

/// Writes canonical bytes through a small buffer into SHA-256.
private struct CanonicalEmitter: DecodedSink {
    let bytes: UnsafeRawBufferPointer
    var hasher = SHA256()
    var buffer: [UInt8] = []
    static let flushAt = 64 * 1024

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        buffer.reserveCapacity(Self.flushAt + 16)
    }

    mutating func emit(_ node: SpanNode) throws(JSONScanError) {
        switch node {
        case .scalar(let span, .string):
            try emitString(span)
        case .scalar(let span, .number):
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.end]), as: UTF8.self)
            guard let number = JSONNumber(text) else { throw JSONScanError(offset: span.start, reason: "number out of range") }
            append(number.canonical.utf8)
        case .scalar(let span, _):
            plain(UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.end]))
        case .array(let items):
            append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { append(UInt8(ascii: ",")) }
                try emit(item)
            }
            append(UInt8(ascii: "]"))
        case .object(let members):
            append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { append(UInt8(ascii: ",")) }
                JSONWriter.appendQuoted(member.key, to: &buffer)
                append(UInt8(ascii: ":"))
                try emit(member.value)
            }
            append(UInt8(ascii: "}"))
        }
    }

    mutating func emitString(_ span: ByteSpan) throws(JSONScanError) {
        append(UInt8(ascii: "\""))
        try StringTranscoder.transcode(bytes, span, into: &self, loneSurrogates: .refuse)
        append(UInt8(ascii: "\""))
    }

    /// Plain bytes of a string body: everything but `"`, `\` and controls (none can occur
    /// unescaped in valid JSON) is copied as it is; literals pass through this path too.
    mutating func plain(_ run: UnsafeRawBufferPointer) {
        if buffer.count + run.count > Self.flushAt {
            flush()
            if run.count > Self.flushAt {
                hasher.update(bufferPointer: run)
                return
            }
        }
        buffer.append(contentsOf: run)
    }

    /// An escaped scalar, re-escaped the canonical (minimal) way.
    mutating func scalar(_ value: UInt32) {
        switch value {
        case 0x22: append(contentsOf: #"\""#)
        case 0x5C: append(contentsOf: #"\\"#)
        case 0x08: append(contentsOf: #"\b"#)
        case 0x09: append(contentsOf: #"\t"#)
        case 0x0A: append(contentsOf: #"\n"#)
        case 0x0C: append(contentsOf: #"\f"#)
        case 0x0D: append(contentsOf: #"\r"#)
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            append(contentsOf: #"\u00"#)
            append(hex[Int(value >> 4)])
            append(hex[Int(value & 0xF)])
        default:
            StringTranscoder.appendUTF8(value, to: &buffer)
        }
    }

    mutating func append(_ byte: UInt8) {
        buffer.append(byte)
        if buffer.count >= Self.flushAt { flush() }
    }

    mutating func append(contentsOf text: StaticString) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String.UTF8View) {
        buffer.append(contentsOf: text)
    }

    mutating func flush() {
        buffer.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func finish() -> String {
        flush()
        return SHA256Hex.hex(hasher.finalize())
    }
}
