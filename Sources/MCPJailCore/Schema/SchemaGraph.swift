/// The graph of in-place applications between compiled nodes: `allOf`, `anyOf`, `oneOf`,
/// `not`, `if`/`then`/`else`, `dependentSchemas`, `$ref` and `$dynamicRef` apply a subschema
/// to the same instance location, so a cycle of them never reaches the end of the instance.
///
/// Two uses: refusing such cycles at compile time (`{"$ref": "#"}`, or `a → b → a` through
/// `$defs`), and computing each node's part in strict mode (``strictRoles``).
/// Both walks are iterative.
struct SchemaGraph {
    /// Per node: the nodes it applies in place, and whether each one's annotations reach it
    /// (everything but `not`).
    let edges: [[(node: Int, annotating: Bool)]]

    init(program: SchemaProgram) {
        var dynamicTargets: [String: [Int]] = [:]
        for anchors in program.dynamicAnchors {
            for (name, node) in anchors { dynamicTargets[name, default: []].append(node) }
        }
        edges = program.nodes.map { node in
            guard case .checks(let checks) = node.body else { return [] }
            var out: [(node: Int, annotating: Bool)] = []
            for check in checks {
                switch check {
                case .allOf(let nodes), .anyOf(let nodes), .oneOf(let nodes):
                    out += nodes.map { ($0, true) }
                case .not(let node):
                    out.append((node, false))
                case .conditional(let condition, let then, let otherwise):
                    out.append((condition, true))
                    if let then { out.append((then, true)) }
                    if let otherwise { out.append((otherwise, true)) }
                case .dependentSchemas(let list, _):
                    out += list.map { ($0.node, true) }
                case .ref(let target):
                    out.append((target, true))
                case .dynamicRef(let target, let anchor):
                    out.append((target, true))
                    if let anchor { out += (dynamicTargets[anchor] ?? []).map { ($0, true) } }
                default:
                    break
                }
            }
            return out
        }
    }

    /// Nodes in an order where every node comes after all it applies in place; throws when
    /// there is a cycle.
    func topologicalOrder(location: (Int) -> String) throws(SchemaError) -> [Int] {
        enum Mark { case new, open, done }
        var marks = Array(repeating: Mark.new, count: edges.count)
        var order: [Int] = []
        order.reserveCapacity(edges.count)
        for start in edges.indices where marks[start] == .new {
            var stack: [(node: Int, next: Int)] = [(start, 0)]
            marks[start] = .open
            while let top = stack.last {
                let node = top.node
                if top.next < edges[node].count {
                    stack[stack.count - 1].next += 1
                    let child = edges[node][top.next].node
                    switch marks[child] {
                    case .new:
                        marks[child] = .open
                        stack.append((child, 0))
                    case .open:
                        throw SchemaError(.referenceCycle, at: location(child),
                                          "this subschema applies itself to the same value again (a $ref cycle)")
                    case .done:
                        break
                    }
                } else {
                    marks[node] = .done
                    order.append(node)
                    stack.removeLast()
                }
            }
        }
        return order
    }

    func checkForCycles(location: (Int) -> String) throws(SchemaError) {
        _ = try topologicalOrder(location: location)
    }

    /// Per node, for strict mode: ``StrictRole/closes`` when it has no `additionalProperties`,
    /// `patternProperties` or `unevaluatedProperties` of its own, and it or a subschema it
    /// applies in place (not through `not`) declares `properties` (or is a document root of
    /// type object); else ``StrictRole/names`` when it or such a subschema has any of those
    /// property keywords; else ``StrictRole/none``.
    func strictRoles(declaresProperties: [Bool], opensProperties: [Bool]) -> [StrictRole] {
        // Cycles were refused already, so the order exists.
        let order = (try? topologicalOrder(location: { _ in "" })) ?? []
        var declares = declaresProperties
        var touches = declaresProperties.indices.map { declaresProperties[$0] || opensProperties[$0] }
        for node in order {
            for edge in edges[node] where edge.annotating {
                declares[node] = declares[node] || declares[edge.node]
                touches[node] = touches[node] || touches[edge.node]
            }
        }
        return declares.indices.map { node in
            if declares[node] && !opensProperties[node] { return .closes }
            return touches[node] ? .names : .none
        }
    }
}
