// mcpjail's own JSON Schema validator (draft 2020-12 and draft-07).
//
// Why our own: no maintained Swift JSON Schema library covers both 2020-12 (what MCP tool
// schemas default to) and draft-07 (what many servers still emit) without pulling in
// dependencies we do not want in the relay. The relay validates every `tools/call` against a
// schema it compiled once, so it needs a compiled, allocation-light validator that works on
// our exact-decimal `JSONValue` and reports the first violation as a JSON pointer, and that
// refuses (rather than silently accepts) anything it cannot enforce.
//
// Files: SchemaResourceIndex (first pass: $id, anchors, dialects) → SchemaCompiler and
// SchemaNodeBuilder (second pass: keywords → SchemaProgram) → SchemaGraph ($ref cycles,
// strict mode) → SchemaValidator (evaluation). ECMARegex + SchemaPattern run `pattern`,
// SchemaDecimal does exact numbers.

/// A JSON Schema compiled once and used to validate many instances.
///
/// ```swift
/// let schema = try CompiledSchema(toolInputSchema)            // 2020-12 unless $schema says
/// if let violation = schema.validate(arguments) { ... }       // first violation, or nil
/// schema.isValid(arguments)                                   // fast yes/no
/// let both = try CompiledSchema(allOf: [serverSchema, profileFragment], strict: true)
/// ```
///
/// **Dialects.** `$schema` picks draft-07 or 2020-12 per schema resource; without one, the
/// `defaultDialect` applies. Any other `$schema` is a ``SchemaError``.
///
/// **References.** `$ref` and `$dynamicRef` resolve within the document(s) only: JSON
/// pointers (with `~0`, `~1` and %-escapes), `$anchor`, `$dynamicAnchor`, draft-07's
/// `"$id": "#name"`, and `$id`-based base URIs of embedded resources. A remote or metaschema
/// reference, or one that leads nowhere, is a ``SchemaError``. In draft-07 `$ref` overrides its
/// siblings; in 2020-12 it is one keyword among the others.
///
/// **Assertions.** Every validation keyword of both dialects. `format`, `content*`, `title`,
/// `default` and the like are annotations: they never fail an instance. Numbers are exact
/// decimals (`1.0` is an integer; `multipleOf: 0.01` is exact). String lengths count Unicode
/// code points. `pattern` is ECMA-262 translated to ICU (see ``ECMARegex`` for the differences).
///
/// **Strict mode** (`strict: true`, what the relay uses): reject properties the schema does
/// not name, even where the server's schema leaves `additionalProperties` open. Every object
/// schema that declares `properties` (or is a document root with `type: "object"`), and has no
/// `additionalProperties`, `patternProperties` or `unevaluatedProperties` of its own, is
/// treated as if it had `unevaluatedProperties: false`, with the names pooled per instance
/// location: a member is allowed when any schema that holds at that location names it
/// (through `properties`, `patternProperties`, `additionalProperties` or
/// `unevaluatedProperties`), here or in its `allOf`/`anyOf`/`oneOf`/`if`/`then`/`else`/
/// `dependentSchemas`/`$ref` subschemas, or in another document of a combined schema. So the
/// properties named in a matching branch count, a branch is not closed against its siblings,
/// and a profile fragment that constrains one property of a nested object does not close it
/// against the properties the server's schema names there. Names from branches that do not
/// hold (a failed `anyOf` branch, an `if` that fails, `not`) do not count. A schema that
/// explicitly allows extra properties (`additionalProperties: true` or a schema) names them
/// all; a nested `{"type": "object"}` without `properties` is left open. Strict violations are
/// reported after the schema's own (keyword `unevaluatedProperties`).
///
/// **Combining.** ``init(allOf:defaultDialect:strict:limits:)`` compiles several documents as
/// one `{"allOf": [...]}`: each keeps its own `$schema`, `$id`s and `$ref`s, and all must hold.
///
/// **Robustness.** Schema nesting, the number of subschemas and evaluation depth are capped
/// (``Limits``); a `$ref` cycle that does not move into the instance (`{"$ref": "#"}`) is
/// refused at compile time; patterns longer than ``ECMARegex/maxPatternLength`` are refused.
/// An instance nested deeper than the evaluation limit is invalid (fail closed).
public struct CompiledSchema: Sendable {
    /// Bounds on schemas and on evaluation.
    public struct Limits: Sendable, Equatable {
        /// Longest JSON pointer to a subschema inside a document, in tokens (each
        /// `properties/name` step is two), so 128 allows about 64 levels of nesting.
        public var maxSchemaDepth: Int
        /// Most subschemas compiled from all documents together.
        public var maxNodes: Int
        /// Deepest nesting of subschema evaluations (in-place and into the instance together).
        /// Evaluation recurses: at the default 256 a release build needs under 200 KB of
        /// stack (measured with a 2,000-deep instance on threads of 192 KB and more).
        public var maxEvaluationDepth: Int

        public init(maxSchemaDepth: Int = 128, maxNodes: Int = 50_000, maxEvaluationDepth: Int = 256) {
            self.maxSchemaDepth = maxSchemaDepth
            self.maxNodes = maxNodes
            self.maxEvaluationDepth = maxEvaluationDepth
        }
    }

    let program: SchemaProgram
    /// The limits the schema was compiled with.
    public let limits: Limits
    /// Whether strict mode is on (see the type's documentation).
    public let strict: Bool
    /// Whether a keyword reads string contents (``SchemaProgram/readsStringContents``).
    let readsStringContents: Bool

    /// Compiles `schema`. Throws a ``SchemaError`` when the schema is invalid or uses
    /// something not implemented (remote references, an unknown `$schema`).
    public init(_ schema: JSONValue, defaultDialect: SchemaDialect = .draft2020_12, strict: Bool = false,
                limits: Limits = Limits()) throws(SchemaError)
    {
        try self.init(documents: [schema], defaultDialect: defaultDialect, strict: strict, limits: limits)
    }

    /// Compiles several schemas that must all hold, e.g. a server's tool schema and the
    /// profile's tighter fragment. Each is its own document (its `$ref`s stay inside it).
    public init(allOf schemas: [JSONValue], defaultDialect: SchemaDialect = .draft2020_12, strict: Bool = false,
                limits: Limits = Limits()) throws(SchemaError)
    {
        guard !schemas.isEmpty else {
            throw SchemaError(.invalidKeyword, at: "#/allOf", "at least one schema is needed")
        }
        try self.init(documents: schemas, defaultDialect: defaultDialect, strict: strict, limits: limits)
    }

    private init(documents: [JSONValue], defaultDialect: SchemaDialect, strict: Bool, limits: Limits)
        throws(SchemaError)
    {
        program = try SchemaCompiler.compile(
            documents: documents, defaultDialect: defaultDialect, strict: strict, limits: limits)
        self.limits = limits
        self.strict = strict
        readsStringContents = program.readsStringContents
    }

    /// Whether `instance` is valid. The fast path: no violation is built.
    public func isValid(_ instance: JSONValue) -> Bool {
        var validator = SchemaValidator(program: program, maxDepth: limits.maxEvaluationDepth, reporting: false)
        return validator.run(instance)
    }

    /// The first violation, or nil when `instance` is valid.
    public func validate(_ instance: JSONValue) -> SchemaViolation? {
        if isValid(instance) { return nil }
        var validator = SchemaValidator(program: program, maxDepth: limits.maxEvaluationDepth, reporting: true)
        _ = validator.run(instance)
        return validator.violation()
    }

    /// Parses `json` (strict RFC 8259, ``JSONParser``) and validates it.
    public func validate(json: some Collection<UInt8>) throws(JSONParseError) -> SchemaViolation? {
        validate(try JSONParser.parse(json))
    }

    /// Parses `json` and validates it without copying out string values longer than
    /// `threshold` bytes, when no keyword of the schema reads a string's contents (see
    /// ``JSONParser/parse(_:deferringStringsOver:)``): `minLength` and `maxLength` get their
    /// lengths, `type` their type. Validating an 8 MiB argument thus costs no second 8 MiB.
    /// nil when the schema reads string contents (then parse and use ``validate(_:)``).
    public func validate(
        json bytes: UnsafeRawBufferPointer, deferringStringsOver threshold: Int
    ) throws(JSONParseError) -> SchemaViolation?? {
        guard !readsStringContents else { return nil }
        let (instance, deferred) = try JSONParser.parse(bytes, deferringStringsOver: threshold)
        var validator = SchemaValidator(program: program, maxDepth: limits.maxEvaluationDepth, reporting: false)
        validator.deferredLengths = deferred.lengths
        if validator.run(instance) { return .some(nil) }
        var reporting = SchemaValidator(program: program, maxDepth: limits.maxEvaluationDepth, reporting: true)
        reporting.deferredLengths = deferred.lengths
        _ = reporting.run(instance)
        return .some(reporting.violation())
    }


    /// The number of compiled subschemas (for tests and diagnostics).
    public var subschemaCount: Int { program.nodes.count }
}
