/// The jail's resolver, as pure message handling: the DNS stub at 127.0.0.53 in the jail
/// answers a name the profile lists with an address from ``EgressNamePool`` (so that the
/// proxy can map a connection back to the name), and every other name with NXDOMAIN.
/// IPv6 (AAAA) questions for listed names get an empty answer: the pool is IPv4, and
/// programs then use the A record. Never forwards a question anywhere.
public struct DNSStub: Sendable {
    public let policy: EgressPolicy
    public private(set) var pool = EgressNamePool()

    public init(policy: EgressPolicy) {
        self.policy = policy
    }

    /// What the stub did with one query, for the audit log.
    public enum Outcome: Sendable, Equatable {
        case answered(name: String, address: IPAddress?)
        case refused(name: String)
        case malformed
    }

    /// The reply to `query` (nil: not a query worth answering) and what was decided.
    public mutating func answer(_ query: [UInt8]) -> (reply: [UInt8]?, outcome: Outcome) {
        guard query.count >= 12, query.count <= 512 else { return (nil, .malformed) }
        let flags = UInt16(query[2]) << 8 | UInt16(query[3])
        let isResponse = flags & 0x8000 != 0
        let opcode = (flags >> 11) & 0xF
        let questions = UInt16(query[4]) << 8 | UInt16(query[5])
        guard !isResponse else { return (nil, .malformed) }
        guard opcode == 0, questions == 1, let (name, end) = Self.readName(query, at: 12), end + 4 <= query.count else {
            return (Self.reply(to: query, questionEnd: nil, rcode: 1), .malformed)  // FORMERR
        }
        let type = UInt16(query[end]) << 8 | UInt16(query[end + 1])
        let klass = UInt16(query[end + 2]) << 8 | UInt16(query[end + 3])
        let questionEnd = end + 4
        guard policy.allowsLookup(name), klass == 1 else {
            return (Self.reply(to: query, questionEnd: questionEnd, rcode: 3), .refused(name: name))  // NXDOMAIN
        }
        guard type == 1 else {  // A only; AAAA and the rest: no data
            return (Self.reply(to: query, questionEnd: questionEnd, rcode: 0), .answered(name: name, address: nil))
        }
        guard let address = pool.address(for: name) else {
            return (Self.reply(to: query, questionEnd: questionEnd, rcode: 2), .answered(name: name, address: nil))  // SERVFAIL
        }
        var reply = Self.reply(to: query, questionEnd: questionEnd, rcode: 0, answers: 1)
        reply += [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04]  // name ptr, A, IN, TTL 60, 4 bytes
        reply += address.bytes
        return (reply, .answered(name: name, address: address))
    }

    /// A header (id and RD copied, QR, AA, RA set) and the question, when it could be read.
    static func reply(to query: [UInt8], questionEnd: Int?, rcode: UInt8, answers: UInt16 = 0) -> [UInt8] {
        var out = [query[0], query[1], 0x84 | (query[2] & 0x01), 0x80 | rcode]
        out += [0, questionEnd == nil ? 0 : 1, UInt8(answers >> 8), UInt8(answers & 0xFF), 0, 0, 0, 0]
        if let questionEnd { out += query[12..<questionEnd] }
        return out
    }

    /// A question name (no compression in questions), lowercase without the final dot, and
    /// the offset after it.
    static func readName(_ message: [UInt8], at start: Int) -> (String, Int)? {
        var labels: [String] = []
        var at = start
        var total = 0
        while at < message.count {
            let length = Int(message[at])
            if length == 0 {
                guard !labels.isEmpty else { return nil }
                return (labels.joined(separator: "."), at + 1)
            }
            guard length <= 63, at + 1 + length <= message.count else { return nil }
            total += length + 1
            guard total <= 254 else { return nil }
            let bytes = message[(at + 1)...(at + length)]
            guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ".") }) else { return nil }
            labels.append(String(decoding: bytes, as: UTF8.self).lowercased())
            at += 1 + length
        }
        return nil
    }
}

/// The private addresses the DNS stub hands out, one per name: 127.100.0.1 onwards
/// (127.100.0.0/16, local to the jail's loopback). The proxy maps an address back to the
/// name the server looked up.
public struct EgressNamePool: Sendable {
    private var byName: [String: IPAddress] = [:]
    private var byAddress: [IPAddress: String] = [:]

    public init() {}

    public static func contains(_ address: IPAddress) -> Bool {
        address.isIPv4 && address.bytes[0] == 127 && address.bytes[1] == 100
    }

    /// The name's address, assigned on first use; nil when the pool is exhausted.
    public mutating func address(for name: String) -> IPAddress? {
        if let known = byName[name] { return known }
        let index = byName.count + 1
        guard index < 0xFFFF else { return nil }
        let address = IPAddress(bytes: [127, 100, UInt8(index >> 8), UInt8(index & 0xFF)])!
        byName[name] = address
        byAddress[address] = name
        return address
    }

    /// The name the stub answered with `address`, if it did.
    public func name(for address: IPAddress) -> String? { byAddress[address] }
}
