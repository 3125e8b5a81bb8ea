/// A place in one of the documents being compiled: the document's number and a JSON pointer.
struct SchemaLocationKey: Hashable, Sendable {
    var document: Int
    var pointer: String
}

/// What is in force at a schema location: its base URI, its dialect, and its resource.
struct SchemaScope {
    /// Absolute, without fragment.
    var base: SchemaURI
    var dialect: SchemaDialect
    var resource: Int
}

/// The first pass over the documents: finds every schema resource (`$id`), anchor
/// (`$anchor`, `$dynamicAnchor`, draft-07's `"$id": "#name"`), and the base URI and dialect
/// in force at each subschema, so that `$ref` can be resolved in the second pass.
///
/// Only subschema positions are visited (per dialect): an `$id` inside `enum`, `const` or an
/// unknown keyword is data, not an identifier.
struct SchemaResourceIndex {
    struct Resource {
        var uri: String
        var root: SchemaLocationKey
        var rootTokens: [String]
        var dynamicAnchors: [String: SchemaLocationKey] = [:]
    }

    let documents: [JSONValue]
    let limits: CompiledSchema.Limits
    /// Written in front of pointers in messages (`/allOf/1` for the second of combined schemas).
    let locationPrefixes: [String]
    var resources: [Resource] = []
    var resourceByURI: [String: Int] = [:]
    /// `resource-uri#name` → location.
    var anchors: [String: SchemaLocationKey] = [:]
    var scopes: [SchemaLocationKey: SchemaScope] = [:]

    init(documents: [JSONValue], locationPrefixes: [String], defaultDialect: SchemaDialect,
         limits: CompiledSchema.Limits) throws(SchemaError)
    {
        self.documents = documents
        self.locationPrefixes = locationPrefixes
        self.limits = limits
        for (number, document) in documents.enumerated() {
            // A document without `$id` gets a private base URI of its own.
            let base = SchemaURI("https://mcpjail.invalid/schema/\(number)/root.json")
            let scope = SchemaScope(base: base, dialect: defaultDialect, resource: -1)
            var tokens: [String] = []
            try visit(document, SchemaLocationKey(document: number, pointer: ""), &tokens, scope,
                      isDocumentRoot: true)
        }
    }

    /// `#/a/b` for messages, with the combined-schema prefix.
    func location(_ key: SchemaLocationKey) -> String {
        "#" + locationPrefixes[key.document] + key.pointer
    }

    private mutating func visit(
        _ value: JSONValue, _ key: SchemaLocationKey, _ tokens: inout [String], _ inherited: SchemaScope,
        isDocumentRoot: Bool
    ) throws(SchemaError) {
        guard tokens.count <= limits.maxSchemaDepth else {
            throw SchemaError(.tooLarge, at: location(key),
                              "schema nested too deeply (a JSON pointer longer than \(limits.maxSchemaDepth) tokens)")
        }
        var scope = inherited
        guard case .object(let object) = value else {
            if isDocumentRoot { newResource(scope.base, key, tokens, &scope) }
            scopes[key] = scope
            return
        }
        let draft7Ref = scope.dialect == .draft7 && object["$ref"] != nil
        let id = object["$id"]?.stringValue
        if isDocumentRoot || id != nil, let schemaValue = object["$schema"] {
            guard case .string(let uri) = schemaValue else {
                throw SchemaError(.invalidKeyword, at: location(key) + "/$schema", "$schema must be a string")
            }
            guard let dialect = SchemaDialect(schemaURI: uri) else {
                throw SchemaError(.unsupportedDialect, at: location(key) + "/$schema",
                                  "unsupported $schema \(SchemaQuote.string(uri)); draft-07 and 2020-12 are supported")
            }
            scope.dialect = dialect
        }
        if let idValue = object["$id"], !(scope.dialect == .draft7 && draft7Ref) {
            guard case .string(let id) = idValue else {
                throw SchemaError(.invalidKeyword, at: location(key) + "/$id", "$id must be a string")
            }
            let resolved = scope.base.resolving(id)
            let fragment = resolved.fragment ?? ""
            if scope.dialect == .draft2020_12 && !fragment.isEmpty {
                throw SchemaError(.invalidKeyword, at: location(key) + "/$id",
                                  "$id must not have a fragment (use $anchor)")
            }
            if !(id.hasPrefix("#")) {
                newResource(resolved.withoutFragment, key, tokens, &scope)
            } else if isDocumentRoot {
                newResource(scope.base, key, tokens, &scope)
            }
            if !fragment.isEmpty {
                // draft-07: `"$id": "#name"` (or `other.json#name`) is a plain-name anchor.
                try addAnchor(fragment, key, scope, keyword: "$id", dynamic: false)
            }
        } else if isDocumentRoot {
            newResource(scope.base, key, tokens, &scope)
        }
        if scope.dialect == .draft2020_12 {
            if let anchor = object["$anchor"] {
                try addAnchor(anchorName(anchor, key, "$anchor"), key, scope, keyword: "$anchor", dynamic: false)
            }
            if let anchor = object["$dynamicAnchor"] {
                try addAnchor(anchorName(anchor, key, "$dynamicAnchor"), key, scope, keyword: "$dynamicAnchor",
                              dynamic: true)
            }
        }
        scopes[key] = scope
        for (keyword, child) in object {
            guard let shape = SchemaKeywords.subschemaShape(keyword, scope.dialect) else { continue }
            tokens.append(keyword)
            defer { tokens.removeLast() }
            let keywordPointer = key.pointer + "/" + JSONPointer.escape(keyword)
            switch (shape, child) {
            case (.single, _), (.singleOrArray, .object), (.singleOrArray, .bool):
                try visit(child, SchemaLocationKey(document: key.document, pointer: keywordPointer), &tokens, scope,
                          isDocumentRoot: false)
            case (.array, .array(let items)), (.singleOrArray, .array(let items)):
                for (i, item) in items.enumerated() {
                    tokens.append(String(i))
                    defer { tokens.removeLast() }
                    try visit(item, SchemaLocationKey(document: key.document, pointer: keywordPointer + "/\(i)"),
                              &tokens, scope, isDocumentRoot: false)
                }
            case (.map, .object(let members)), (.mapOfSingleOrStrings, .object(let members)):
                for (name, item) in members {
                    if shape == .mapOfSingleOrStrings, case .array = item { continue }
                    tokens.append(name)
                    defer { tokens.removeLast() }
                    let pointer = keywordPointer + "/" + JSONPointer.escape(name)
                    try visit(item, SchemaLocationKey(document: key.document, pointer: pointer), &tokens, scope,
                              isDocumentRoot: false)
                }
            default:
                continue  // A malformed keyword: reported if the compiler reaches it.
            }
        }
    }

    private mutating func newResource(_ uri: SchemaURI, _ key: SchemaLocationKey, _ tokens: [String],
                                      _ scope: inout SchemaScope)
    {
        let text = uri.description
        scope.base = uri
        scope.resource = resources.count
        // The first resource with a URI wins lookups; a repeated $id keeps the first (the spec
        // leaves duplicates undefined, and refusing them would refuse some real schemas).
        if resourceByURI[text] == nil { resourceByURI[text] = resources.count }
        resources.append(Resource(uri: text, root: key, rootTokens: tokens))
    }

    private func anchorName(_ value: JSONValue, _ key: SchemaLocationKey, _ keyword: String) throws(SchemaError)
        -> String
    {
        guard case .string(let name) = value, Self.isAnchorName(name) else {
            throw SchemaError(.invalidKeyword, at: location(key) + "/" + keyword,
                              "\(keyword) must be a string like \"name\" (letters, digits, - _ .)")
        }
        return name
    }

    /// `^[A-Za-z_][-A-Za-z0-9._]*$`, the 2020-12 anchor grammar.
    static func isAnchorName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII,
              first.properties.isAlphabetic || first == "_"
        else { return false }
        return name.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-._".unicodeScalars.contains($0))
        }
    }

    private mutating func addAnchor(_ name: String, _ key: SchemaLocationKey, _ scope: SchemaScope,
                                    keyword: String, dynamic: Bool) throws(SchemaError)
    {
        let uri = scope.base.description + "#" + name
        if let existing = anchors[uri], existing != key {
            throw SchemaError(.invalidKeyword, at: location(key) + "/" + keyword,
                              "anchor \(SchemaQuote.string(name)) is defined twice in the same resource")
        }
        anchors[uri] = key
        if dynamic, scope.resource >= 0 { resources[scope.resource].dynamicAnchors[name] = key }
    }

    /// The scope at `key`; for a location the first pass did not visit (a `$ref` into an
    /// unknown keyword), the scope of its nearest visited ancestor.
    func scope(at key: SchemaLocationKey) -> SchemaScope? {
        if let scope = scopes[key] { return scope }
        var pointer = Substring(key.pointer)
        while let slash = pointer.lastIndex(of: "/") {
            pointer = pointer[..<slash]
            if let scope = scopes[SchemaLocationKey(document: key.document, pointer: String(pointer))] { return scope }
        }
        return nil
    }
}
