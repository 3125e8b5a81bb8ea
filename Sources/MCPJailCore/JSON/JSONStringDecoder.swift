// Decoding of JSON string literals the scanner has validated, shared by the scanner (keys,
// ids) and the canonical digest, so that one piece of code says what an escape means.

import Glibc

/// Runs of string content that need no decoding: printable ASCII other than the quote and
/// the backslash. The scanner, the parser and the walkers skip them sixteen bytes at a time
/// (SSE2, in every x86-64 and arm64 CPU), then eight, then one.
enum PlainASCII {
    /// The index of the first byte at or after `from` (and before `count`) that is not plain
    /// ASCII; `count` when there is none.
    @inline(__always) static func skip(_ base: UnsafeRawPointer, from: Int, count: Int) -> Int {
        var index = from
        // 64 bytes a turn (one test of four vectors' stops), then 16 to find the stop: a
        // 64 KiB string value is scanned in 3 µs instead of 6.
        while count - index >= 64 {
            let stops = stopMask(base.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
                .| stopMask(base.loadUnaligned(fromByteOffset: index + 16, as: SIMD16<UInt8>.self))
                .| stopMask(base.loadUnaligned(fromByteOffset: index + 32, as: SIMD16<UInt8>.self))
                .| stopMask(base.loadUnaligned(fromByteOffset: index + 48, as: SIMD16<UInt8>.self))
            if any(stops) { break }
            index += 64
        }
        while count - index >= 16 {
            if hasStop(base.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)) { break }
            index += 16
        }
        while count - index >= 8 {
            if !isPlain(base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) { break }
            index += 8
        }
        while index < count, isPlain(base.load(fromByteOffset: index, as: UInt8.self)) { index += 1 }
        return index
    }

    @inline(__always) static func isPlain(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
    }

    /// True when one of the sixteen bytes is a quote, a backslash, a control character or
    /// non-ASCII. As signed bytes, non-ASCII ones are negative: one `< 0x20` finds both.
    @inline(__always) static func hasStop(_ bytes: SIMD16<UInt8>) -> Bool { any(stopMask(bytes)) }

    /// Which of the sixteen bytes are stops (see ``hasStop(_:)``).
    @inline(__always) static func stopMask(_ bytes: SIMD16<UInt8>) -> SIMDMask<SIMD16<Int8>> {
        let low = unsafeBitCast(bytes, to: SIMD16<Int8>.self) .< SIMD16<Int8>(repeating: 0x20)
        return low .| (bytes .== SIMD16<UInt8>(repeating: 0x22)) .| (bytes .== SIMD16<UInt8>(repeating: 0x5C))
    }

    /// True when none of the eight bytes is a quote, a backslash, a control character or
    /// non-ASCII (the classic has-zero-byte bit tricks).
    @inline(__always) static func isPlain(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        let control = (word &- (ones &* 0x20)) & ~word & highs
        let quote = hasZeroByte(word ^ (ones &* 0x22))
        let backslash = hasZeroByte(word ^ (ones &* 0x5C))
        return (word & highs) | control | quote | backslash == 0
    }
}

/// Receives the UTF-8 bytes of a decoded string.
protocol DecodedSink {
    mutating func plain(_ run: UnsafeRawBufferPointer)
    mutating func scalar(_ value: UInt32)
}

struct UTF8Collector: DecodedSink {
    var bytes: [UInt8] = []
    mutating func plain(_ run: UnsafeRawBufferPointer) { bytes.append(contentsOf: run) }
    mutating func scalar(_ value: UInt32) { StringTranscoder.appendUTF8(value, to: &bytes) }

    /// The decoded text of the validated literal at `span`; lone surrogates become U+FFFD.
    static func decode(_ bytes: UnsafeRawBufferPointer, _ span: ByteSpan) -> String {
        var collector = UTF8Collector()
        try? StringTranscoder.transcode(bytes, span, into: &collector, loneSurrogates: .replace)
        return String(decoding: collector.bytes, as: UTF8.self)
    }
}

/// Decodes a validated JSON string literal into runs of plain bytes and escaped scalars:
/// the one decoder behind the scanner's keys and ids and the canonical digest.
enum StringTranscoder {
    /// What a `\uD800`-style surrogate without its partner becomes.
    enum LoneSurrogates {
        /// An error: it has no canonical form (the digest).
        case refuse
        /// U+FFFD, as most parsers do (keys and ids, compared as the server reads them).
        case replace
    }

    /// Decodes the literal at `span` (quotes included) into `sink`.
    static func transcode(
        _ bytes: UnsafeRawBufferPointer, _ span: ByteSpan, into sink: inout some DecodedSink,
        loneSurrogates: LoneSurrogates
    ) throws(JSONScanError) {
        var i = span.start + 1
        let end = span.end - 1
        var runStart = i
        let base = bytes.baseAddress!
        while i < end {
            guard let escape = memchr(base + i, Int32(UInt8(ascii: "\\")), end - i) else { break }
            i = UnsafeRawPointer(escape) - base
            if i > runStart { sink.plain(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            let kind = bytes[i + 1]
            i += 2
            switch kind {
            case UInt8(ascii: "b"): sink.scalar(0x08)
            case UInt8(ascii: "f"): sink.scalar(0x0C)
            case UInt8(ascii: "n"): sink.scalar(0x0A)
            case UInt8(ascii: "r"): sink.scalar(0x0D)
            case UInt8(ascii: "t"): sink.scalar(0x09)
            case UInt8(ascii: "u"):
                var code = hex4(bytes, i)
                i += 4
                if (0xD800..<0xDC00).contains(code), i + 6 <= end, bytes[i] == UInt8(ascii: "\\"),
                    bytes[i + 1] == UInt8(ascii: "u"), case let low = hex4(bytes, i + 2), (0xDC00..<0xE000).contains(low)
                {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if (0xD800..<0xE000).contains(code) {
                    guard loneSurrogates == .replace else { throw JSONScanError(offset: i, reason: "lone surrogate") }
                    code = 0xFFFD
                }
                sink.scalar(code)
            default: sink.scalar(UInt32(kind))  // " \ /
            }
            runStart = i
        }
        if end > runStart { sink.plain(UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])) }
    }

    static func hex4(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[at + offset]
            let digit: UInt32 =
                switch byte {
                case 0x30...0x39: UInt32(byte - 0x30)
                case 0x61...0x66: UInt32(byte - 0x61 + 10)
                default: UInt32(byte - 0x41 + 10)
                }
            value = value << 4 | digit
        }
        return value
    }

    static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
