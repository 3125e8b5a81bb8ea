import Glibc

// Small string helpers that Foundation's StringProtocol extensions used to provide; linking
// Foundation for them would load ICU and CoreFoundation into every `mcpjail run`.

extension StringProtocol {
    /// The text without leading and trailing white space (line ends included).
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
            let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}

extension Unicode.Scalar {
    /// `U+00E9`-style: at least four upper-case hex digits, without the prefix.
    public var hexCode: String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension StringProtocol {
    /// Whether `other` occurs in the text, as UTF-8 bytes (no Unicode normalization: the
    /// callers look for ASCII such as `..` or `://`).
    ///
    /// Foundation's generic `contains(_: some StringProtocol)` is visible in every file of
    /// this package (TOMLKit imports Foundation) and, being more specific than the standard
    /// library's, would win and link Foundation back in; this non-generic one wins over both.
    /// memchr(3) and memcmp(3), not the standard library's searcher: that one builds a `[Character: Int]`
    /// table, whose first use makes the runtime search all conformance records (~0.1 ms).
    public func contains(_ other: String) -> Bool {
        var text = String(self)
        var other = other
        return text.withUTF8 { haystack in
            other.withUTF8 { needle in
                guard let first = needle.first else { return true }
                guard needle.count <= haystack.count, let base = haystack.baseAddress else { return false }
                var start = 0
                let lastStart = haystack.count - needle.count
                while start <= lastStart {
                    guard let hit = memchr(base + start, Int32(first), lastStart - start + 1) else { return false }
                    let offset = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - base
                    if memcmp(base + offset, needle.baseAddress!, needle.count) == 0 { return true }
                    start = offset + 1
                }
                return false
            }
        }
    }

    /// The text cut or padded with spaces to exactly `width` Characters, for table columns.
    public func padded(to width: Int) -> String {
        count >= width ? String(prefix(width)) : String(self) + String(repeating: " ", count: width - count)
    }
}
