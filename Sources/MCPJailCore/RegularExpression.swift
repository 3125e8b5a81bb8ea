import CPCRE2
import Glibc

/// A regular expression compiled by PCRE2 (libpcre2-8): the engine of schema `pattern`s
/// (written in ECMA-262 and translated by ``ECMARegex``) and of ``ErrorSanitizer``'s paths.
///
/// Why PCRE2 and not a Swift engine: Swift's `Regex` has no look-behind (Swift 6.3), which
/// ECMA-262 patterns and the sanitizer use, and Foundation's `NSRegularExpression` brings
/// ICU and CoreFoundation into the binary, which every `mcpjail run` paid for at start
/// (README, Performance). PCRE2 also bounds the work of one match (``matchLimit``,
/// ``heapLimitKiB``): a pattern with catastrophic backtracking gives up with
/// ``Match/tooCostly`` instead of stalling the relay.
///
/// The compiled code is read-only and shared by threads; each match has its own match data.
public final class RegularExpression: @unchecked Sendable {
    /// Backtracking steps one match may take (PCRE2's default is 10,000,000: about a second).
    public static let matchLimit: UInt32 = 1_000_000
    /// Heap one match may use for its backtracking frames.
    public static let heapLimitKiB: UInt32 = 16 * 1024

    /// Why a pattern did not compile: PCRE2's message and the byte offset in the pattern.
    public struct CompileError: Error, Sendable {
        public var message: String
        public var offset: Int
    }

    /// The outcome of a search.
    public enum Match: Equatable, Sendable {
        /// The first match, as UTF-8 byte offsets into the subject.
        case found(Range<Int>)
        case notFound
        /// The engine gave up at ``matchLimit`` or ``heapLimitKiB``: neither a match nor not.
        case tooCostly
    }

    /// The pattern as compiled.
    public let pattern: String
    private let code: OpaquePointer

    /// Compiles `pattern` in UTF mode. `unicodeClasses` makes `\d`, `\w`, `\s` and `\b`
    /// Unicode-aware (PCRE2_UCP); `unsetBackreferencesMatchEmpty` gives a reference to a
    /// group that has not matched ECMA-262's meaning, the empty string.
    public init(_ pattern: String, unicodeClasses: Bool = false, unsetBackreferencesMatchEmpty: Bool = false)
        throws(CompileError)
    {
        var options = UInt32(PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C)
        if unicodeClasses { options |= UInt32(PCRE2_UCP) }
        if unsetBackreferencesMatchEmpty { options |= UInt32(PCRE2_MATCH_UNSET_BACKREF) }
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled = pattern.utf8.withContiguousStorageIfAvailable { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, options, &errorCode, &errorOffset, nil)
        } ?? Array(pattern.utf8).withUnsafeBufferPointer { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw CompileError(message: Self.message(errorCode), offset: errorOffset)
        }
        self.pattern = pattern
        self.code = compiled
    }

    deinit { pcre2_code_free_8(code) }

    /// The first match in `subject` at or after UTF-8 byte offset `start`.
    public func firstMatch(in subject: String, from start: Int = 0) -> Match {
        var subject = subject
        return subject.withUTF8 { bytes in firstMatch(in: UnsafeRawBufferPointer(bytes), from: start) }
    }

    /// The first match in UTF-8 `bytes` (valid UTF-8: not checked again) at or after `start`.
    public func firstMatch(in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Match {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            // An empty buffer may have no address; PCRE2 wants one.
            var zero: UInt8 = 0
            return withUnsafeBytes(of: &zero) { firstMatch(in: UnsafeRawBufferPointer(rebasing: $0[0..<0]), from: start) }
        }
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else { return .tooCostly }
        defer { pcre2_match_data_free_8(data) }
        let status = pcre2_match_8(code, base, bytes.count, start, UInt32(PCRE2_NO_UTF_CHECK), data, Self.context)
        switch status {
        case PCRE2_ERROR_NOMATCH:
            return .notFound
        case ..<0:
            return .tooCostly
        default:
            let offsets = pcre2_get_ovector_pointer_8(data)!
            return .found(offsets[0]..<offsets[1])
        }
    }

    /// `subject` with every match replaced by `replacement` (taken literally). Where the
    /// engine gives up, the rest of the subject is replaced by one `replacement`: what could
    /// not be inspected is hidden, not passed on.
    public func replacingMatches(in subject: String, with replacement: String) -> String {
        var subject = subject
        return subject.withUTF8 { buffer in
            let bytes = UnsafeRawBufferPointer(buffer)
            var out: [UInt8] = []
            var copied = 0
            var position = 0
            while position <= bytes.count {
                switch firstMatch(in: bytes, from: position) {
                case .notFound:
                    position = bytes.count + 1
                case .tooCostly:
                    out.append(contentsOf: replacement.utf8)
                    return String(decoding: out, as: UTF8.self)
                case .found(let range):
                    out.append(contentsOf: bytes[copied..<range.lowerBound])
                    out.append(contentsOf: replacement.utf8)
                    copied = range.upperBound
                    // An empty match moves on by one whole character.
                    position = range.isEmpty ? Self.nextCharacter(bytes, after: range.upperBound) : range.upperBound
                }
            }
            out.append(contentsOf: bytes[copied...])
            return String(decoding: out, as: UTF8.self)
        }
    }

    private static func nextCharacter(_ bytes: UnsafeRawBufferPointer, after offset: Int) -> Int {
        var next = offset + 1
        while next < bytes.count, bytes[next] & 0xC0 == 0x80 { next += 1 }
        return next
    }

    private static func message(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = pcre2_get_error_message_8(code, &buffer, buffer.count)
        return count > 0 ? String(decoding: buffer[..<Int(count)], as: UTF8.self) : "error \(code)"
    }

    /// The limits of every match; read-only once made, so shared by every thread.
    nonisolated(unsafe) private static let context: OpaquePointer? = {
        let context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, matchLimit)
        pcre2_set_heap_limit_8(context, heapLimitKiB)
        return context
    }()
}
