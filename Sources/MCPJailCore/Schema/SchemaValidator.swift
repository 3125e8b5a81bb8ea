/// Runs a ``SchemaProgram`` against an instance.
///
/// Two modes share one walk. Fast (`reporting == false`): a yes/no answer that allocates
/// nothing for the usual small objects. Reporting: the same walk, run again only after a
/// failure, that records the first violation; the instance path is built on the way back up
/// (each level appends its own segment), so the success path never pays for it.
///
/// The first violation is the first in evaluation order: within a schema, `$ref`, then `type`,
/// `const`/`enum`, the number, string, array and object keywords, then the applicators, and
/// `unevaluated*` last; within an object, members in instance order. Strict mode's
/// violations come after all of those (see ``SchemaValidator/checkStrictRecords()``).
struct SchemaValidator {
    let program: SchemaProgram
    let maxDepth: Int
    var depth = 0
    var reporting: Bool
    var failure: Failure?
    /// Schema resources entered, outermost first (tracked only for `$dynamicRef`).
    var dynamicScope: [Int] = []
    /// Strict mode: the instance path of the value being evaluated.
    var path: [PathSegment] = []
    /// Strict mode: what each successful evaluation at a new instance location named. A
    /// failed evaluation drops what it added, so only schemas that hold count.
    var strictRecords: [StrictRecord] = []
    /// Stand-ins of string values left out of the instance, and their lengths in Unicode
    /// scalars (``CompiledSchema/validate(json:deferringStringsOver:)``).
    var deferredLengths: [String: Int] = [:]

    /// Strict mode: the properties one schema named in the object at `path`.
    struct StrictRecord {
        var path: [PathSegment]
        var object: JSONObject
        var named: EvaluatedIndices
        var closes: Bool
        var location: String

        var namesAll: Bool { named.all || object.indices.allSatisfy(named.contains) }
    }

    struct Failure {
        var keyword: String
        var schemaLocation: String
        var message: String
        var reversedPath: [PathSegment] = []
    }

    enum PathSegment: Hashable {
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
        guard evaluate(program.root, instance, &annotations, entry: true) else { return false }
        return !program.strict || checkStrictRecords()
    }

    /// Strict mode, after the schema itself held: every object that a closing schema was
    /// applied to must have only members that some schema applied to the same location named.
    /// Names are pooled per location, across branches and across combined documents.
    mutating func checkStrictRecords() -> Bool {
        if strictRecords.allSatisfy({ !$0.closes || $0.namesAll }) { return true }
        var pooled: [[PathSegment]: Int] = [:]
        var groups: [StrictRecord] = []
        for record in strictRecords {
            if let index = pooled[record.path] {
                groups[index].named.formUnion(record.named)
                if record.closes && !groups[index].closes {
                    groups[index].closes = true
                    groups[index].location = record.location
                }
            } else {
                pooled[record.path] = groups.count
                groups.append(record)
            }
        }
        for group in groups where group.closes {
            for (i, member) in group.object.enumerated() where !group.named.contains(i) {
                if reporting && failure == nil {
                    failure = Failure(
                        keyword: "unevaluatedProperties", schemaLocation: group.location,
                        message: "property \(SchemaQuote.string(member.key)) is not allowed "
                            + "(strict: the schema does not name it)",
                        reversedPath: (group.path + [.key(member.key)]).reversed())
                }
                return false
            }
        }
        return true
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
        guard program.strict else { return evaluateNode(index, instance, &annotations, entry: entry) }
        let checkpoint = strictRecords.count
        let valid = evaluateNode(index, instance, &annotations, entry: entry)
        if !valid && strictRecords.count > checkpoint { strictRecords.removeSubrange(checkpoint...) }
        return valid
    }

    private mutating func evaluateNode(_ index: Int, _ instance: JSONValue, _ annotations: inout SchemaAnnotations,
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

        let role = entry && program.strict ? program.strictRoles[index] : .none
        guard node.collectsAnnotations || role != .none else {
            return evaluateChecks(checks, node, instance, &annotations)
        }
        var local = SchemaAnnotations(active: true)
        guard evaluateChecks(checks, node, instance, &local) else { return false }
        if role != .none, case .object(let object) = instance {
            strictRecords.append(StrictRecord(path: path, object: object, named: local.properties,
                                              closes: role == .closes, location: node.location))
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
        if evaluateEntry(index, value, at: segment) { return true }
        if reporting { failure?.reversedPath.append(segment) }
        return false
    }

    /// Evaluates node `index` at a new instance location, one `segment` down.
    mutating func evaluateEntry(_ index: Int, _ value: JSONValue, at segment: PathSegment) -> Bool {
        var fresh = SchemaAnnotations.inactive
        guard program.strict else { return evaluate(index, value, &fresh, entry: true) }
        path.append(segment)
        defer { path.removeLast() }
        return evaluate(index, value, &fresh, entry: true)
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
