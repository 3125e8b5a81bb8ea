import Foundation
import Testing

@testable import MCPJailCore

/// Runs the official JSON-Schema-Test-Suite (vendored in Tests/Fixtures) against the validator:
/// every required file of draft 2020-12 and draft-07, plus the optional files listed in
/// ``optionalFiles``. Skips are explicit, each with its reason, and a skipped group must still
/// be refused at compile time (a ``SchemaError``): the validator never accepts what it cannot
/// check. Any other failing case fails the test. Counts are printed per dialect.
@Suite("JSONSchema test suite")
struct JSONSchemaSuiteTests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/json-schema-test-suite/tests")

    static let remote = "needs a remote schema (http://localhost:1234/...); remote $ref is never fetched"
    static let metaschema = "$refs the dialect's metaschema, which is not bundled"

    /// Whole files not run, with the reason.
    static let skippedFiles: [String: [String: String]] = [
        "draft2020-12": [
            "refRemote.json": remote,
            "vocabulary.json": "custom metaschemas with $vocabulary are remote; an unknown $schema is refused",
        ],
        "draft7": [
            "refRemote.json": remote,
        ],
    ]

    /// Groups not run, as "file: group description", with the reason.
    static let skippedGroups: [String: [String: String]] = [
        "draft2020-12": [
            "defs.json: validate definition against metaschema": metaschema,
            "ref.json: remote ref, containing refs itself": metaschema,
            "dynamicRef.json: strict-tree schema, guards against misspelled properties": remote,
            "dynamicRef.json: tests for implementation dynamic anchor and reference link": remote,
            "dynamicRef.json: $ref and $dynamicAnchor are independent of order - $defs first": remote,
            "dynamicRef.json: $ref and $dynamicAnchor are independent of order - $ref first": remote,
            "dynamicRef.json: $ref to $dynamicRef finds detached $dynamicAnchor": remote,
        ],
        "draft7": [
            "definitions.json: validate definition against metaschema": metaschema,
            "ref.json: remote ref, containing refs itself": metaschema,
        ],
    ]

    /// Optional files run (and required to pass), per dialect. Not run: `format/` and
    /// `format-assertion.json` (format is an annotation here), `content.json` (content is an
    /// annotation here), `cross-draft.json` (needs remote schemas of other drafts).
    static let optionalFiles: [String: [String]] = [
        "draft2020-12": [
            "anchor.json", "bignum.json", "dependencies-compatibility.json", "dynamicRef.json",
            "ecmascript-regex.json", "float-overflow.json", "id.json", "no-schema.json", "non-bmp-regex.json",
            "refOfUnknownKeyword.json", "unknownKeyword.json",
        ],
        "draft7": [
            "bignum.json", "ecmascript-regex.json", "float-overflow.json", "id.json", "non-bmp-regex.json",
            "unknownKeyword.json",
        ],
    ]

    struct Outcome {
        var passed = 0
        var optionalPassed = 0
        var skipped = 0
        var failures: [String] = []
    }

    @Test(arguments: [("draft2020-12", SchemaDialect.draft2020_12), ("draft7", SchemaDialect.draft7)])
    func officialSuite(_ directory: String, _ dialect: SchemaDialect) throws {
        let folder = Self.fixtures.appendingPathComponent(directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count > 30, "suite files missing in \(folder.path)")
        var outcome = Outcome()
        for file in files {
            try run(file: file, in: folder, directory: directory, dialect: dialect, optional: false, into: &outcome)
        }
        for file in Self.optionalFiles[directory] ?? [] {
            try run(file: file, in: folder.appendingPathComponent("optional"), directory: directory, dialect: dialect,
                    optional: true, into: &outcome)
        }
        print("JSON-Schema-Test-Suite \(directory): \(outcome.passed) required cases pass, "
              + "\(outcome.optionalPassed) optional cases pass, \(outcome.skipped) skipped (all refused at compile time), "
              + "\(outcome.failures.count) failing")
        for failure in outcome.failures {
            Issue.record("\(directory)/\(failure)")
        }
    }

    func run(file: String, in folder: URL, directory: String, dialect: SchemaDialect, optional: Bool,
             into outcome: inout Outcome) throws
    {
        let data = try Data(contentsOf: folder.appendingPathComponent(file))
        let groups = try #require(try JSONParser.parse(Array(data)).arrayValue)
        let name = optional ? "optional/\(file)" : file
        for group in groups {
            let description = group["description"]?.stringValue ?? "?"
            let tests = group["tests"]?.arrayValue ?? []
            let schema = group["schema"] ?? .null
            let skipped = !optional
                && (Self.skippedFiles[directory]?[file] != nil
                    || Self.skippedGroups[directory]?["\(file): \(description)"] != nil)
            if skipped {
                outcome.skipped += tests.count
                if (try? CompiledSchema(schema, defaultDialect: dialect)) != nil {
                    outcome.failures.append("\(name): \(description): skipped, but compiles instead of being refused")
                }
                continue
            }
            let compiled: CompiledSchema
            do {
                compiled = try CompiledSchema(schema, defaultDialect: dialect)
            } catch {
                outcome.failures.append("\(name): \(description): does not compile: \(error)")
                continue
            }
            for test in tests {
                let expected = test["valid"]?.boolValue ?? false
                let instance = test["data"] ?? .null
                let fast = compiled.isValid(instance)
                let violation = compiled.validate(instance)
                if fast == expected && (violation == nil) == expected {
                    if optional { outcome.optionalPassed += 1 } else { outcome.passed += 1 }
                } else {
                    outcome.failures.append(
                        "\(name): \(description): \(test["description"]?.stringValue ?? "?"): expected "
                            + "\(expected ? "valid" : "invalid"), isValid \(fast), validate "
                            + (violation.map { "\($0)" } ?? "nil"))
                }
            }
        }
    }
}
