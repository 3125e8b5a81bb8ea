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
        var stub = DNSStub(policy: Self.policy, ipv6: true)
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

    @Test("AAAA of a listed name is its IPv6 pool address, which maps back to the name like the IPv4 one")
    func answersAAAA() throws {
        var stub = DNSStub(policy: Self.policy, ipv6: true)
        let (reply, outcome) = stub.answer(Self.query("api.github.com", type: 28))
        let bytes = try #require(reply)
        #expect(bytes[3] & 0x0F == 0 && bytes[7] == 1)
        // name pointer, AAAA, IN, TTL 60, 16 bytes
        #expect(Array(bytes.suffix(28).prefix(12)) == [0xC0, 0x0C, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16])
        let v6 = try #require(IPAddress("fd6d:6370:6a00::1"))
        #expect(Array(bytes.suffix(16)) == v6.bytes)
        #expect(outcome == .answered(name: "api.github.com", address: v6))
        // The same name keeps the same index in both families.
        #expect(stub.answer(Self.query("api.github.com")).outcome == .answered(name: "api.github.com", address: IPAddress("127.100.0.1")))
        let (_, other) = stub.answer(Self.query("raw.githubusercontent.com", type: 28))
        #expect(other == .answered(name: "raw.githubusercontent.com", address: IPAddress("fd6d:6370:6a00::2")))
        #expect(stub.pool.name(for: v6) == "api.github.com")
        #expect(stub.pool.name(for: IPAddress("fd6d:6370:6a00::2")!) == "raw.githubusercontent.com")
        #expect(stub.pool.name(for: IPAddress("fd6d:6370:6a00::3")!) == nil)
        #expect(stub.pool.name(for: IPAddress("fd6d:6370:6a01::1")!) == nil)
        #expect(EgressNamePool.contains(IPAddress("fd6d:6370:6a00::909")!))
        #expect(!EgressNamePool.contains(IPAddress("fd6d:6370:6a00::9:9")!))
        #expect(!EgressNamePool.contains(IPAddress("fd6d:6370:6a00:1::1")!))
        #expect(!EgressNamePool.contains(IPAddress("fd00::2")!))
        // An unlisted name is NXDOMAIN for AAAA too.
        #expect(stub.answer(Self.query("example.com", type: 28)).outcome == .refused(name: "example.com"))
    }

    @Test("an unlisted name is NXDOMAIN; AAAA of a listed one is empty without IPv6; garbage is not answered")
    func refusesOthers() throws {
        var stub = DNSStub(policy: Self.policy, ipv6: false)
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

@Suite("Egress refusals: the jail kernel's answers read back, and coalesced")
struct EgressRefusalTests {
    static func ipv4(protocol: UInt8, source: [UInt8], destination: [UInt8], payload: [UInt8]) -> [UInt8] {
        [0x45, 0, 0, UInt8(20 + payload.count), 0, 0, 0x40, 0, 64, `protocol`, 0, 0] + source + destination + payload
    }

    static func ipv6(next: UInt8, source: IPAddress, destination: IPAddress, payload: [UInt8]) -> [UInt8] {
        [0x60, 0, 0, 0, 0, UInt8(payload.count), next, 64] + source.bytes + destination.bytes + payload
    }

    static func tcp(sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32, flags: UInt8) -> [UInt8] {
        [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF),
         UInt8(sequence >> 24), UInt8((sequence >> 16) & 0xFF), UInt8((sequence >> 8) & 0xFF), UInt8(sequence & 0xFF),
         0, 0, 0, 1, 0x50, flags, 0, 0, 0, 0, 0, 0]
    }

    static func udp(sourcePort: UInt16, destinationPort: UInt16) -> [UInt8] {
        [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF), 0, 13, 0, 0]
    }

    @Test("a reset answering a SYN is a TCP attempt to its source; a live connection's reset is not")
    func tcpResets() throws {
        let closed = Self.ipv4(protocol: 6, source: [127, 100, 0, 1], destination: [127, 0, 0, 1],
                               payload: Self.tcp(sourcePort: 8082, destinationPort: 40000, sequence: 0, flags: 0x14))
        #expect(EgressRefusal.parse(closed) == EgressRefusal(
            transport: .tcp, address: IPAddress("127.100.0.1")!, port: 8082, sourceAddress: IPAddress("127.0.0.1")!, sourcePort: 40000))
        let live = Self.ipv4(protocol: 6, source: [127, 100, 0, 1], destination: [127, 0, 0, 1],
                             payload: Self.tcp(sourcePort: 8082, destinationPort: 40000, sequence: 77, flags: 0x14))
        #expect(EgressRefusal.parse(live) == nil)
        let syn = Self.ipv4(protocol: 6, source: [127, 0, 0, 1], destination: [127, 100, 0, 1],
                            payload: Self.tcp(sourcePort: 40000, destinationPort: 8082, sequence: 0, flags: 0x02))
        #expect(EgressRefusal.parse(syn) == nil)
        let v6 = Self.ipv6(next: 6, source: IPAddress("fd6d:6370:6a00::1")!, destination: IPAddress("::1")!,
                           payload: Self.tcp(sourcePort: 9, destinationPort: 40001, sequence: 0, flags: 0x14))
        #expect(EgressRefusal.parse(v6)?.address == IPAddress("fd6d:6370:6a00::1"))
        #expect(EgressRefusal.parse(v6)?.port == 9)
        #expect(EgressRefusal.parse(Array(closed.prefix(30))) == nil)
        #expect(EgressRefusal.parse(Array(v6.prefix(50))) == nil)
        #expect(EgressRefusal.parse([]) == nil)
        #expect(EgressRefusal.parse([0x45]) == nil)
    }

    @Test("a port unreachable quoting a UDP datagram is a UDP attempt to the datagram's destination")
    func unreachables() throws {
        let quoted = Self.ipv4(protocol: 17, source: [127, 0, 0, 1], destination: [198, 51, 100, 2],
                               payload: Self.udp(sourcePort: 5000, destinationPort: 53))
        let icmp = Self.ipv4(protocol: 1, source: [198, 51, 100, 2], destination: [127, 0, 0, 1],
                             payload: [3, 3, 0, 0, 0, 0, 0, 0] + quoted)
        #expect(EgressRefusal.parse(icmp) == EgressRefusal(
            transport: .udp, address: IPAddress("198.51.100.2")!, port: 53, sourceAddress: IPAddress("127.0.0.1")!, sourcePort: 5000))
        let hostUnreachable = Self.ipv4(protocol: 1, source: [198, 51, 100, 2], destination: [127, 0, 0, 1],
                                        payload: [3, 1, 0, 0, 0, 0, 0, 0] + quoted)
        #expect(EgressRefusal.parse(hostUnreachable) == nil)
        let quotedTCP = Self.ipv4(protocol: 6, source: [127, 0, 0, 1], destination: [198, 51, 100, 2],
                                  payload: Self.udp(sourcePort: 5000, destinationPort: 53))
        #expect(EgressRefusal.parse(Self.ipv4(protocol: 1, source: [1, 1, 1, 1], destination: [127, 0, 0, 1],
                                              payload: [3, 3, 0, 0, 0, 0, 0, 0] + quotedTCP)) == nil)
        let quoted6 = Self.ipv6(next: 17, source: IPAddress("::1")!, destination: IPAddress("fd6d:6370:6a00::1")!,
                                payload: Self.udp(sourcePort: 5001, destinationPort: 8081))
        let icmp6 = Self.ipv6(next: 58, source: IPAddress("fd6d:6370:6a00::1")!, destination: IPAddress("::1")!,
                              payload: [1, 4, 0, 0, 0, 0, 0, 0] + quoted6)
        #expect(EgressRefusal.parse(icmp6) == EgressRefusal(
            transport: .udp, address: IPAddress("fd6d:6370:6a00::1")!, port: 8081, sourceAddress: IPAddress("::1")!, sourcePort: 5001))
        #expect(EgressRefusal.parse(Array(icmp6.prefix(80))) == nil)
        let adminProhibited = Self.ipv6(next: 58, source: IPAddress("::1")!, destination: IPAddress("::1")!,
                                        payload: [1, 1, 0, 0, 0, 0, 0, 0] + quoted6)
        #expect(EgressRefusal.parse(adminProhibited) == nil)
    }

    @Test("the first attempt is written at once, repeats once per window with their count, a scan as one * record")
    func coalescing() {
        var coalescer = EgressRefusalCoalescer(window: 1000, maxTracked: 2)
        let a = EgressRefusalCoalescer.Key(transport: .tcp, destination: "svc.test:8082")
        let b = EgressRefusalCoalescer.Key(transport: .udp, destination: "1.2.3.4:53")
        let c = EgressRefusalCoalescer.Key(transport: .tcp, destination: "1.2.3.4:1")
        let d = EgressRefusalCoalescer.Key(transport: .tcp, destination: "1.2.3.4:2")
        #expect(coalescer.note(a, now: 0) == [.init(key: a, attempts: 1)])
        #expect(coalescer.note(a, now: 10).isEmpty)
        #expect(coalescer.note(a, now: 20).isEmpty)
        #expect(coalescer.note(b, now: 30) == [.init(key: b, attempts: 1)])
        #expect(coalescer.note(c, now: 40).isEmpty)  // beyond maxTracked: counted as *
        #expect(coalescer.note(d, now: 50).isEmpty)
        #expect(coalescer.expire(now: 999).isEmpty)
        #expect(!coalescer.isIdle)
        let star = EgressRefusalCoalescer.Key(transport: .tcp, destination: "*")
        #expect(coalescer.expire(now: 1000) == [.init(key: a, attempts: 2)])
        // b's window ends at 1030 with no repeats: nothing more to write for it; the scan's at 1040.
        #expect(coalescer.note(a, now: 1500) == [.init(key: star, attempts: 2), .init(key: a, attempts: 1)])
        #expect(coalescer.note(a, now: 1600).isEmpty)
        #expect(coalescer.expire(now: 1700, everything: true) == [.init(key: a, attempts: 1)])
        #expect(coalescer.isIdle)
    }
}

@Suite("Egress audit records")
struct EgressAuditRecordTests {
    @Test("destination, address, protocol and attempts are written and read back; refused is an outcome")
    func roundTrip() throws {
        var record = AuditRecord(
            time: 1_700_000_000.25, server: "s", profileDigest: "d", session: "x", requestID: nil, method: "egress/connect",
            decision: .deny, decidedBy: "egress", outcome: .refused, errorType: "internal_address", latencyMicros: 12,
            bytesIn: 0, bytesOut: 0)
        record.destination = "private.test:8081"
        record.peerAddress = "10.231.77.2"
        record.transport = "tcp"
        record.attempts = 7  // coalesced refusals
        let text = String(decoding: record.jsonObject, as: UTF8.self)
        #expect(text.contains(#""destination":"private.test:8081","address":"10.231.77.2","protocol":"tcp","attempts":7}"#))
        let again = try AuditRecord(json: try JSONParser.parse(Array(text.utf8)))
        #expect(again == record)
    }
}
