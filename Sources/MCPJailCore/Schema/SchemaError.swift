/// Why a schema cannot be compiled: it is invalid, or it uses something this validator does
/// not implement.
///
/// Thrown by ``CompiledSchema``'s initializers, never at validation time. The relay treats it
/// as "this tool's schema cannot be enforced" and makes the tool unavailable: a validator that
/// silently accepted what it does not understand would let everything through.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// A keyword's value has the wrong type or range (`{"type": 5}`, `{"minimum": "x"}`),
        /// or a subschema is neither an object nor a boolean.
        case invalidKeyword = "invalid_keyword"
        /// A `pattern` or `patternProperties` name that is not an ECMA-262 regular expression
        /// we can translate, or that is too long.
        case invalidPattern = "invalid_pattern"
        /// A `$ref` or `$dynamicRef` whose target is not in the document (remote references
        /// are never fetched), or a JSON pointer that leads nowhere.
        case unresolvableReference = "unresolvable_reference"
        /// A `$schema` naming a dialect other than draft-07 or 2020-12.
        case unsupportedDialect = "unsupported_dialect"
        /// References that lead back to the same schema without moving into the instance
        /// (`{"$ref": "#"}`): evaluation would never end.
        case referenceCycle = "reference_cycle"
        /// Nested deeper, or more subschemas, than ``CompiledSchema/Limits`` allow.
        case tooLarge = "too_large"
    }

    public var kind: Kind
    /// Where in the schema, as a URI fragment with a JSON pointer (`#/properties/a/minimum`).
    public var schemaLocation: String
    /// What is wrong, for a person; quotes of schema values are truncated.
    public var message: String

    public init(_ kind: Kind, at schemaLocation: String, _ message: String) {
        self.kind = kind
        self.schemaLocation = schemaLocation
        self.message = message
    }

    public var description: String { "invalid schema at \(schemaLocation): \(message)" }
}
