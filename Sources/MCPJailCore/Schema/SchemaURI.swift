/// Just enough of RFC 3986 to give every schema resource its base URI: split a URI reference
/// into its five parts and resolve it against a base (§5.2, with dot-segment removal).
///
/// Nothing is fetched: URIs only name resources inside the one document being compiled.
struct SchemaURI: Equatable, CustomStringConvertible {
    var scheme: String?
    var authority: String?
    var path: String
    var query: String?
    var fragment: String?

    /// Splits `text` with RFC 3986 appendix B's grammar (every string splits).
    init(_ text: String) {
        var rest = Substring(text)
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        if let colon = rest.firstIndex(of: ":"),
           !rest[..<colon].isEmpty,
           !rest[..<colon].contains(where: { $0 == "/" })
        {
            scheme = rest[..<colon].lowercased()
            rest = rest[rest.index(after: colon)...]
        }
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            authority = String(rest[..<end]).lowercased()
            rest = rest[end...]
        }
        path = String(rest)
    }

    init(scheme: String?, authority: String?, path: String, query: String?, fragment: String?) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.query = query
        self.fragment = fragment
    }

    var description: String {
        var out = ""
        if let scheme { out += scheme + ":" }
        if let authority { out += "//" + authority }
        out += path
        if let query { out += "?" + query }
        if let fragment { out += "#" + fragment }
        return out
    }

    /// The URI without its fragment: the name of a schema resource.
    var withoutFragment: SchemaURI {
        var copy = self
        copy.fragment = nil
        return copy
    }

    /// `reference` resolved against `self` (RFC 3986 §5.2.2).
    func resolving(_ reference: String) -> SchemaURI {
        let r = SchemaURI(reference)
        if r.scheme != nil {
            return SchemaURI(
                scheme: r.scheme, authority: r.authority, path: Self.removeDotSegments(r.path),
                query: r.query, fragment: r.fragment)
        }
        var target = SchemaURI(scheme: scheme, authority: nil, path: "", query: nil, fragment: r.fragment)
        if r.authority != nil {
            target.authority = r.authority
            target.path = Self.removeDotSegments(r.path)
            target.query = r.query
            return target
        }
        target.authority = authority
        if r.path.isEmpty {
            target.path = path
            target.query = r.query ?? query
        } else {
            if r.path.hasPrefix("/") {
                target.path = Self.removeDotSegments(r.path)
            } else {
                target.path = Self.removeDotSegments(merge(r.path))
            }
            target.query = r.query
        }
        return target
    }

    /// RFC 3986 §5.2.3.
    private func merge(_ relative: String) -> String {
        if authority != nil && path.isEmpty { return "/" + relative }
        guard let slash = path.lastIndex(of: "/") else { return relative }
        return String(path[...slash]) + relative
    }

    /// RFC 3986 §5.2.4.
    static func removeDotSegments(_ path: String) -> String {
        guard path.contains(".") else { return path }
        var input = Substring(path)
        var output: [Substring] = []
        var absolute = false
        if input.hasPrefix("/") {
            absolute = true
            input = input.dropFirst()
        }
        let segments = input.split(separator: "/", omittingEmptySubsequences: false)
        for (i, segment) in segments.enumerated() {
            let last = i == segments.count - 1
            switch segment {
            case ".":
                if last { output.append("") }
            case "..":
                if !output.isEmpty { output.removeLast() }
                if last { output.append("") }
            default:
                output.append(segment)
            }
        }
        return (absolute ? "/" : "") + output.joined(separator: "/")
    }
}
