@testable import MCPJailCore

/// JSON text → value, for schema tests.
func json(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

/// Compiles the schema written as JSON text.
func compile(_ text: String, dialect: SchemaDialect = .draft2020_12, strict: Bool = false,
             limits: CompiledSchema.Limits = .init()) throws -> CompiledSchema
{
    try CompiledSchema(json(text), defaultDialect: dialect, strict: strict, limits: limits)
}

/// The compile error for the schema written as JSON text, or nil when it compiles.
func compileError(_ text: String, dialect: SchemaDialect = .draft2020_12) throws -> SchemaError? {
    let value = try json(text)
    do {
        _ = try CompiledSchema(value, defaultDialect: dialect)
        return nil
    } catch {
        return error
    }
}

extension CompiledSchema {
    /// Validates the instance written as JSON text; checks the fast path agrees.
    func check(_ text: String) throws -> SchemaViolation? {
        let instance = try json(text)
        let violation = validate(instance)
        precondition(isValid(instance) == (violation == nil), "isValid and validate disagree on \(text)")
        return violation
    }
}
