/// The lines mcpjail writes to the client on its own behalf: JSON-RPC errors and refused
/// tool calls, each carrying the DESIGN.md triple `{type, message, retryable}`.
public enum Replies {
    /// A JSON-RPC error response. `id` is the request's id as the client wrote it, or nil
    /// (JSON `null`) when it could not be read.
    public static func error(id: RequestID?, code: Int, _ error: SafeError) -> [UInt8] {
        var line = #"{"jsonrpc":"2.0","id":"# + (id?.json ?? "null")
        line += #","error":{"code":"# + String(code) + #","message":"# + JSONWriter.quoted(error.message)
        line += #","data":"# + triple(error) + "}}\n"
        return Array(line.utf8)
    }

    /// A `tools/call` result with `isError: true`, so the model sees why and can recover.
    /// `resultType: "complete"` is required by the 2026-07-28 protocol and ignored by
    /// earlier clients (results are open objects).
    public static func toolError(id: RequestID, _ error: SafeError) -> [UInt8] {
        var line = #"{"jsonrpc":"2.0","id":"# + id.json + #","result":{"content":[{"type":"text","text":"#
        line += JSONWriter.quoted(error.kind.rawValue + ": " + error.message)
        line += #"}],"structuredContent":{"error":"# + triple(error) + #"},"isError":true,"resultType":"complete"}}"# + "\n"
        return Array(line.utf8)
    }

    /// The reply to a refused request: a tool result for policy refusals of `tools/call`,
    /// a JSON-RPC error otherwise.
    public static func refusal(_ refusal: Refusal, id: RequestID, method: String) -> [UInt8] {
        if refusal.protocolCode == nil, method == "tools/call" {
            return toolError(id: id, refusal.error)
        }
        return error(id: id, code: refusal.protocolCode ?? JSONRPCErrorCode.invalidRequest, refusal.error)
    }

    private static func triple(_ error: SafeError) -> String {
        var text = #"{"type":"# + JSONWriter.quoted(error.kind.rawValue) + #","message":"# + JSONWriter.quoted(error.message)
            + #","retryable":"# + (error.retryable ? "true" : "false")
        if let retryAfter = error.retryAfter {
            text += #","retry_after":"# + (JSONNumber((retryAfter * 1000).rounded(.up) / 1000)?.text ?? "1")
        }
        if let pointer = error.pointer { text += #","pointer":"# + JSONWriter.quoted(pointer) }
        return text + "}"
    }
}
