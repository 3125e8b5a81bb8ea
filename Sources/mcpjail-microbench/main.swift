// Micro-benchmarks of the relay's hot paths, in a release build:
//
//     swift build -c release --product mcpjail-microbench && .build/release/mcpjail-microbench
//
// Each case runs for several rounds; the table shows the median nanoseconds per operation
// over the rounds (and the fastest round), so one noisy round on a shared machine does not
// move the number.
import MCPJailCore

/// A typical MCP tool inputSchema: five properties of the usual kinds, required names,
/// no additional properties.
let toolSchema = #"""
    {"type": "object",
     "properties": {
       "path": {"type": "string", "pattern": "^/[A-Za-z0-9._/-]+$", "maxLength": 4096},
       "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
       "mode": {"enum": ["read", "write", "append"]},
       "tags": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 16},
       "recursive": {"type": "boolean"}},
     "required": ["path", "mode"],
     "additionalProperties": false}
    """#

/// A profile's tighter fragment, combined with the tool schema in the strict case.
let profileFragment = #"{"properties": {"path": {"pattern": "^/srv/"}, "mode": {"const": "read"}}}"#

let arguments = #"""
    {"path": "/srv/data/reports/2024/q3.csv", "limit": 100, "mode": "read",
     "tags": ["finance", "q3", "draft"], "recursive": false}
    """#
let badArguments = #"{"path": "/srv/data/q3.csv", "limit": 100, "mode": "read", "tags": ["a", 7]}"#

func parse(_ text: String) -> JSONValue {
    do { return try JSONParser.parse(Array(text.utf8)) } catch { fatalError("bad JSON in the benchmark: \(error)") }
}

func compile(_ documents: [String], strict: Bool) -> CompiledSchema {
    do {
        return try CompiledSchema(allOf: documents.map(parse), strict: strict)
    } catch {
        fatalError("bad schema in the benchmark: \(error)")
    }
}

let plain = compile([toolSchema], strict: false)
let combined = compile([toolSchema, profileFragment], strict: true)
let instance = parse(arguments)
let badInstance = parse(badArguments)
let argumentBytes = Array(arguments.utf8)
precondition(plain.isValid(instance) && combined.isValid(instance), "the arguments must be valid")
precondition(plain.validate(badInstance)?.instanceLocation == "/tags/1", "the bad arguments must fail at /tags/1")

/// Runs `body` `iterations` times per round; returns the median and best ns per operation.
func measure(rounds: Int = 9, iterations: Int, _ body: () -> Int) -> (median: Double, best: Double, sink: Int) {
    var sink = 0
    for _ in 0..<(iterations / 10) { sink &+= body() }  // warm-up
    var perOperation: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let start = clock.now
        for _ in 0..<iterations { sink &+= body() }
        let elapsed = clock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        perOperation.append(nanoseconds / Double(iterations))
    }
    perOperation.sort()
    return (perOperation[perOperation.count / 2], perOperation[0], sink)
}

let cases: [(String, Int, () -> Int)] = [
    ("isValid, parsed arguments", 200_000, { plain.isValid(instance) ? 1 : 0 }),
    ("validate, parsed arguments", 200_000, { plain.validate(instance) == nil ? 1 : 0 }),
    ("validate, strict + profile fragment", 200_000, { combined.validate(instance) == nil ? 1 : 0 }),
    ("parse + validate, from bytes", 100_000, {
        ((try? plain.validate(json: argumentBytes)) ?? nil) == nil ? 1 : 0
    }),
    ("parse only, from bytes", 100_000, { (try? JSONParser.parse(argumentBytes)) == nil ? 0 : 1 }),
    ("validate, invalid (builds violation)", 100_000, { plain.validate(badInstance) == nil ? 0 : 1 }),
    ("compile the tool schema", 5_000, { compile([toolSchema], strict: false).subschemaCount }),
]

print("mcpjail-microbench: JSON Schema validation of a typical tools/call (median of 9 rounds)")
print("")
let nameWidth = cases.map(\.0.count).max() ?? 0
func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
func leftPad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
print("\(pad("case", nameWidth))  \(leftPad("median ns/op", 12))  \(leftPad("best ns/op", 10))")
func rule(_ width: Int) -> String { String(repeating: "-", count: width) }
print("\(rule(nameWidth))  \(rule(12))  \(rule(10))")
var sink = 0
for (name, iterations, body) in cases {
    let result = measure(iterations: iterations, body)
    sink &+= result.sink
    print("\(pad(name, nameWidth))  \(leftPad(String(Int(result.median.rounded())), 12))  "
          + "\(leftPad(String(Int(result.best.rounded())), 10))")
}
print("")
print("(checksum \(sink))")
