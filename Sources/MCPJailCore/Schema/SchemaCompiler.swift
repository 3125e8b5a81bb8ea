/// The second pass: turns each subschema reached from the root into a ``SchemaNode``,
/// resolving `$ref` / `$dynamicRef` to node indices, then checks the reference graph
/// (``SchemaGraph``).
///
/// Nodes are built from a work list, not by recursion, so a long chain of references cannot
/// exhaust the stack. Only reachable subschemas are compiled; an unused `$defs` entry is
/// indexed (for its `$id`s and anchors) but not checked.
struct SchemaCompiler {
    var index: SchemaResourceIndex
    let limits: CompiledSchema.Limits
    var nodes: [SchemaNode?] = []
    var nodeByKey: [SchemaLocationKey: Int] = [:]
    var pending: [(key: SchemaLocationKey, value: JSONValue, node: Int)] = []
    /// Per node: has `properties`, or is a document root whose `type` allows objects.
    var declaresProperties: [Bool] = []
    /// Per node: has its own `additionalProperties`, `patternProperties` or `unevaluatedProperties`.
    var opensProperties: [Bool] = []
    var usesDynamicScope = false

    /// Compiles `documents` (one schema, or several that must all hold) into a program.
    static func compile(
        documents: [JSONValue], defaultDialect: SchemaDialect, strict: Bool, limits: CompiledSchema.Limits
    ) throws(SchemaError) -> SchemaProgram {
        let prefixes = documents.count == 1 ? [""] : documents.indices.map { "/allOf/\($0)" }
        let index = try SchemaResourceIndex(
            documents: documents, locationPrefixes: prefixes, defaultDialect: defaultDialect, limits: limits)
        var compiler = SchemaCompiler(index: index, limits: limits)
        var roots: [Int] = []
        for (number, document) in documents.enumerated() {
            roots.append(try compiler.nodeIndex(SchemaLocationKey(document: number, pointer: ""), document))
        }
        var root = roots[0]
        if documents.count > 1 {
            // A synthetic `{"allOf": [...]}` around the documents.
            root = compiler.nodes.count
            compiler.nodes.append(SchemaNode(body: .checks([.allOf(roots)]), location: "#", resource: -1))
            compiler.declaresProperties.append(false)
            compiler.opensProperties.append(false)
        }
        try compiler.drain()
        if compiler.usesDynamicScope {
            // Every `$dynamicAnchor` may be where a `$dynamicRef` lands: compile them all.
            for resource in compiler.index.resources {
                for key in resource.dynamicAnchors.values {
                    guard let value = compiler.value(at: key) else { continue }
                    _ = try compiler.nodeIndex(key, value)
                }
            }
            try compiler.drain()
        }
        let nodes = compiler.nodes.map { $0! }
        let dynamicAnchors = compiler.index.resources.map { resource in
            resource.dynamicAnchors.compactMapValues { compiler.nodeByKey[$0] }
        }
        var program = SchemaProgram(
            nodes: nodes, root: root, strict: strict, strictRoles: Array(repeating: .none, count: nodes.count),
            dynamicAnchors: dynamicAnchors, usesDynamicScope: compiler.usesDynamicScope)
        let graph = SchemaGraph(program: program)
        try graph.checkForCycles(location: { nodes[$0].location })
        if strict {
            program.strictRoles = graph.strictRoles(
                declaresProperties: compiler.declaresProperties, opensProperties: compiler.opensProperties)
        }
        return program
    }

    /// The node for the subschema at `key`, reserved now and built by ``drain()``.
    mutating func nodeIndex(_ key: SchemaLocationKey, _ value: JSONValue) throws(SchemaError) -> Int {
        if let existing = nodeByKey[key] { return existing }
        guard nodes.count < limits.maxNodes else {
            throw SchemaError(.tooLarge, at: index.location(key), "more than \(limits.maxNodes) subschemas")
        }
        let node = nodes.count
        nodes.append(nil)
        declaresProperties.append(false)
        opensProperties.append(false)
        nodeByKey[key] = node
        pending.append((key, value, node))
        return node
    }

    private mutating func drain() throws(SchemaError) {
        while let item = pending.popLast() {
            nodes[item.node] = try build(item.key, item.value, item.node)
        }
    }

    func value(at key: SchemaLocationKey) -> JSONValue? {
        guard let tokens = JSONPointer.tokens(key.pointer) else { return nil }
        return JSONPointer.resolve(tokens, in: index.documents[key.document])
    }

    private mutating func build(_ key: SchemaLocationKey, _ value: JSONValue, _ node: Int) throws(SchemaError)
        -> SchemaNode
    {
        let location = index.location(key)
        guard let scope = index.scope(at: key) else {
            throw SchemaError(.unresolvableReference, at: location, "no schema scope for this location")
        }
        switch value {
        case .bool(true):
            return SchemaNode(body: .accept, location: location, resource: scope.resource)
        case .bool(false):
            return SchemaNode(body: .reject, location: location, resource: scope.resource)
        case .object(let object):
            var builder = SchemaNodeBuilder(object: object, key: key, scope: scope, location: location)
            let checks = try builder.checks(&self)
            declaresProperties[node] = builder.declaresProperties
            opensProperties[node] = builder.opensProperties
            return SchemaNode(body: checks.isEmpty ? .accept : .checks(checks), location: location,
                              resource: scope.resource)
        default:
            throw SchemaError(.invalidKeyword, at: location,
                              "a schema must be an object or a boolean, not \(value.typeName)")
        }
    }

    // MARK: - References

    /// The location and value a `$ref` / `$dynamicRef` at `key` points to.
    func resolveReference(_ reference: String, scope: SchemaScope, at location: String) throws(SchemaError)
        -> (key: SchemaLocationKey, value: JSONValue)
    {
        let target = scope.base.resolving(reference)
        let resourceURI = target.withoutFragment.description
        let quoted = SchemaQuote.string(reference)
        guard let resourceNumber = index.resourceByURI[resourceURI] else {
            if SchemaDialect(schemaURI: resourceURI) != nil {
                throw SchemaError(.unresolvableReference, at: location,
                                  "reference \(quoted) to a metaschema: metaschemas are not bundled")
            }
            throw SchemaError(.unresolvableReference, at: location,
                              "reference \(quoted) is not in this schema (remote references are not fetched)")
        }
        let resource = index.resources[resourceNumber]
        guard let fragment = JSONPointer.percentDecoded(target.fragment ?? "") else {
            throw SchemaError(.unresolvableReference, at: location, "reference \(quoted) has a malformed %-escape")
        }
        if fragment.isEmpty || fragment.hasPrefix("/") {
            guard let tokens = JSONPointer.tokens(fragment) else {
                throw SchemaError(.unresolvableReference, at: location, "reference \(quoted) is not a valid JSON pointer")
            }
            let all = resource.rootTokens + tokens
            guard let value = JSONPointer.resolve(all, in: index.documents[resource.root.document]) else {
                throw SchemaError(.unresolvableReference, at: location, "reference \(quoted) points to nothing")
            }
            return (SchemaLocationKey(document: resource.root.document, pointer: JSONPointer.string(all)), value)
        }
        guard let anchorKey = index.anchors[resourceURI + "#" + fragment], let value = self.value(at: anchorKey) else {
            throw SchemaError(.unresolvableReference, at: location, "reference \(quoted): no such anchor")
        }
        return (anchorKey, value)
    }
}
