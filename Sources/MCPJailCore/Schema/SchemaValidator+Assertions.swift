/// The keywords that only look at the instance: `type`, `enum`, `const`, the number, string,
/// length and count keywords, `required`, `uniqueItems`.
extension SchemaValidator {
    /// Evaluates one check; dispatches applicators to ``SchemaValidator/evaluateApplicator``.
    mutating func evaluate(_ check: SchemaCheck, _ instance: JSONValue, _ node: SchemaNode,
                           _ annotations: inout SchemaAnnotations) -> Bool
    {
        switch check {
        case .type(let types):
            if Self.hasType(instance, types) { return true }
            return fail("type", node.location, "expected \(types.description), got \(Self.typeName(instance))")
        case .constant(let value):
            if instance == value { return true }
            return fail("const", node.location, "value must be \(SchemaQuote.json(value))")
        case .enumeration(let values):
            if values.contains(where: { $0 == instance }) { return true }
            return fail("enum", node.location, "value must be one of \(SchemaQuote.json(.array(values)))")
        case .multipleOf(let divisor, let text):
            guard case .number(let number) = instance else { return true }
            if SchemaDecimal(number).isMultiple(of: divisor) { return true }
            return fail("multipleOf", node.location, "\(SchemaQuote.cut(number.text)) is not a multiple of \(text)")
        case .bound(let bound):
            guard case .number(let number) = instance else { return true }
            return checkBound(bound, number, node)
        case .maxLength(let limit):
            guard case .string(let string) = instance else { return true }
            if let length = deferredLength(string) {
                if length <= limit { return true }
            } else if string.utf8.count <= limit || string.unicodeScalars.count <= limit {
                return true
            }
            return fail("maxLength", node.location, "string is longer than \(limit) characters")
        case .minLength(let limit):
            guard case .string(let string) = instance else { return true }
            if let length = deferredLength(string) {
                if length >= limit { return true }
            } else {
                let bytes = string.utf8.count
                if bytes >= limit && (bytes / 4 >= limit || string.unicodeScalars.count >= limit) { return true }
            }
            return fail("minLength", node.location, "string is shorter than \(limit) characters")
        case .pattern(let pattern):
            guard case .string(let string) = instance else { return true }
            switch pattern.matches(string) {
            case true?: return true
            case false?:
                return fail("pattern", node.location, "string does not match the pattern \(SchemaQuote.string(pattern.source))")
            case nil:
                return fail("pattern", node.location, SchemaPattern.tooCostly(pattern))
            }
        case .maxItems(let limit):
            guard case .array(let items) = instance, items.count > limit else { return true }
            return fail("maxItems", node.location, "array has more than \(limit) items")
        case .minItems(let limit):
            guard case .array(let items) = instance, items.count < limit else { return true }
            return fail("minItems", node.location, "array has fewer than \(limit) items")
        case .uniqueItems:
            guard case .array(let items) = instance, let (first, second) = Self.duplicate(in: items) else { return true }
            return fail("uniqueItems", node.location, "items \(first) and \(second) are equal")
        case .required(let names):
            guard case .object(let object) = instance else { return true }
            for name in names where !object.hasMember(name) {
                return fail("required", node.location, "missing required property \(SchemaQuote.string(name))")
            }
            return true
        case .dependentRequired(let dependencies, let keyword):
            guard case .object(let object) = instance else { return true }
            for dependency in dependencies where object.hasMember(dependency.name) {
                for name in dependency.required where !object.hasMember(name) {
                    return fail(keyword, node.location,
                                "property \(SchemaQuote.string(dependency.name)) requires property "
                                    + SchemaQuote.string(name))
                }
            }
            return true
        case .maxProperties(let limit):
            guard case .object(let object) = instance, object.count > limit else { return true }
            return fail("maxProperties", node.location, "object has more than \(limit) properties")
        case .minProperties(let limit):
            guard case .object(let object) = instance, object.count < limit else { return true }
            return fail("minProperties", node.location, "object has fewer than \(limit) properties")
        default:
            return evaluateApplicator(check, instance, node, &annotations)
        }
    }

    /// The real length of a string left out of the instance, if `string` is its stand-in.
    @inline(__always)
    func deferredLength(_ string: String) -> Int? {
        deferredLengths.isEmpty ? nil : deferredLengths[string]
    }

    static func hasType(_ instance: JSONValue, _ types: SchemaTypeSet) -> Bool {
        switch instance {
        case .null: return types.contains(.null)
        case .bool: return types.contains(.boolean)
        case .string: return types.contains(.string)
        case .array: return types.contains(.array)
        case .object: return types.contains(.object)
        case .number(let number):
            return types.contains(.number) || (types.contains(.integer) && SchemaDecimal.isInteger(number))
        }
    }

    static func typeName(_ instance: JSONValue) -> String {
        if case .number(let number) = instance, SchemaDecimal.isInteger(number) { return "integer" }
        return instance.typeName
    }

    private mutating func checkBound(_ bound: SchemaBound, _ number: JSONNumber, _ node: SchemaNode) -> Bool {
        let order = SchemaDecimal(number).compare(bound.value)
        let ok: Bool
        let relation: String
        switch bound.kind {
        case .maximum: ok = order <= 0; relation = "greater than the maximum"
        case .exclusiveMaximum: ok = order < 0; relation = "not less than the exclusive maximum"
        case .minimum: ok = order >= 0; relation = "less than the minimum"
        case .exclusiveMinimum: ok = order > 0; relation = "not greater than the exclusive minimum"
        }
        if ok { return true }
        return fail(bound.kind.rawValue, node.location, "\(SchemaQuote.cut(number.text)) is \(relation) \(bound.text)")
    }

    /// The indices of the first two equal items, if any. Long arrays are compared through
    /// their canonical JSON (equal exactly when the values are JSON-equal).
    static func duplicate(in items: [JSONValue]) -> (Int, Int)? {
        if items.count <= 16 {
            for i in items.indices {
                for j in (i + 1)..<items.count where items[i] == items[j] { return (i, j) }
            }
            return nil
        }
        var seen: [[UInt8]: Int] = [:]
        for (i, item) in items.enumerated() {
            let key = CanonicalJSON.serialize(item)
            if let first = seen[key] { return (first, i) }
            seen[key] = i
        }
        return nil
    }
}
