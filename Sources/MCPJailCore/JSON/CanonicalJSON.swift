import Crypto

/// One byte sequence per JSON value: what digests and idempotency keys are computed over.
///
/// The form follows RFC 8785 (JSON Canonicalization Scheme) except for numbers:
/// - no whitespace anywhere;
/// - object members sorted by their names' UTF-16 code units (RFC 8785 §3.2.3), recursively;
///   array order kept;
/// - strings escaped minimally (see ``JSONWriter``), everything else as UTF-8;
/// - `true`, `false`, `null` as such;
/// - numbers in ``JSONNumber/canonical`` form, computed exactly from the decimal text rather
///   than through a double: `1`, `1.0`, `10e-1`, `1E0` all give `1`; `-0` gives `0`;
///   `1.5e3` gives `1500`; `1e-7` gives `1e-7`; `12345678901234567890` stays itself. For
///   numbers a double represents exactly in their shortest form this equals RFC 8785's
///   output; beyond double precision it stays exact where RFC 8785 would round.
///
/// So two JSON texts get the same canonical bytes exactly when they are the same JSON value
/// (``JSONValue`` equality), whatever their whitespace, member order, escaping or number spelling.
public enum CanonicalJSON {
    /// The canonical bytes of `value`.
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        append(value, to: &out)
        return out
    }

    /// Parses `bytes` strictly (``JSONParser``) and returns the canonical bytes.
    public static func canonicalize(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> [UInt8] {
        serialize(try JSONParser.parse(bytes))
    }

    /// SHA-256, lowercase hex, of the canonical form of the JSON text `bytes`.
    /// Throws ``JSONParseError`` when `bytes` is not strict JSON.
    public static func sha256Hex(ofJSON bytes: some Collection<UInt8>) throws(JSONParseError) -> String {
        sha256Hex(of: try JSONParser.parse(bytes))
    }

    /// SHA-256, lowercase hex, of the canonical form of `value`.
    public static func sha256Hex(of value: JSONValue) -> String {
        SHA256Hex.digest(serialize(value))
    }

    /// Appends the canonical form of `value` to `out`.
    public static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: n.canonical.utf8)
        case .string(let s): JSONWriter.appendQuoted(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            let sorted = object.members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            for (i, member) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendQuoted(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(member.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

/// SHA-256 as 64 lowercase hex digits.
public enum SHA256Hex {
    public static func digest(_ bytes: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        return hex(hasher.finalize())
    }

    public static func digest(_ buffer: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: buffer)
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: 64) { out in
                for (i, byte) in bytes.enumerated() {
                    out[2 * i] = hexDigits[Int(byte >> 4)]
                    out[2 * i + 1] = hexDigits[Int(byte & 0x0F)]
                }
                return 64
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
