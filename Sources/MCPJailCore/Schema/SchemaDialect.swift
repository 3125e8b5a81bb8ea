/// The JSON Schema dialects the validator implements: draft-07 and draft 2020-12.
///
/// A schema names its dialect with `$schema` at a resource root; a schema without one gets
/// the caller's default (MCP tool schemas usually have none and are read as 2020-12). Any
/// other `$schema` (draft-04, 2019-09, a custom metaschema) is refused at compile time,
/// because reading it with the wrong rules would validate something else than its author meant.
public enum SchemaDialect: String, Sendable, Hashable, CaseIterable {
    case draft7 = "draft-07"
    case draft2020_12 = "2020-12"

    /// The canonical `$schema` URI of the dialect.
    public var uri: String {
        switch self {
        case .draft7: return "http://json-schema.org/draft-07/schema#"
        case .draft2020_12: return "https://json-schema.org/draft/2020-12/schema"
        }
    }

    /// The dialect a `$schema` value names, or nil when it is not one we implement.
    /// `http`/`https` and a trailing empty fragment are accepted for both.
    public init?(schemaURI: String) {
        var text = Substring(schemaURI)
        if text.hasSuffix("#") { text = text.dropLast() }
        if text.hasPrefix("https://") {
            text = text.dropFirst("https://".count)
        } else if text.hasPrefix("http://") {
            text = text.dropFirst("http://".count)
        } else {
            return nil
        }
        switch text {
        case "json-schema.org/draft-07/schema": self = .draft7
        case "json-schema.org/draft/2020-12/schema": self = .draft2020_12
        default: return nil
        }
    }
}
