/// What a reviewed tool looked like: the SHA-256 of the canonical JSON of the fields that
/// shape how an agent uses it (name, description, inputSchema, outputSchema, annotations).
/// A changed description is a changed behaviour for every agent, so any difference in
/// these fields, down to one character, is a different fingerprint.
public enum ToolFingerprint {
    /// The fields that count, in the order they are listed in a diff.
    public static let fields = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"]

    /// The digest of one tool definition from a `tools/list` result.
    public static func digest(ofTool tool: JSONValue) -> String {
        CanonicalJSON.sha256Hex(of: .object(JSONObject(reviewed(tool))))
    }

    /// The digest of a server's `instructions` (nil when it gives none).
    public static func digest(ofInstructions instructions: String?) -> String? {
        instructions.map { CanonicalJSON.sha256Hex(of: .string($0)) }
    }

    /// The reviewed fields of a tool that are present, by name.
    public static func reviewed(_ tool: JSONValue) -> [(String, JSONValue)] {
        fields.compactMap { field in tool[field].map { (field, $0) } }
    }

    /// Field-by-field differences between a pinned and a current definition, for `diff`.
    public static func differences(pinned: JSONValue?, current: JSONValue?) -> [(field: String, pinned: JSONValue?, current: JSONValue?)] {
        fields.compactMap { field in
            let before = pinned?[field]
            let after = current?[field]
            return before == after ? nil : (field, before, after)
        }
    }
}

/// Finds carriers of prompt injection in text a server gives the model (tool descriptions,
/// titles, schema descriptions, `instructions`): characters a person reviewing the text
/// cannot see (Unicode tag characters, zero-width and bidirectional controls), terminal
/// escapes, and phrases aimed at the model rather than at describing the tool.
///
/// The phrase list is small and documented here on purpose; it flags text for review, it
/// does not prove intent. Matching is case-insensitive on the text with invisible
/// characters removed, so splitting a phrase with zero-width spaces does not hide it.
public enum InjectionScanner {
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        /// Where: `description`, `inputSchema/properties/path/description`, `instructions`.
        public var location: String
        public var kind: Kind
        public var detail: String

        public enum Kind: String, Sendable, Equatable {
            case invisibleCharacter = "invisible_character"
            case bidiControl = "bidi_control"
            case terminalEscape = "terminal_escape"
            case modelDirective = "model_directive"
        }

        public var description: String { "\(location): \(kind.rawValue): \(detail)" }
    }

    /// Phrases that address the model instead of describing the tool (lowercase).
    public static let directives = [
        "ignore previous instructions", "ignore all previous instructions", "ignore prior instructions",
        "disregard previous instructions", "disregard all prior", "forget your instructions",
        "do not tell the user", "don't tell the user", "do not mention", "without telling the user",
        "do not inform the user", "hide this from the user", "you must always", "before using any other tool",
        "<important>", "</important>", "system prompt", "as an ai", "new instructions:",
        "read ~/.ssh", "id_rsa", ".aws/credentials", "exfiltrate", "send the contents",
    ]

    /// Every finding in the reviewed text of one tool (strings anywhere in its fields).
    public static func scan(tool: JSONValue) -> [Finding] {
        var findings: [Finding] = []
        for (field, value) in ToolFingerprint.reviewed(tool) {
            collect(value, at: field, into: &findings)
        }
        return findings
    }

    /// The findings in a server's `instructions`.
    public static func scan(instructions: String) -> [Finding] {
        scan(text: instructions, at: "instructions")
    }

    private static func collect(_ value: JSONValue, at location: String, into findings: inout [Finding]) {
        switch value {
        case .string(let text): findings += scan(text: text, at: location)
        case .array(let elements):
            for (index, element) in elements.enumerated() { collect(element, at: "\(location)/\(index)", into: &findings) }
        case .object(let object):
            for member in object.members { collect(member.value, at: "\(location)/\(member.key)", into: &findings) }
        default: break
        }
    }

    public static func scan(text: String, at location: String) -> [Finding] {
        var findings: [Finding] = []
        var visible = String.UnicodeScalarView()
        var reported: Set<Finding.Kind> = []
        func report(_ kind: Finding.Kind, _ scalar: Unicode.Scalar) {
            guard reported.insert(kind).inserted else { return }
            findings.append(Finding(location: location, kind: kind, detail: "U+" + scalar.hexCode))
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0xE0000...0xE007F, 0x200B...0x200D, 0x2060...0x2064, 0xFEFF, 0x180E, 0x00AD:
                report(.invisibleCharacter, scalar)
            case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x061C:
                report(.bidiControl, scalar)
            case 0x1B, 0x9B:
                report(.terminalEscape, scalar)
                visible.append(scalar)
            default:
                visible.append(scalar)
            }
        }
        let lowered = String(visible).lowercased()
        for phrase in directives where lowered.contains(phrase) {
            findings.append(Finding(location: location, kind: .modelDirective, detail: "\"\(phrase)\""))
        }
        return findings
    }
}
