/// Reads the keywords of one schema object into ``SchemaCheck``s, checking every value's
/// type and range (a `{"minimum": "x"}` is an error, not an ignored keyword).
///
/// Unknown keywords are ignored, as JSON Schema requires. `format`, `title`, `description`,
/// `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`, `$comment` and the
/// `content*` keywords are annotations only: they never fail an instance.
struct SchemaNodeBuilder {
    let object: JSONObject
    let key: SchemaLocationKey
    let scope: SchemaScope
    let location: String
    var declaresProperties = false
    var opensProperties = false

    init(object: JSONObject, key: SchemaLocationKey, scope: SchemaScope, location: String) {
        self.object = object
        self.key = key
        self.scope = scope
        self.location = location
    }

    var dialect: SchemaDialect { scope.dialect }

    func error(_ keyword: String, _ message: String) -> SchemaError {
        SchemaError(.invalidKeyword, at: location + "/" + JSONPointer.escape(keyword), message)
    }

    // MARK: - Subschemas

    func childKey(_ tokens: String...) -> SchemaLocationKey {
        SchemaLocationKey(document: key.document, pointer: key.pointer + JSONPointer.string(tokens))
    }

    func subschema(_ keyword: String, _ compiler: inout SchemaCompiler) throws(SchemaError) -> Int? {
        guard let value = object[keyword] else { return nil }
        return try compiler.nodeIndex(childKey(keyword), value)
    }

    func subschemaArray(_ keyword: String, _ compiler: inout SchemaCompiler, allowEmpty: Bool = false)
        throws(SchemaError) -> [Int]?
    {
        guard let value = object[keyword] else { return nil }
        guard case .array(let items) = value, allowEmpty || !items.isEmpty else {
            throw error(keyword, "\(keyword) must be a non-empty array of schemas")
        }
        var nodes: [Int] = []
        for (i, item) in items.enumerated() {
            nodes.append(try compiler.nodeIndex(childKey(keyword, String(i)), item))
        }
        return nodes
    }

    func subschemaMap(_ keyword: String, _ compiler: inout SchemaCompiler) throws(SchemaError)
        -> [(name: String, node: Int)]?
    {
        guard let value = object[keyword] else { return nil }
        guard case .object(let members) = value else { throw error(keyword, "\(keyword) must be an object of schemas") }
        var nodes: [(name: String, node: Int)] = []
        for (name, item) in members {
            nodes.append((name, try compiler.nodeIndex(childKey(keyword, name), item)))
        }
        return nodes
    }

    // MARK: - Values

    func number(_ keyword: String) throws(SchemaError) -> (SchemaDecimal, String)? {
        guard let value = object[keyword] else { return nil }
        guard case .number(let number) = value else { throw error(keyword, "\(keyword) must be a number") }
        return (SchemaDecimal(number), number.text)
    }

    /// A non-negative integer (`1.0` counts); values beyond `Int.max` are `Int.max`.
    func count(_ keyword: String) throws(SchemaError) -> Int? {
        guard let value = object[keyword] else { return nil }
        guard case .number(let number) = value else {
            throw error(keyword, "\(keyword) must be a non-negative integer")
        }
        let decimal = SchemaDecimal(number)
        guard decimal.isInteger, !decimal.negative else {
            throw error(keyword, "\(keyword) must be a non-negative integer")
        }
        return decimal.int64.map { Int($0) } ?? Int.max
    }

    func stringList(_ keyword: String, _ value: JSONValue) throws(SchemaError) -> [String] {
        guard case .array(let items) = value else { throw error(keyword, "\(keyword) must be an array of strings") }
        var names: [String] = []
        for item in items {
            guard case .string(let name) = item else { throw error(keyword, "\(keyword) must be an array of strings") }
            names.append(name)
        }
        return names
    }

    func pattern(_ source: String, _ keyword: String) throws(SchemaError) -> SchemaPattern {
        do {
            return try SchemaPattern(source)
        } catch {
            throw SchemaError(.invalidPattern, at: location + "/" + JSONPointer.escape(keyword),
                              "\(SchemaQuote.string(source)): \(error.message)")
        }
    }

    // MARK: - Keywords

    mutating func checks(_ compiler: inout SchemaCompiler) throws(SchemaError) -> [SchemaCheck] {
        var checks: [SchemaCheck] = []
        if let reference = object["$ref"] {
            guard case .string(let text) = reference else { throw error("$ref", "$ref must be a string") }
            let target = try compiler.resolveReference(text, scope: scope, at: location + "/$ref")
            checks.append(.ref(try compiler.nodeIndex(target.key, target.value)))
            // draft-07: "All other properties in a "$ref" object MUST be ignored."
            if dialect == .draft7 { return checks }
        }
        if dialect == .draft2020_12, let reference = object["$dynamicRef"] {
            guard case .string(let text) = reference else { throw error("$dynamicRef", "$dynamicRef must be a string") }
            let target = try compiler.resolveReference(text, scope: scope, at: location + "/$dynamicRef")
            let fragment = scope.base.resolving(text).fragment ?? ""
            var anchor: String?
            if !fragment.isEmpty, !fragment.hasPrefix("/"), target.value["$dynamicAnchor"]?.stringValue == fragment {
                anchor = fragment
                compiler.usesDynamicScope = true
            }
            checks.append(.dynamicRef(target: try compiler.nodeIndex(target.key, target.value), anchor: anchor))
        }
        try genericChecks(&checks)
        try numberChecks(&checks)
        try stringChecks(&checks)
        try arrayChecks(&checks, &compiler)
        try objectChecks(&checks, &compiler)
        try applicatorChecks(&checks, &compiler)
        if dialect == .draft2020_12 {
            if let node = try subschema("unevaluatedItems", &compiler) { checks.append(.unevaluatedItems(node)) }
            if let node = try subschema("unevaluatedProperties", &compiler) {
                checks.append(.unevaluatedProperties(node))
                opensProperties = true
            }
        }
        try annotationChecks()
        return checks
    }

    private mutating func genericChecks(_ checks: inout [SchemaCheck]) throws(SchemaError) {
        if let value = object["type"] {
            var types: SchemaTypeSet = []
            let names: [JSONValue]
            switch value {
            case .string: names = [value]
            case .array(let items) where !items.isEmpty: names = items
            default: throw error("type", "type must be a type name or a non-empty array of them")
            }
            for name in names {
                guard case .string(let text) = name, let type = SchemaTypeSet(name: text) else {
                    throw error("type", "type must name null, boolean, object, array, number, string or integer")
                }
                guard !types.contains(type) else { throw error("type", "type names \(text) twice") }
                types.insert(type)
            }
            checks.append(.type(types))
            if key.pointer.isEmpty && types.contains(.object) { declaresProperties = true }
        }
        if let value = object["const"] { checks.append(.constant(value)) }
        if let value = object["enum"] {
            guard case .array(let items) = value else { throw error("enum", "enum must be an array") }
            checks.append(.enumeration(items))
        }
    }

    private func numberChecks(_ checks: inout [SchemaCheck]) throws(SchemaError) {
        if let (value, text) = try number("multipleOf") {
            guard !value.negative, !value.isZero else { throw error("multipleOf", "multipleOf must be greater than 0") }
            checks.append(.multipleOf(value, text: text))
        }
        let kinds: [SchemaBound.Kind] = [.maximum, .exclusiveMaximum, .minimum, .exclusiveMinimum]
        for kind in kinds {
            if case .bool = object[kind.rawValue], kind == .exclusiveMaximum || kind == .exclusiveMinimum {
                throw error(kind.rawValue, "\(kind.rawValue) must be a number (the boolean form is draft-04)")
            }
            if let (value, text) = try number(kind.rawValue) {
                checks.append(.bound(SchemaBound(kind: kind, value: value, text: text)))
            }
        }
    }

    private func stringChecks(_ checks: inout [SchemaCheck]) throws(SchemaError) {
        if let n = try count("maxLength") { checks.append(.maxLength(n)) }
        if let n = try count("minLength") { checks.append(.minLength(n)) }
        if let value = object["pattern"] {
            guard case .string(let source) = value else { throw error("pattern", "pattern must be a string") }
            checks.append(.pattern(try pattern(source, "pattern")))
        }
    }

    private func arrayChecks(_ checks: inout [SchemaCheck], _ compiler: inout SchemaCompiler) throws(SchemaError) {
        switch dialect {
        case .draft2020_12:
            let prefix = try subschemaArray("prefixItems", &compiler) ?? []
            if case .array = object["items"] {
                throw error("items", "items must be a schema in 2020-12 (use prefixItems for tuples)")
            }
            let rest = try subschema("items", &compiler)
            if !prefix.isEmpty || rest != nil { checks.append(.items(prefix: prefix, rest: rest, restKeyword: "items")) }
        case .draft7:
            switch object["items"] {
            case .array?:
                let prefix = try subschemaArray("items", &compiler, allowEmpty: true) ?? []
                let rest = try subschema("additionalItems", &compiler)
                checks.append(.items(prefix: prefix, rest: rest, restKeyword: "additionalItems"))
            case .some:
                checks.append(.items(prefix: [], rest: try subschema("items", &compiler), restKeyword: "items"))
            case nil:
                break
            }
        }
        if let node = try subschema("contains", &compiler) {
            var minimum = 1
            var maximum: Int?
            if dialect == .draft2020_12 {
                minimum = try count("minContains") ?? 1
                maximum = try count("maxContains")
            }
            checks.append(.contains(node: node, min: minimum, max: maximum))
        }
        if let n = try count("maxItems") { checks.append(.maxItems(n)) }
        if let n = try count("minItems") { checks.append(.minItems(n)) }
        if let value = object["uniqueItems"] {
            guard case .bool(let unique) = value else { throw error("uniqueItems", "uniqueItems must be a boolean") }
            if unique { checks.append(.uniqueItems) }
        }
    }

    private mutating func objectChecks(_ checks: inout [SchemaCheck], _ compiler: inout SchemaCompiler)
        throws(SchemaError)
    {
        let properties = try subschemaMap("properties", &compiler)
        if properties != nil { declaresProperties = true }
        var patterns: [(pattern: SchemaPattern, node: Int)] = []
        for (source, node) in try subschemaMap("patternProperties", &compiler) ?? [] {
            patterns.append((try pattern(source, "patternProperties"), node))
        }
        let additional = try subschema("additionalProperties", &compiler)
        if object["patternProperties"] != nil || additional != nil { opensProperties = true }
        if properties != nil || !patterns.isEmpty || additional != nil {
            checks.append(.members(SchemaObjectApplicators(
                properties: properties ?? [], patternProperties: patterns, additionalProperties: additional,
                location: location)))
        }
        if let value = object["required"] { checks.append(.required(try stringList("required", value))) }
        var dependentRequired: [(name: String, required: [String])] = []
        var dependentSchemas: [(name: String, node: Int)] = []
        if dialect == .draft2020_12 {
            if let value = object["dependentRequired"] {
                guard case .object(let members) = value else {
                    throw error("dependentRequired", "dependentRequired must be an object of string arrays")
                }
                for (name, list) in members {
                    dependentRequired.append((name, try stringList("dependentRequired", list)))
                }
            }
            dependentSchemas = try subschemaMap("dependentSchemas", &compiler) ?? []
        }
        // draft-07's `dependencies`, also honoured in 2020-12 (which split it in two): a schema
        // written for draft-07 but without `$schema` keeps its constraint instead of losing it.
        if let value = object["dependencies"] {
            guard case .object(let members) = value else {
                throw error("dependencies", "dependencies must be an object")
            }
            var required: [(name: String, required: [String])] = []
            var schemas: [(name: String, node: Int)] = []
            for (name, item) in members {
                if case .array = item {
                    required.append((name, try stringList("dependencies", item)))
                } else {
                    schemas.append((name, try compiler.nodeIndex(childKey("dependencies", name), item)))
                }
            }
            if !required.isEmpty { checks.append(.dependentRequired(required, keyword: "dependencies")) }
            if !schemas.isEmpty { checks.append(.dependentSchemas(schemas, keyword: "dependencies")) }
        }
        if !dependentRequired.isEmpty { checks.append(.dependentRequired(dependentRequired, keyword: "dependentRequired")) }
        if !dependentSchemas.isEmpty { checks.append(.dependentSchemas(dependentSchemas, keyword: "dependentSchemas")) }
        if let node = try subschema("propertyNames", &compiler) { checks.append(.propertyNames(node)) }
        if let n = try count("maxProperties") { checks.append(.maxProperties(n)) }
        if let n = try count("minProperties") { checks.append(.minProperties(n)) }
    }

    private func applicatorChecks(_ checks: inout [SchemaCheck], _ compiler: inout SchemaCompiler)
        throws(SchemaError)
    {
        if let nodes = try subschemaArray("allOf", &compiler) { checks.append(.allOf(nodes)) }
        if let nodes = try subschemaArray("anyOf", &compiler) { checks.append(.anyOf(nodes)) }
        if let nodes = try subschemaArray("oneOf", &compiler) { checks.append(.oneOf(nodes)) }
        if let node = try subschema("not", &compiler) { checks.append(.not(node)) }
        if let condition = try subschema("if", &compiler) {
            let then = try subschema("then", &compiler)
            let otherwise = try subschema("else", &compiler)
            checks.append(.conditional(if: condition, then: then, else: otherwise))
        }
    }

    /// Annotation keywords never fail an instance, but a malformed one is still an error.
    private func annotationChecks() throws(SchemaError) {
        for keyword in ["format", "title", "description", "$comment", "contentMediaType", "contentEncoding"] {
            if let value = object[keyword], value.stringValue == nil {
                throw error(keyword, "\(keyword) must be a string")
            }
        }
        for keyword in ["readOnly", "writeOnly", "deprecated"] {
            if let value = object[keyword], value.boolValue == nil {
                throw error(keyword, "\(keyword) must be a boolean")
            }
        }
    }
}
