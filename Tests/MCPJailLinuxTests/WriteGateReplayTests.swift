import MCPJailCore
import Testing
@testable import MCPJailLinux

/// What a write's stored answer replays as: the same kind of answer the client first got.
@Suite("Write replays keep the shape of the first answer")
struct WriteGateReplayTests {
    private func stored(_ line: String) -> [UInt8] {
        Array(line.utf8).withUnsafeBytes { WriteGate.storedResult($0) }
    }

    private func replay(_ stored: [UInt8]) throws -> JSONValue {
        let line = WriteGate.replay(id: RequestID(string: "r1"), stored: stored).line
        #expect(line.last == UInt8(ascii: "\n"))
        return try JSONParser.parse(Array(line.dropLast()))
    }

    @Test("a result replays as that result, marked in its _meta")
    func result() throws {
        let reply = try replay(stored(#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"done"}],"isError":false}}"#))
        #expect(reply["id"] == .string("r1") && reply["error"] == nil)
        let result = try #require(reply["result"])
        #expect(result["content"] == (try JSONParser.parse(Array(#"[{"type":"text","text":"done"}]"#.utf8))))
        #expect(result["_meta"]?["dev.mcpjail/replayed"] == .bool(true))
    }

    @Test("a JSON-RPC error replays as the same JSON-RPC error (code, message, data), not as a result")
    func jsonRPCError() throws {
        let first = #"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"order 12 is closed","data":{"order":12}}}"#
        let reply = try replay(stored(first))
        #expect(reply["result"] == nil)
        let error = try #require(reply["error"])
        #expect(error["code"] == .number(JSONNumber(-32602)) && error["message"] == .string("order 12 is closed"))
        #expect(error["data"]?["order"] == .number(JSONNumber(12)))
        #expect(error["data"]?["dev.mcpjail/replayed"] == .bool(true))

        // Without data the marker is the data; data that is not an object is kept as it was.
        let bare = try replay(stored(#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"no"}}"#))
        #expect(bare["error"]?["data"]?["dev.mcpjail/replayed"] == .bool(true))
        let text = try replay(stored(#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"no","data":"why"}}"#))
        #expect(text["error"]?["data"] == .string("why"))
    }

    @Test("a stored result that merely holds other keys is never taken for an error")
    func notAnError() throws {
        let reply = try replay(stored(#"{"jsonrpc":"2.0","id":7,"result":{"dev.mcpjail/jsonrpcError":{"code":1},"content":[]}}"#))
        #expect(reply["error"] == nil && reply["result"]?["content"] == .array([]))
    }
}
