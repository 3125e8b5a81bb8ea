/// The keywords that apply subschemas: to members and items (`properties`, `items`,
/// `contains`, ...), or in place (`allOf`, `anyOf`, `oneOf`, `not`, `if`, `$ref`, ...), and the
/// `unevaluated*` keywords that read the annotations the others leave.
extension SchemaValidator {
    mutating func evaluateApplicator(_ check: SchemaCheck, _ instance: JSONValue, _ node: SchemaNode,
                                     _ annotations: inout SchemaAnnotations) -> Bool
    {
        switch check {
        case .items(let prefix, let rest, let restKeyword):
            guard case .array(let items) = instance else { return true }
            let prefixKeyword = restKeyword == "items" ? "prefixItems" : "items"
            let prefixed = min(prefix.count, items.count)
            for i in 0..<prefixed {
                guard apply(prefix[i], to: items[i], at: .index(i), keyword: prefixKeyword, parentLocation: node.location)
                else { return false }
            }
            annotations.items.insert(upTo: prefixed)
            if let rest, items.count > prefixed {
                for i in prefixed..<items.count {
                    guard apply(rest, to: items[i], at: .index(i), keyword: restKeyword, parentLocation: node.location)
                    else { return false }
                }
                annotations.items.insertAll()
            }
            return true
        case .contains(let child, let minimum, let maximum):
            guard case .array(let items) = instance else { return true }
            return checkContains(child, minimum, maximum, items, node, &annotations)
        case .members(let applicators):
            guard case .object(let object) = instance else { return true }
            return checkMembers(applicators, object, &annotations)
        case .dependentSchemas(let dependencies, _):
            guard case .object(let object) = instance else { return true }
            for dependency in dependencies where object.hasMember(dependency.name) {
                guard evaluate(dependency.node, instance, &annotations, entry: false) else { return false }
            }
            return true
        case .propertyNames(let child):
            guard case .object(let object) = instance else { return true }
            for member in object {
                var fresh = SchemaAnnotations.inactive
                if evaluate(child, .string(member.key), &fresh, entry: true) { continue }
                if reporting {
                    let reason = failure?.message ?? "not allowed"
                    failure = Failure(keyword: "propertyNames", schemaLocation: node.location + "/propertyNames",
                                      message: "property name \(SchemaQuote.string(member.key)) is invalid: \(reason)")
                }
                return false
            }
            return true
        case .allOf(let children):
            for child in children {
                guard evaluate(child, instance, &annotations, entry: false) else { return false }
            }
            return true
        case .anyOf(let children):
            return checkAnyOf(children, instance, node, &annotations)
        case .oneOf(let children):
            return checkOneOf(children, instance, node, &annotations)
        case .not(let child):
            let matched = silently { validator in
                var ignored = SchemaAnnotations.inactive
                return validator.evaluate(child, instance, &ignored, entry: false)
            }
            if !matched { return true }
            return fail("not", node.location, "value must not match the schema in \"not\"")
        case .conditional(let condition, let then, let otherwise):
            if then == nil && otherwise == nil && !annotations.active { return true }
            var conditionAnnotations = SchemaAnnotations(active: annotations.active)
            let holds = silently { $0.evaluate(condition, instance, &conditionAnnotations, entry: false) }
            if holds {
                annotations.merge(conditionAnnotations)
                if let then { return evaluate(then, instance, &annotations, entry: false) }
            } else if let otherwise {
                return evaluate(otherwise, instance, &annotations, entry: false)
            }
            return true
        case .ref(let target):
            return evaluate(target, instance, &annotations, entry: false)
        case .dynamicRef(let target, let anchor):
            var destination = target
            if let anchor {
                for resource in dynamicScope {
                    if let found = program.dynamicAnchors[resource][anchor] {
                        destination = found
                        break
                    }
                }
            }
            return evaluate(destination, instance, &annotations, entry: false)
        case .unevaluatedItems(let child):
            guard case .array(let items) = instance else { return true }
            for i in items.indices where !annotations.items.contains(i) {
                guard apply(child, to: items[i], at: .index(i), keyword: "unevaluatedItems", parentLocation: node.location)
                else { return false }
            }
            annotations.items.insertAll()
            return true
        case .unevaluatedProperties(let child):
            guard case .object(let object) = instance else { return true }
            for (i, member) in object.enumerated() where !annotations.properties.contains(i) {
                guard apply(child, to: member.value, at: .key(member.key), keyword: "unevaluatedProperties",
                            parentLocation: node.location)
                else { return false }
            }
            annotations.properties.insertAll()
            return true
        default:
            return true
        }
    }

    /// `properties`, `patternProperties` and `additionalProperties` in one pass over the members.
    private mutating func checkMembers(_ applicators: SchemaObjectApplicators, _ object: JSONObject,
                                       _ annotations: inout SchemaAnnotations) -> Bool
    {
        let location = applicators.location
        for (i, member) in object.enumerated() {
            var matched = false
            if let child = applicators.property(member.key) {
                matched = true
                guard apply(child, to: member.value, at: .key(member.key), keyword: "properties", parentLocation: location)
                else { return false }
            }
            for (pattern, child) in applicators.patternProperties {
                guard let matches = pattern.matches(member.key) else {
                    return fail("patternProperties", location, SchemaPattern.tooCostly(pattern))
                }
                guard matches else { continue }
                matched = true
                guard apply(child, to: member.value, at: .key(member.key), keyword: "patternProperties",
                            parentLocation: location)
                else { return false }
            }
            if !matched, let child = applicators.additionalProperties {
                matched = true
                guard apply(child, to: member.value, at: .key(member.key), keyword: "additionalProperties",
                            parentLocation: location)
                else { return false }
            }
            if matched { annotations.properties.insert(i) }
        }
        return true
    }

    private mutating func checkContains(_ child: Int, _ minimum: Int, _ maximum: Int?, _ items: [JSONValue],
                                        _ node: SchemaNode, _ annotations: inout SchemaAnnotations) -> Bool
    {
        var matches = 0
        let needAll = annotations.active || maximum != nil
        silently { validator in
            for (i, item) in items.enumerated() {
                guard validator.evaluateEntry(child, item, at: .index(i)) else { continue }
                matches += 1
                annotations.items.insert(i)
                if !needAll && matches >= minimum { break }
            }
        }
        if matches < minimum {
            if minimum == 1 { return fail("contains", node.location, "no item matches the \"contains\" schema") }
            return fail("minContains", node.location,
                        "\(matches) items match the \"contains\" schema, at least \(minimum) must")
        }
        if let maximum, matches > maximum {
            return fail("maxContains", node.location,
                        "\(matches) items match the \"contains\" schema, at most \(maximum) may")
        }
        return true
    }

    private mutating func checkAnyOf(_ children: [Int], _ instance: JSONValue, _ node: SchemaNode,
                                     _ annotations: inout SchemaAnnotations) -> Bool
    {
        let active = annotations.active
        var merged = SchemaAnnotations(active: active)
        let matched = silently { validator in
            var any = false
            for child in children {
                var branch = SchemaAnnotations(active: active)
                guard validator.evaluate(child, instance, &branch, entry: false) else { continue }
                any = true
                // Annotations come from every matching branch, so all must run.
                guard active else { break }
                merged.merge(branch)
            }
            return any
        }
        if matched {
            annotations.merge(merged)
            return true
        }
        return fail("anyOf", node.location, "value matches none of the \(children.count) schemas in \"anyOf\"")
    }

    private mutating func checkOneOf(_ children: [Int], _ instance: JSONValue, _ node: SchemaNode,
                                     _ annotations: inout SchemaAnnotations) -> Bool
    {
        let active = annotations.active
        var matchedAnnotations = SchemaAnnotations(active: active)
        var count = 0
        var first = 0
        var second = 0
        silently { validator in
            for (position, child) in children.enumerated() {
                var branch = SchemaAnnotations(active: active)
                guard validator.evaluate(child, instance, &branch, entry: false) else { continue }
                count += 1
                if count == 1 {
                    first = position
                    matchedAnnotations = branch
                } else {
                    second = position
                    break
                }
            }
        }
        switch count {
        case 1:
            annotations.merge(matchedAnnotations)
            return true
        case 0:
            return fail("oneOf", node.location, "value matches none of the \(children.count) schemas in \"oneOf\"")
        default:
            return fail("oneOf", node.location,
                        "value matches more than one schema in \"oneOf\" (\(first) and \(second))")
        }
    }
}
