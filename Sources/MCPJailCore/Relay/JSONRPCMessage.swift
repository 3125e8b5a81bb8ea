/// The JSON-RPC id of a request, normalised so that a server answering `"\u0041"` for a
/// request sent as `"A"` still matches. Only strings and integers are valid ids here.
public struct RequestID: Hashable, Sendable, CustomStringConvertible {
    /// `s:` + the decoded string, or `n:` + the integer's digits.
    public let key: String
    /// The id exactly as the client wrote it, for echoing back in mcpjail's own replies.
    public let json: String

    public var description: String { json }

    /// A string id (mcpjail's own requests).
    public init(string: String) {
        key = "s:" + string
        json = JSONWriter.quoted(string)
    }

    init(key: String, json: String) {
        self.key = key
        self.json = json
    }

    /// Equal when the ids are the same JSON value, whatever their spelling.
    public static func == (lhs: RequestID, rhs: RequestID) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// Reads the id member of a scanned message; nil when absent, `.invalid` when the id is
    /// not a string or an integer.
    public static func from(_ member: ScannedMember, in line: UnsafeRawBufferPointer) -> RequestIDParse {
        let json = String(decoding: UnsafeRawBufferPointer(rebasing: line[member.value.start..<member.value.end]), as: UTF8.self)
        switch member.kind {
        case .string:
            return .valid(RequestID(key: "s:" + JSONText.decodeString(json), json: json))
        case .number where json.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) }):
            return .valid(RequestID(key: "n:" + json, json: json))
        default:
            return .invalid
        }
    }
}

public enum RequestIDParse: Sendable, Equatable {
    case valid(RequestID)
    case invalid
}

/// What one line is, by JSON-RPC 2.0's rules.
public enum JSONRPCMessageKind: Sendable, Equatable {
    /// `method` and `id`: expects a response.
    case request(method: String, id: RequestID)
    /// `method` without `id`.
    case notification(method: String)
    /// `result` or `error` with `id`.
    case response(id: RequestID)
    /// An object that is none of those; `id` when one could be read, for the error reply.
    case invalid(reason: String, id: RequestID?)
}

/// Decoding of JSON string literals the relay reads (writing is ``JSONWriter``).
public enum JSONText {
    /// Decodes a JSON string literal (with its quotes) that the scanner has validated.
    public static func decodeString(_ literal: String) -> String {
        var bytes = Array(literal.utf8)
        guard bytes.count >= 2 else { return literal }
        return bytes.withUnsafeMutableBytes { raw in
            UTF8Collector.decode(UnsafeRawBufferPointer(raw), ByteSpan(start: 0, end: raw.count))
        }
    }
}

extension ScannedMessage {
    /// The text of a member's value (for strings: decoded, without quotes).
    public func string(_ member: ScannedMember, in line: UnsafeRawBufferPointer) -> String? {
        guard member.kind == .string else { return nil }
        let raw = UnsafeRawBufferPointer(rebasing: line[member.value.start..<member.value.end])
        // Fast path: no escapes, the common case for method names.
        if !raw.contains(UInt8(ascii: "\\")) {
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[1..<(raw.count - 1)]), as: UTF8.self)
        }
        return JSONText.decodeString(String(decoding: raw, as: UTF8.self))
    }

    /// Classifies a scanned top-level object as a JSON-RPC message. The envelope checks
    /// (`jsonrpc: "2.0"`, types of id/method/params) are made here, once, for both directions.
    public func classify(_ line: UnsafeRawBufferPointer) -> JSONRPCMessageKind {
        var id: RequestID? = nil
        var idInvalid = false
        if let idMember = member("id") {
            switch RequestID.from(idMember, in: line) {
            case .valid(let parsed): id = parsed
            case .invalid: idInvalid = true
            }
        }
        guard let version = member("jsonrpc"), string(version, in: line) == "2.0" else {
            return .invalid(reason: "jsonrpc must be \"2.0\"", id: id)
        }
        if idInvalid { return .invalid(reason: "id must be a string or an integer", id: nil) }
        if let methodMember = member("method") {
            guard let method = string(methodMember, in: line), !method.isEmpty else {
                return .invalid(reason: "method must be a non-empty string", id: id)
            }
            if let params = member("params"), params.kind != .object, params.kind != .array {
                return .invalid(reason: "params must be an object or an array", id: id)
            }
            if member("result") != nil || member("error") != nil {
                return .invalid(reason: "a request cannot carry result or error", id: id)
            }
            if let id { return .request(method: method, id: id) }
            return .notification(method: method)
        }
        let result = member("result")
        let error = member("error")
        if let id, (result != nil) != (error != nil) {
            if let error, error.kind != .object { return .invalid(reason: "error must be an object", id: id) }
            return .response(id: id)
        }
        return .invalid(reason: "not a JSON-RPC request, notification or response", id: id)
    }
}
