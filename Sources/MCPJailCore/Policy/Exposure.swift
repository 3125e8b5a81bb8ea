/// What of the server the model may see: tools by name, resources by URI glob, prompts by
/// name glob. Lists are filtered with the same rules that refuse calls, so the existence of
/// a hidden tool, resource or prompt never leaks.
public struct ExposurePolicy: Sendable {
    private let profile: Profile
    private let resourcePatterns: [Glob]?
    private let promptPatterns: [Glob]?
    /// Pinned tool definitions and injection checks; nil: none.
    private let review: ToolReview?

    public init(profile: Profile, review: ToolReview? = nil) {
        self.profile = profile
        self.review = review
        resourcePatterns = profile.resources.allow.map { $0.map(Glob.init) }
        promptPatterns = profile.prompts.allow.map { $0.map(Glob.init) }
    }

    public func toolVisible(_ name: String) -> Bool { profile.policy(forTool: name) != nil }

    public func resourceAllowed(_ uri: String) -> Bool {
        guard let resourcePatterns else { return profile.toolDefault == .allow }
        return resourcePatterns.contains { $0.matches(uri) }
    }

    /// A template is listed when some allowed pattern could match what it expands to: the
    /// literal text before its first `{` and a pattern's literal prefix agree. Reads of
    /// the expanded URIs are checked one by one anyway.
    public func resourceTemplateVisible(_ template: String) -> Bool {
        guard let resourcePatterns else { return profile.toolDefault == .allow }
        let literal = String(template.prefix { $0 != "{" })
        return resourcePatterns.contains { pattern in
            literal.hasPrefix(pattern.literalPrefix) || pattern.literalPrefix.hasPrefix(literal)
        }
    }

    public func promptAllowed(_ name: String) -> Bool {
        guard let promptPatterns else { return profile.toolDefault == .allow }
        return promptPatterns.contains { $0.matches(name) }
    }

    /// Filters a list response from the server for `method`; nil when `method` is not a
    /// filtered list. The result says whether the line changed.
    public func filterListResponse(method: String, line: UnsafeRawBufferPointer) -> ListFilterResult? {
        switch method {
        case "tools/list":
            return ListFilter.filter(line, field: "tools", nameKey: "name") { name, tool in
                guard toolVisible(name) else { return false }
                return review.map { $0.verdict(on: tool) == .reviewed } ?? true
            }
        case "resources/list": return ListFilter.filter(line, field: "resources", nameKey: "uri") { uri, _ in resourceAllowed(uri) }
        case "resources/templates/list":
            return ListFilter.filter(line, field: "resourceTemplates", nameKey: "uriTemplate") { template, _ in
                resourceTemplateVisible(template)
            }
        case "prompts/list": return ListFilter.filter(line, field: "prompts", nameKey: "name") { name, _ in promptAllowed(name) }
        default: return nil
        }
    }
}

public enum ListFilterResult: Sendable, Equatable {
    /// Nothing was hidden: forward the original bytes.
    case unchanged
    /// The line with hidden entries removed (newline not included).
    case filtered([UInt8])
    /// The list could not be read: drop it rather than pass on what was not checked.
    case unreadable
}

/// Removes entries of `result.FIELD` whose `NAMEKEY` is not kept. Entries without a string
/// name are removed too.
public enum ListFilter {
    public static func filter(
        _ line: UnsafeRawBufferPointer, field: String, nameKey: String, keep: (String, JSONValue) -> Bool
    ) -> ListFilterResult {
        guard case .object(var message)? = try? JSONParser.parse(line) else { return .unreadable }
        guard case .object(var result)? = message["result"] else { return .unchanged }
        guard let entries = result[field] else { return .unchanged }
        guard case .array(let list) = entries else { return .unreadable }
        let kept = list.filter { entry in
            guard case .string(let name)? = entry[nameKey] else { return false }
            return keep(name, entry)
        }
        if kept.count == list.count { return .unchanged }
        result[field] = .array(kept)
        message["result"] = .object(result)
        return .filtered(JSONWriter.bytes(.object(message)))
    }
}

/// A glob over URIs or names: `*` matches within one `/`-separated segment, `**` across
/// segments, `?` one character; everything else is literal.
public struct Glob: Sendable, Equatable {
    public let pattern: String
    private let characters: [Character]
    /// The text before the first wildcard.
    public let literalPrefix: String

    public init(_ pattern: String) {
        self.pattern = pattern
        characters = Array(pattern)
        literalPrefix = String(pattern.prefix { $0 != "*" && $0 != "?" })
    }

    public func matches(_ text: String) -> Bool {
        Self.match(characters[...], Array(text)[...])
    }

    private static func match(_ pattern: ArraySlice<Character>, _ text: ArraySlice<Character>) -> Bool {
        var p = pattern
        var t = text
        while let head = p.first {
            if head == "*" {
                let doubled = p.dropFirst().first == "*"
                let rest = p.dropFirst(doubled ? 2 : 1)
                // Try every split point; a single star may not cross a slash.
                var candidate = t
                while true {
                    if match(rest, candidate) { return true }
                    guard let next = candidate.first else { return false }
                    if next == "/" && !doubled { return false }
                    candidate = candidate.dropFirst()
                }
            }
            guard let character = t.first else { return false }
            if head != "?" && head != character { return false }
            if head == "?" && character == "/" { return false }
            p = p.dropFirst()
            t = t.dropFirst()
        }
        return t.isEmpty
    }
}
