import Foundation
import Testing
@testable import MCPJailCore

@Suite("Egress DNS stub and HTTP proxy requests")
struct EgressDNSAndProxyTests {
    static func query(_ name: String, type: UInt16 = 1, id: UInt16 = 0x1234) -> [UInt8] {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        out += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return out
    }

    static let policy = EgressPolicy(rules: [
        try! EgressRule.parse("api.github.com:443").get(), try! EgressRule.parse("*.githubusercontent.com:443").get(),
    ])

    @Test("a listed name gets a pool address, the same one each time, and maps back")
    func answersListed() throws {
        var stub = DNSStub(policy: Self.policy)
        let (reply, outcome) = stub.answer(Self.query("API.github.com"))
        let bytes = try #require(reply)
        #expect(bytes[0] == 0x12 && bytes[1] == 0x34)
        #expect(bytes[3] & 0x0F == 0)  // NOERROR
        #expect(bytes[7] == 1)  // one answer
        #expect(Array(bytes.suffix(4)) == [127, 100, 0, 1])
        #expect(outcome == .answered(name: "api.github.com", address: IPAddress("127.100.0.1")))
        let (_, again) = stub.answer(Self.query("api.github.com"))
        #expect(again == .answered(name: "api.github.com", address: IPAddress("127.100.0.1")))
        let (_, other) = stub.answer(Self.query("raw.githubusercontent.com"))
        #expect(other == .answered(name: "raw.githubusercontent.com", address: IPAddress("127.100.0.2")))
        #expect(stub.pool.name(for: IPAddress("127.100.0.2")!) == "raw.githubusercontent.com")
        #expect(EgressNamePool.contains(IPAddress("127.100.9.9")!))
        #expect(!EgressNamePool.contains(IPAddress("127.0.0.1")!))
    }

    @Test("an unlisted name is NXDOMAIN; AAAA of a listed one is empty; garbage is not answered")
    func refusesOthers() throws {
        var stub = DNSStub(policy: Self.policy)
        let (reply, outcome) = stub.answer(Self.query("githubusercontent.com"))
        #expect(try #require(reply)[3] & 0x0F == 3)
        #expect(outcome == .refused(name: "githubusercontent.com"))
        let (aaaa, aaaaOutcome) = stub.answer(Self.query("api.github.com", type: 28))
        #expect(try #require(aaaa)[7] == 0)
        #expect(aaaaOutcome == .answered(name: "api.github.com", address: nil))
        #expect(stub.answer([1, 2, 3]).reply == nil)
        var response = Self.query("api.github.com")
        response[2] |= 0x80
        #expect(stub.answer(response).reply == nil)
        var truncatedName = Self.query("api.github.com")
        truncatedName.removeLast(8)
        #expect(stub.answer(truncatedName).outcome == .malformed)
    }

    @Test("CONNECT and absolute-form requests are parsed; the forwarded head is origin-form with Connection: close")
    func proxyRequests() throws {
        let connect = Array("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n".utf8)
        #expect(HTTPProxyRequest.headEnd(connect) == connect.count)
        #expect(HTTPProxyRequest.parse(head: connect) == .connect(host: "api.github.com", port: 443))
        let get = Array("GET http://Example.com:8080/a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n".utf8)
        guard case .forward(let host, let port, let head) = try #require(HTTPProxyRequest.parse(head: get)) else {
            Issue.record("not a forward")
            return
        }
        #expect(host == "example.com" && port == 8080)
        #expect(String(decoding: head, as: UTF8.self) == "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        #expect(HTTPProxyRequest.parse(head: Array("GET http://[::1]/ HTTP/1.1\r\n\r\n".utf8))?.port == 80)
        #expect(HTTPProxyRequest.parse(head: Array("GET /local HTTP/1.1\r\n\r\n".utf8)) == nil)
        #expect(HTTPProxyRequest.parse(head: Array("GET https://x/ HTTP/1.1\r\n\r\n".utf8)) == nil)
        #expect(HTTPProxyRequest.parse(head: Array("CONNECT x HTTP/1.1\r\n\r\n".utf8)) == nil)
        #expect(HTTPProxyRequest.parse(head: Array("GET http://u@x/ HTTP/1.1\r\n\r\n".utf8)) == nil)
    }
}

@Suite("Egress audit records")
struct EgressAuditRecordTests {
    @Test("destination and address are written and read back; refused is an outcome")
    func roundTrip() throws {
        var record = AuditRecord(
            time: 1_700_000_000.25, server: "s", profileDigest: "d", session: "x", requestID: nil, method: "egress/connect",
            decision: .deny, decidedBy: "egress", outcome: .refused, errorType: "internal_address", latencyMicros: 12,
            bytesIn: 0, bytesOut: 0)
        record.destination = "private.test:8081"
        record.peerAddress = "10.231.77.2"
        let text = String(decoding: record.jsonObject, as: UTF8.self)
        #expect(text.contains(#""destination":"private.test:8081","address":"10.231.77.2""#))
        let again = try AuditRecord(json: try JSONParser.parse(Array(text.utf8)))
        #expect(again == record)
    }
}
