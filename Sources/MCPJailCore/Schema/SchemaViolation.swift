/// The first way an instance fails its schema: where, which keyword, and why.
///
/// `instanceLocation` is an RFC 6901 JSON pointer into the validated value (`""` is the value
/// itself, `/items/3/name` a member of an element). The message never quotes a long value or
/// pattern whole: quotes are cut at ``SchemaViolation/quoteLimit`` characters, so a huge
/// argument cannot be echoed back through an error.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSON pointer to the offending part of the instance.
    public var instanceLocation: String
    /// The keyword that failed (`type`, `required`, `additionalProperties`, ...).
    public var keyword: String
    /// Where the keyword is in the schema, as a URI fragment (`#/properties/path/pattern`).
    public var schemaLocation: String
    /// A short sentence for a person or a model.
    public var message: String

    /// Longest quote of an instance or schema value in a message, in characters.
    public static let quoteLimit = 48

    public init(instanceLocation: String, keyword: String, schemaLocation: String, message: String) {
        self.instanceLocation = instanceLocation
        self.keyword = keyword
        self.schemaLocation = schemaLocation
        self.message = message
    }

    public var description: String {
        let at = instanceLocation.isEmpty ? "the value" : instanceLocation
        return "\(at): \(message) (\(keyword))"
    }
}

/// Short, bounded quotes of values for messages.
enum SchemaQuote {
    /// `text` cut to `limit` characters with an ellipsis.
    static func cut(_ text: String, limit: Int = SchemaViolation.quoteLimit) -> String {
        var count = 0
        var end = text.startIndex
        while end < text.endIndex {
            if count == limit { return String(text[..<end]) + "…" }
            count += 1
            end = text.index(after: end)
        }
        return text
    }

    /// Compact JSON of `value`, cut. Writing stops once past the limit, so a huge value
    /// costs no more than a small one.
    static func json(_ value: JSONValue, limit: Int = SchemaViolation.quoteLimit) -> String {
        var out: [UInt8] = []
        let budget = limit * 4 + 8
        write(value, to: &out, budget: budget)
        return cut(String(decoding: out.prefix(budget), as: UTF8.self), limit: limit)
    }

    private static func write(_ value: JSONValue, to out: inout [UInt8], budget: Int) {
        if out.count > budget { return }
        switch value {
        case .string(let s):
            JSONWriter.appendQuoted(prefix(s, budget), to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if out.count > budget { return }
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out, budget: budget)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            for (i, member) in object.enumerated() {
                if out.count > budget { return }
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendQuoted(prefix(member.key, budget), to: &out)
                out.append(UInt8(ascii: ":"))
                write(member.value, to: &out, budget: budget)
            }
            out.append(UInt8(ascii: "}"))
        default:
            JSONWriter.append(value, to: &out)
        }
    }

    /// The first `count` Unicode scalars of `s`.
    static func prefix(_ s: String, _ count: Int) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: s.unicodeScalars.prefix(count))
        return String(scalars)
    }

    /// A string quoted as JSON, cut.
    static func string(_ s: String, limit: Int = SchemaViolation.quoteLimit) -> String {
        json(.string(s), limit: limit)
    }
}
