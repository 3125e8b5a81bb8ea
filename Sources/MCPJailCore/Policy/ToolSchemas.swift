/// The relay's argument validators: the project's own JSON Schema validator
/// (``CompiledSchema``), compiling the server's `inputSchema` together with the profile's
/// `[tools.NAME.arguments]` fragment, in strict mode unless the profile turns it off.
extension CompiledSchema: ArgumentValidator {
    public func violation(in arguments: JSONValue) -> ArgumentViolation? {
        validate(arguments).map { ArgumentViolation(pointer: $0.instanceLocation, message: $0.message) }
    }

    public func violation(inLargeArguments bytes: UnsafeRawBufferPointer) -> ArgumentViolation?? {
        guard let checked = try? validate(json: bytes, deferringStringsOver: ArgumentSchemaCheck.deferredString) else {
            // The schema reads string contents, or the bytes do not parse (the scanner let
            // them through, so in practice never): the caller's full parse decides.
            return nil
        }
        return .some(checked.map { ArgumentViolation(pointer: $0.instanceLocation, message: $0.message) })
    }
}

public enum ToolSchemas {
    /// The catalog's compiler: a schema that does not compile makes the tool unavailable.
    public static let compile: ToolCatalog.Compiler = { inputSchema, policy in
        do throws(SchemaError) {
            let schema = try CompiledSchema(allOf: [inputSchema] + (policy.arguments.map { [$0] } ?? []), strict: policy.strict)
            return .available(schema)
        } catch {
            return .unavailable(error.description)
        }
    }

    /// Checks a profile's `[tools.NAME.arguments]` fragment on its own, for `check`.
    public static func problem(inFragment fragment: JSONValue) -> String? {
        do throws(SchemaError) {
            _ = try CompiledSchema(fragment)
            return nil
        } catch {
            return error.description
        }
    }
}
