/// The jail's resolver, as pure message handling: the DNS stub at 127.0.0.53 in the jail
/// answers a name the profile lists with an address from ``EgressNamePool`` (so that the
/// proxy can map a connection back to the name), and every other name with NXDOMAIN.
/// A listed name has one address of each family: A questions get its IPv4 pool address,
/// AAAA questions its IPv6 one (when the jail has IPv6; else an empty answer, and programs
/// use the A record). Never forwards a question anywhere.
public struct DNSStub: Sendable {
    public let policy: EgressPolicy
    /// Whether AAAA questions get an address (the jail's IPv6 routes exist).
    public let ipv6: Bool
    public private(set) var pool = EgressNamePool()

    public init(policy: EgressPolicy, ipv6: Bool) {
        self.policy = policy
        self.ipv6 = ipv6
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
        // A, and AAAA when the jail has IPv6; the rest: no data.
        guard type == 1 || (type == 28 && ipv6) else {
            return (Self.reply(to: query, questionEnd: questionEnd, rcode: 0), .answered(name: name, address: nil))
        }
        guard let address = pool.address(for: name, ipv6: type == 28) else {
            return (Self.reply(to: query, questionEnd: questionEnd, rcode: 2), .answered(name: name, address: nil))  // SERVFAIL
        }
        var reply = Self.reply(to: query, questionEnd: questionEnd, rcode: 0, answers: 1)
        // name pointer, type, IN, TTL 60, data length
        reply += [0xC0, 0x0C, 0x00, UInt8(type), 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, UInt8(address.bytes.count)]
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

/// The private addresses the DNS stub hands out, one pair per name: 127.100.0.1 onwards
/// (127.100.0.0/16, local to the jail's loopback) and fd6d:6370:6a00::1 onwards (a ULA
/// prefix, fd6d:6370:6a00::/48, "mcpj"; local to the jail through its IPv6 AnyIP route).
/// The n-th name gets 127.100.x.y and fd6d:6370:6a00::xy with the same n. The proxy maps
/// an address of either family back to the name the server looked up.
public struct EgressNamePool: Sendable {
    private var byName: [String: Int] = [:]
    private var byIndex: [Int: String] = [:]

    public init() {}

    static let ipv6Prefix: [UInt8] = [0xFD, 0x6D, 0x63, 0x70, 0x6A, 0x00]

    public static func contains(_ address: IPAddress) -> Bool { index(of: address) != nil }

    /// The pool index `address` stands for, if it is a pool address.
    static func index(of address: IPAddress) -> Int? {
        let b = address.bytes
        if address.isIPv4 {
            guard b[0] == 127, b[1] == 100 else { return nil }
        } else {
            guard Array(b[0..<6]) == ipv6Prefix, b[6..<14].allSatisfy({ $0 == 0 }) else { return nil }
        }
        let index = Int(b[b.count - 2]) << 8 | Int(b[b.count - 1])
        return index == 0 ? nil : index
    }

    static func address(index: Int, ipv6: Bool) -> IPAddress {
        let (high, low) = (UInt8(index >> 8), UInt8(index & 0xFF))
        if ipv6 { return IPAddress(bytes: ipv6Prefix + [UInt8](repeating: 0, count: 8) + [high, low])! }
        return IPAddress(bytes: [127, 100, high, low])!
    }

    /// The name's IPv4 (or IPv6) address, assigned on first use; nil when the pool is exhausted.
    public mutating func address(for name: String, ipv6: Bool = false) -> IPAddress? {
        if let known = byName[name] { return Self.address(index: known, ipv6: ipv6) }
        let index = byName.count + 1
        guard index < 0xFFFF else { return nil }
        byName[name] = index
        byIndex[index] = name
        return Self.address(index: index, ipv6: ipv6)
    }

    /// The name the stub answered with `address`, if it did.
    public func name(for address: IPAddress) -> String? { Self.index(of: address).flatMap { byIndex[$0] } }
}
