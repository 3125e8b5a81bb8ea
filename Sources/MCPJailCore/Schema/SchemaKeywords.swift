/// Which keywords hold subschemas, and in what shape, per dialect.
///
/// draft-07: `items` may be an array (tuple validation, with `additionalItems`), `dependencies`
/// holds schemas or property lists, definitions live under `definitions`.
/// 2020-12: `prefixItems` + `items`, `dependentSchemas` / `dependentRequired`, `$defs`,
/// `unevaluatedItems` / `unevaluatedProperties`.
/// Both dialects index `definitions` and `$defs` (real schemas use either), so an `$id` or
/// anchor under the other one is still found, and both read draft-07's `dependencies`.
enum SchemaKeywords {
    enum Shape: Equatable {
        /// One subschema.
        case single
        /// An array of subschemas.
        case array
        /// An object whose member values are subschemas.
        case map
        /// draft-07 `items`: a subschema or an array of them.
        case singleOrArray
        /// draft-07 `dependencies`: member values are subschemas or arrays of names.
        case mapOfSingleOrStrings
    }

    static func subschemaShape(_ keyword: String, _ dialect: SchemaDialect) -> Shape? {
        switch keyword {
        case "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames":
            return .single
        case "allOf", "anyOf", "oneOf":
            return .array
        case "properties", "patternProperties", "definitions", "$defs":
            return .map
        case "dependencies":
            return .mapOfSingleOrStrings
        default:
            break
        }
        switch dialect {
        case .draft7:
            switch keyword {
            case "items": return .singleOrArray
            case "additionalItems": return .single
            default: return nil
            }
        case .draft2020_12:
            switch keyword {
            case "items", "unevaluatedItems", "unevaluatedProperties": return .single
            case "prefixItems": return .array
            case "dependentSchemas": return .map
            default: return nil
            }
        }
    }
}
