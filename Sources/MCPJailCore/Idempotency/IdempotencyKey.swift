/// One write `tools/call` as the idempotency store knows it: the key that identifies the
/// operation, the fingerprint of what it was asked to do, and who asked (for the operator).
///
/// Two calls with the same ``key`` are the same operation: the second is never executed, it
/// gets the first one's stored result. Two calls with the same key but different
/// ``fingerprint``s are a caller's mistake (a key reused for different arguments) and are
/// refused. Build one with ``IdempotencyKeys``.
public struct IdempotentCall: Sendable, Hashable {
    /// The store's key: 64 lowercase hex digits (SHA-256), whether derived or supplied.
    public var key: String
    /// SHA-256 (hex) of the tool name and the canonical form of the full arguments.
    public var fingerprint: String
    /// The key the caller put in `_meta["dev.mcpjail/idempotencyKey"]`, nil when derived.
    public var suppliedKey: String?
    /// Who made the call (an authenticated subject, or a fixed local one), which server, which tool.
    public var subject: String
    public var server: String
    public var tool: String

    public init(key: String, fingerprint: String, suppliedKey: String?, subject: String, server: String, tool: String) {
        self.key = key
        self.fingerprint = fingerprint
        self.suppliedKey = suppliedKey
        self.subject = subject
        self.server = server
        self.tool = tool
    }
}

/// Why a caller-supplied idempotency key was refused.
public struct IdempotencyKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { "invalid idempotency key: \(reason)" }

    /// What the model sees: not retryable with the same key.
    public var safeError: SafeError {
        SafeError(.invalidRequest, "invalid _meta[\"\(IdempotencyKeys.metaName)\"]: \(reason)", retryable: false)
    }
}

/// Derives the key and fingerprint of a write call.
///
/// The key is SHA-256 over an unambiguous encoding of the operation: the ``CanonicalJSON``
/// form of an array of strings (quoted and escaped, so no two different tuples give the same
/// bytes) that starts with a version tag naming the kind of key:
///
/// - supplied: `["mcpjail/idempotency-key/v1","supplied",subject,server,KEY]`. A supplied key
///   is scoped to the subject and server, so one caller cannot reach another's results by
///   guessing or reusing its key.
/// - derived from all arguments: `[..."arguments",subject,server,tool,ARGS]` where ARGS is the
///   SHA-256 (hex) of the canonical arguments. Member order, whitespace, string escapes and
///   number spelling (`1`, `1.0`, `1e0`) do not change it.
/// - derived from named fields (`idempotency_fields`): `[..."fields",subject,server,tool,SEL]`
///   where SEL is a canonical array of `[name,value]` for each present field and `[name]` for
///   each absent one, by name. A missing field is thus distinct from one that is `null`, and
///   the other arguments do not count. Names are top-level members of the arguments.
///
/// The fingerprint is SHA-256 over `["mcpjail/idempotency-fingerprint/v1",tool,ARGS]`: always
/// the full arguments, so a supplied or field-derived key reused with other arguments is
/// detected. Absent `arguments` count as `{}` (what a server sees either way).
public enum IdempotencyKeys {
    /// The `_meta` member a caller may set to choose its own key.
    public static let metaName = "dev.mcpjail/idempotencyKey"
    /// The longest supplied key, in characters (bytes: they are ASCII).
    public static let maxSuppliedKeyLength = 255

    static let keyTag = "mcpjail/idempotency-key/v1"
    static let fingerprintTag = "mcpjail/idempotency-fingerprint/v1"

    /// The call's identity from its parsed parts. `meta` is `params._meta` (nil if absent);
    /// `fields` is the tool's `idempotency_fields` (nil: all arguments; empty: every call of
    /// the tool shares one key, which a profile should not ask for). A supplied key wins over
    /// derivation; it must be a string of 1 to 255 printable ASCII characters.
    public static func call(
        subject: String, server: String, tool: String, arguments: JSONValue?, meta: JSONValue?,
        fields: [String]? = nil
    ) throws(IdempotencyKeyError) -> IdempotentCall {
        let supplied = try suppliedKey(inMeta: meta)
        let argumentsDigest = CanonicalJSON.sha256Hex(of: arguments ?? .object(JSONObject()))
        let fingerprint = self.fingerprint(tool: tool, argumentsDigest: argumentsDigest)
        let key: String
        if let supplied {
            key = suppliedKeyDigest(subject: subject, server: server, key: supplied)
        } else if let fields {
            key = digest([keyTag, "fields", subject, server, tool], then: selection(of: fields, in: arguments))
        } else {
            key = digest([keyTag, "arguments", subject, server, tool], then: .string(argumentsDigest))
        }
        return IdempotentCall(
            key: key, fingerprint: fingerprint, suppliedKey: supplied, subject: subject, server: server, tool: tool)
    }

    /// The same identity when the relay already has the arguments' canonical digest
    /// (``CanonicalDigest``, which streams large arguments) and the tool has no
    /// `idempotency_fields`. `suppliedKey` must have passed ``validateSuppliedKey(_:)``.
    public static func call(
        subject: String, server: String, tool: String, argumentsDigest: String, suppliedKey: String?
    ) -> IdempotentCall {
        let key = suppliedKey.map { suppliedKeyDigest(subject: subject, server: server, key: $0) }
            ?? digest([keyTag, "arguments", subject, server, tool], then: .string(argumentsDigest))
        return IdempotentCall(
            key: key, fingerprint: fingerprint(tool: tool, argumentsDigest: argumentsDigest),
            suppliedKey: suppliedKey, subject: subject, server: server, tool: tool)
    }

    /// The supplied key in `params._meta`, nil when there is none; throws when there is one
    /// that is not a valid key.
    public static func suppliedKey(inMeta meta: JSONValue?) throws(IdempotencyKeyError) -> String? {
        guard let meta else { return nil }
        guard case .object(let members) = meta else { throw IdempotencyKeyError("_meta is not an object") }
        guard let value = members[metaName] else { return nil }
        guard case .string(let key) = value else { throw IdempotencyKeyError("not a string but \(value.typeName)") }
        try validateSuppliedKey(key)
        return key
    }

    /// A supplied key is 1 to 255 printable ASCII characters (U+0020 to U+007E).
    public static func validateSuppliedKey(_ key: String) throws(IdempotencyKeyError) {
        let bytes = key.utf8
        if bytes.isEmpty { throw IdempotencyKeyError("empty") }
        if bytes.count > maxSuppliedKeyLength {
            throw IdempotencyKeyError("longer than \(maxSuppliedKeyLength) characters")
        }
        if !bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) {
            throw IdempotencyKeyError("only printable ASCII characters are allowed")
        }
    }

    /// The fingerprint of calling `tool` with arguments whose canonical digest is `argumentsDigest`.
    public static func fingerprint(tool: String, argumentsDigest: String) -> String {
        digest([fingerprintTag, tool], then: .string(argumentsDigest))
    }

    static func suppliedKeyDigest(subject: String, server: String, key: String) -> String {
        digest([keyTag, "supplied", subject, server], then: .string(key))
    }

    /// The named fields of `arguments`, sorted by name (UTF-16, as canonical JSON sorts
    /// members), duplicates dropped: `[name, value]` when present, `[name]` when absent.
    static func selection(of fields: [String], in arguments: JSONValue?) -> JSONValue {
        var names: [String] = []
        for name in fields.sorted(by: { $0.utf16.lexicographicallyPrecedes($1.utf16) })
        where names.last.map({ !$0.utf8.elementsEqual(name.utf8) }) ?? true {
            names.append(name)
        }
        return .array(names.map { name in
            if let value = arguments?[name] { return .array([.string(name), value]) }
            return .array([.string(name)])
        })
    }

    static func digest(_ parts: [String], then last: JSONValue) -> String {
        CanonicalJSON.sha256Hex(of: .array(parts.map(JSONValue.string) + [last]))
    }
}
