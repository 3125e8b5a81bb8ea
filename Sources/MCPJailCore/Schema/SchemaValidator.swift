/// Runs a ``SchemaProgram`` against an instance.
///
/// Two modes share one walk. Fast (`reporting == false`): a yes/no answer that allocates
/// nothing for the usual small objects. Reporting: the same walk, run again only after a
/// failure, that records the first violation; the instance path is built on the way back up
/// (each level appends its own segment), so the success path never pays for it.
///
/// The first violation is the first in evaluation order: within a schema, `$ref`, then `type`,
/// `const`/`enum`, the number, string, array and object keywords, then the applicators, and
/// `unevaluated*` last; within an object, members in instance order.
struct SchemaValidator {
    let program: SchemaProgram
    let maxDepth: Int
    var depth = 0
    var reporting: Bool
    var failure: Failure?
    /// Schema resources entered, outermost first (tracked only for `$dynamicRef`).
    var dynamicScope: [Int] = []

    struct Failure {
        var keyword: String
        var schemaLocation: String
        var message: String
        var reversedPath: [PathSegment] = []
    }

    enum PathSegment {
        case key(String)
        case index(Int)
    }

    init(program: SchemaProgram, maxDepth: Int, reporting: Bool) {
        self.program = program
        self.maxDepth = maxDepth
        self.reporting = reporting
    }

    /// Validates from the root.
    mutating func run(_ instance: JSONValue) -> Bool {
        var annotations = SchemaAnnotations.inactive
        return evaluate(program.root, instance, &annotations, entry: true)
    }

    /// The recorded failure as a violation (reporting mode, after `run` returned false).
    func violation() -> SchemaViolation {
        guard let failure else {
            return SchemaViolation(instanceLocation: "", keyword: "", schemaLocation: "#", message: "invalid")
        }
        var pointer = ""
        for segment in failure.reversedPath.reversed() {
            switch segment {
            case .key(let name): pointer += "/" + JSONPointer.escape(name)
            case .index(let i): pointer += "/\(i)"
            }
        }
        return SchemaViolation(instanceLocation: pointer, keyword: failure.keyword,
                               schemaLocation: failure.schemaLocation, message: failure.message)
    }

    // MARK: - Failing

    /// Records a failure of `keyword` of the schema at `location` (first one only) and
    /// returns false. The message is only built when reporting.
    mutating func fail(_ keyword: String, _ location: String, _ message: @autoclosure () -> String) -> Bool {
        if reporting && failure == nil {
            failure = Failure(keyword: keyword, schemaLocation: location + "/" + keyword, message: message())
        }
        return false
    }

    /// Runs `body` without recording failures (for `anyOf`, `oneOf`, `not`, `if`, `contains`,
    /// where a failing branch is expected).
    mutating func silently<T>(_ body: (inout SchemaValidator) -> T) -> T {
        let saved = reporting
        reporting = false
        defer { reporting = saved }
        return body(&self)
    }

    // MARK: - Evaluation

    /// Evaluates node `index` against `instance`, recording annotations into `annotations`
    /// when they are active. `entry` is true when the node is applied to a new instance
    /// location (the root, a property, an item), false for in-place application.
    mutating func evaluate(_ index: Int, _ instance: JSONValue, _ annotations: inout SchemaAnnotations,
                           entry: Bool) -> Bool
    {
        let node = program.nodes[index]
        let checks: [SchemaCheck]
        switch node.body {
        case .accept: return true
        case .reject: return fail("false", node.location, "no value is allowed here")
        case .checks(let list): checks = list
        }
        depth += 1
        defer { depth -= 1 }
        guard depth <= maxDepth else {
            if reporting && failure == nil {
                failure = Failure(keyword: "depth", schemaLocation: node.location,
                                  message: "nested too deeply to validate (more than \(maxDepth) levels)")
            }
            return false
        }
        var enteredResource = false
        if program.usesDynamicScope, node.resource >= 0, dynamicScope.last != node.resource {
            dynamicScope.append(node.resource)
            enteredResource = true
        }
        defer { if enteredResource { dynamicScope.removeLast() } }

        let strict = entry && program.strictEntry[index]
        guard node.collectsAnnotations || strict else {
            return evaluateChecks(checks, node, instance, &annotations)
        }
        var local = SchemaAnnotations(active: true)
        guard evaluateChecks(checks, node, instance, &local) else { return false }
        if strict, case .object(let object) = instance {
            for (i, member) in object.enumerated() where !local.properties.contains(i) {
                if reporting && failure == nil {
                    failure = Failure(
                        keyword: "unevaluatedProperties", schemaLocation: node.location,
                        message: "property \(SchemaQuote.string(member.key)) is not allowed (strict: the schema does not name it)",
                        reversedPath: [.key(member.key)])
                }
                return false
            }
            local.properties.insertAll()
        }
        annotations.merge(local)
        return true
    }

    /// Applies node `index` to `value`, a member or element of the current instance at
    /// `segment`, for `keyword`; a failure's path gets the segment.
    mutating func apply(_ index: Int, to value: JSONValue, at segment: PathSegment, keyword: String,
                        parentLocation: String) -> Bool
    {
        let child = program.nodes[index]
        if child.isReject {
            if reporting && failure == nil {
                failure = Failure(keyword: keyword, schemaLocation: parentLocation + "/" + keyword,
                                  message: Self.notAllowed(segment, keyword), reversedPath: [segment])
            }
            return false
        }
        var fresh = SchemaAnnotations.inactive
        if evaluate(index, value, &fresh, entry: true) { return true }
        if reporting { failure?.reversedPath.append(segment) }
        return false
    }

    static func notAllowed(_ segment: PathSegment, _ keyword: String) -> String {
        switch segment {
        case .key(let name): return "property \(SchemaQuote.string(name)) is not allowed"
        case .index(let i): return "no item is allowed at index \(i) (\(keyword))"
        }
    }

    private mutating func evaluateChecks(_ checks: [SchemaCheck], _ node: SchemaNode, _ instance: JSONValue,
                                         _ annotations: inout SchemaAnnotations) -> Bool
    {
        for check in checks {
            guard evaluate(check, instance, node, &annotations) else { return false }
        }
        return true
    }
}
