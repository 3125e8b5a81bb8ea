/// mcpjail's own keys in a request's `params._meta` (prefix `dev.mcpjail/`): read by the
/// relay and never forwarded, so a token or idempotency key never reaches the server.
public struct RequestMeta: Sendable, Equatable {
    public static let prefix = "dev.mcpjail/"
    public static let authorizationKey = "dev.mcpjail/authorization"
    public static let idempotencyKey = "dev.mcpjail/idempotencyKey"

    /// `dev.mcpjail/authorization`, when present: the token (or `Bearer` + token).
    public var authorization: JSONValue?
    /// `dev.mcpjail/idempotencyKey`, when present.
    public var idempotencyKey: JSONValue?
    /// The line to forward without mcpjail's keys, or nil when it had none (forward as is).
    public var strippedLine: [UInt8]?

    public init(authorization: JSONValue? = nil, idempotencyKey: JSONValue? = nil, strippedLine: [UInt8]? = nil) {
        self.authorization = authorization
        self.idempotencyKey = idempotencyKey
        self.strippedLine = strippedLine
    }

    /// Reads `params._meta` of a scanned request. The common case (no `_meta`, or no key
    /// with the prefix in its bytes) costs one member lookup and one byte search.
    public static func read(_ scanned: ScannedMessage, line: UnsafeRawBufferPointer) -> RequestMeta {
        guard let member = scanned.member("_meta", in: "params"), member.kind == .object else { return RequestMeta() }
        let bytes = UnsafeRawBufferPointer(rebasing: line[member.value.start..<member.value.end])
        // Keys may be written with escapes (`dev.mcpjail\/...`), so search for the part
        // before the slash and let the parser decide.
        guard ByteSearch.contains(bytes, Array("dev.mcpjail".utf8)),
            case .object(let meta)? = try? JSONParser.parse(bytes)
        else { return RequestMeta() }
        var result = RequestMeta()
        var kept: [(String, JSONValue)] = []
        var stripped = false
        for (key, value) in meta.members {
            if key == authorizationKey {
                result.authorization = value
            } else if key == idempotencyKey {
                result.idempotencyKey = value
            }
            if key.hasPrefix(prefix) {
                stripped = true
            } else {
                kept.append((key, value))
            }
        }
        if stripped {
            var out: [UInt8] = []
            out.reserveCapacity(line.count)
            out.append(contentsOf: line[0..<member.value.start])
            JSONWriter.append(.object(JSONObject(kept)), to: &out)
            out.append(contentsOf: line[member.value.end..<line.count])
            result.strippedLine = out
        }
        return result
    }
}

/// Plain byte-string search (no Glibc in Core).
public enum ByteSearch {
    public static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        firstIndex(of: needle, in: haystack, from: 0) != nil
    }

    /// The offset of the first occurrence of `needle` at or after `from`.
    public static func firstIndex(of needle: [UInt8], in haystack: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        let last = haystack.count - needle.count
        var index = from
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index }
            }
            index += 1
        }
        return nil
    }
}
