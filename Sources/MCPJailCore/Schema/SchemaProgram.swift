/// The compiled form of a schema: a flat table of nodes, one per subschema reached from the
/// root, that refer to each other by index (so `$ref` cycles need no reference cycles).
///
/// Every keyword's value is checked and converted once, at compile time: numbers to
/// ``SchemaDecimal``, patterns to ``SchemaPattern``, references to node indices. Validation
/// then only walks the table (``SchemaValidator``).
struct SchemaProgram: Sendable {
    var nodes: [SchemaNode]
    /// Node index of the root.
    var root: Int
    /// Whether strict mode is on (see ``CompiledSchema``).
    var strict: Bool
    /// Per node, in strict mode: its part in closing the objects it is applied to.
    var strictRoles: [StrictRole]
    /// Per schema resource: its `$dynamicAnchor`s (name → node index).
    var dynamicAnchors: [[String: Int]]
    /// Whether any node uses `$dynamicRef` (only then is the dynamic scope tracked).
    var usesDynamicScope: Bool

    /// Whether any keyword reads a value's string contents (`const`, `enum`, `pattern`,
    /// `uniqueItems` compare or match them); the rest see at most a string's length.
    var readsStringContents: Bool {
        nodes.contains { node in
            guard case .checks(let checks) = node.body else { return false }
            return checks.contains { check in
                switch check {
                case .constant, .enumeration, .pattern, .uniqueItems: true
                default: false
                }
            }
        }
    }
}

/// What a node does about strict mode when it is applied to an object at a new instance
/// location (the root, a member, an element).
enum StrictRole: Sendable, Equatable {
    /// Nothing: it neither names properties nor closes the object.
    case none
    /// It names properties (through `properties`, `patternProperties`,
    /// `additionalProperties`, `unevaluatedProperties`, here or in its in-place subschemas).
    case names
    /// It names properties and closes the object: members that no schema applied to the
    /// same location names are refused.
    case closes
}

/// One compiled subschema.
final class SchemaNode: Sendable {
    enum Body: Sendable {
        /// `true` or `{}`: everything is valid.
        case accept
        /// `false`: nothing is valid.
        case reject
        case checks([SchemaCheck])
    }

    let body: Body
    /// The subschema's place in its document, as a URI fragment (`#/properties/a`).
    let location: String
    /// Index of the schema resource (document root or `$id`) the node belongs to.
    let resource: Int
    /// Whether the node has `unevaluatedProperties` or `unevaluatedItems`: it then collects
    /// the annotations of its in-place subschemas.
    let collectsAnnotations: Bool

    init(body: Body, location: String, resource: Int) {
        self.body = body
        self.location = location
        self.resource = resource
        if case .checks(let checks) = body {
            collectsAnnotations = checks.contains {
                switch $0 {
                case .unevaluatedItems, .unevaluatedProperties: return true
                default: return false
                }
            }
        } else {
            collectsAnnotations = false
        }
    }

    var isReject: Bool { if case .reject = body { return true } else { return false } }
}

/// The JSON types `type` can name, as a bit set (`integer` is its own bit; a number that is
/// an integer satisfies both `number` and `integer`).
struct SchemaTypeSet: OptionSet, Sendable {
    let rawValue: UInt8
    static let null = SchemaTypeSet(rawValue: 1)
    static let boolean = SchemaTypeSet(rawValue: 2)
    static let object = SchemaTypeSet(rawValue: 4)
    static let array = SchemaTypeSet(rawValue: 8)
    static let number = SchemaTypeSet(rawValue: 16)
    static let string = SchemaTypeSet(rawValue: 32)
    static let integer = SchemaTypeSet(rawValue: 64)

    static let names: [(String, SchemaTypeSet)] = [
        ("null", .null), ("boolean", .boolean), ("object", .object), ("array", .array),
        ("number", .number), ("string", .string), ("integer", .integer),
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        guard let entry = Self.names.first(where: { $0.0 == name }) else { return nil }
        self = entry.1
    }

    var description: String {
        Self.names.filter { contains($0.1) }.map(\.0).joined(separator: " or ")
    }
}

/// A numeric bound: `minimum`, `maximum`, `exclusiveMinimum` or `exclusiveMaximum`.
struct SchemaBound: Sendable {
    enum Kind: String, Sendable {
        case minimum, maximum, exclusiveMinimum, exclusiveMaximum
    }
    let kind: Kind
    let value: SchemaDecimal
    let text: String
}

/// A property name matched code point for code point (JSON's string equality, not Swift's
/// canonical equivalence).
struct PropertyKey: Hashable, Sendable {
    let name: String
    static func == (a: PropertyKey, b: PropertyKey) -> Bool { a.name.utf8.elementsEqual(b.name.utf8) }
    func hash(into hasher: inout Hasher) {
        for byte in name.utf8 { hasher.combine(byte) }
    }
}

/// The property applicators of one schema object: `properties`, `patternProperties`,
/// `additionalProperties` (draft-07 and 2020-12 alike), applied in one pass over the members.
struct SchemaObjectApplicators: Sendable {
    /// Name → node, in schema order.
    let properties: [(name: String, node: Int)]
    /// For long `properties` lists, an index into `properties`.
    let propertyIndex: [PropertyKey: Int]?
    let patternProperties: [(pattern: SchemaPattern, node: Int)]
    let additionalProperties: Int?
    let location: String

    init(properties: [(name: String, node: Int)], patternProperties: [(pattern: SchemaPattern, node: Int)],
         additionalProperties: Int?, location: String)
    {
        self.properties = properties
        self.patternProperties = patternProperties
        self.additionalProperties = additionalProperties
        self.location = location
        if properties.count > 8 {
            var index: [PropertyKey: Int] = [:]
            for (i, property) in properties.enumerated() { index[PropertyKey(name: property.name)] = i }
            propertyIndex = index
        } else {
            propertyIndex = nil
        }
    }

    /// The node for the property `name`, if `properties` names it.
    func property(_ name: String) -> Int? {
        if let propertyIndex {
            return propertyIndex[PropertyKey(name: name)].map { properties[$0].node }
        }
        let count = name.utf8.count
        for property in properties where property.name.utf8.count == count && property.name.utf8.elementsEqual(name.utf8) {
            return property.node
        }
        return nil
    }
}

extension JSONObject {
    /// Whether a member is named `name` (code point equality; the length is compared first).
    func hasMember(_ name: String) -> Bool {
        let count = name.utf8.count
        return contains { $0.key.utf8.count == count && $0.key.utf8.elementsEqual(name.utf8) }
    }
}

/// One keyword (or a group of keywords evaluated together) of a compiled subschema.
enum SchemaCheck: Sendable {
    // Any instance.
    case type(SchemaTypeSet)
    case enumeration([JSONValue])
    case constant(JSONValue)
    // Numbers.
    case multipleOf(SchemaDecimal, text: String)
    case bound(SchemaBound)
    // Strings.
    case maxLength(Int)
    case minLength(Int)
    case pattern(SchemaPattern)
    // Arrays.
    /// `prefixItems` + `items` (2020-12), or array-form `items` + `additionalItems` or
    /// schema-form `items` (draft-07). `restKeyword` names the keyword of `rest`.
    case items(prefix: [Int], rest: Int?, restKeyword: String)
    /// `contains` with `minContains` / `maxContains` (2020-12; draft-07: min 1, no max).
    case contains(node: Int, min: Int, max: Int?)
    case maxItems(Int)
    case minItems(Int)
    case uniqueItems
    // Objects.
    case members(SchemaObjectApplicators)
    case required([String])
    /// `dependentRequired` (2020-12) or the array form of `dependencies` (draft-07): `keyword`.
    case dependentRequired([(name: String, required: [String])], keyword: String)
    /// `dependentSchemas` (2020-12) or the schema form of `dependencies` (draft-07): `keyword`.
    case dependentSchemas([(name: String, node: Int)], keyword: String)
    case propertyNames(Int)
    case maxProperties(Int)
    case minProperties(Int)
    // In-place applicators.
    case allOf([Int])
    case anyOf([Int])
    case oneOf([Int])
    case not(Int)
    case conditional(if: Int, then: Int?, else: Int?)
    case ref(Int)
    /// `$dynamicRef`: `target` is the static resolution; when it carries `$dynamicAnchor`
    /// `anchor`, the outermost resource in the dynamic scope with that anchor wins.
    case dynamicRef(target: Int, anchor: String?)
    // Annotation-dependent (always last in a node).
    case unevaluatedItems(Int)
    case unevaluatedProperties(Int)
}
