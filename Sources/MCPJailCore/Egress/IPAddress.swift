/// An IPv4 or IPv6 address as its network-order bytes (4 or 16). Parsing and the address
/// classes the egress proxy refuses live here, free of Glibc, so they are unit-tested.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), network order.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses dotted-quad IPv4 (`10.0.0.1`, no leading zeros) or IPv6 text (`::1`,
    /// `fd00:ec2::254`, `::ffff:1.2.3.4`), without brackets or a zone.
    public init?(_ text: String) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let value = UInt8(part)
            else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowIPv4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// Dotted quad, or RFC 5952 IPv6 text (lowercase, longest zero run as `::`).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let words = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var bestStart = -1, bestLength = 0, start = -1
        for i in 0...8 {
            if i < 8, words[i] == 0 {
                if start < 0 { start = i }
            } else if start >= 0 {
                if i - start > bestLength, i - start >= 2 { (bestStart, bestLength) = (start, i - start) }
                start = -1
            }
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(words[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`), if it is one.
    public var mappedIPv4: IPAddress? {
        guard !isIPv4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// Where an allowed *name* must not lead (DNS rebinding): loopback, unspecified,
    /// private (RFC 1918, CGNAT, IPv6 ULA), link-local, multicast, broadcast, reserved,
    /// and the cloud metadata addresses (169.254.169.254, fd00:ec2::254). Only a profile
    /// entry naming such an address literally reaches it.
    public var isInternal: Bool {
        if let mapped = mappedIPv4 { return mapped.isInternal }
        let b = bytes
        if isIPv4 {
            switch b[0] {
            case 0, 10, 127: return true  // "this network", RFC 1918, loopback
            case 100 where b[1] & 0xC0 == 64: return true  // 100.64.0.0/10 CGNAT
            case 169 where b[1] == 254: return true  // link-local, metadata
            case 172 where b[1] & 0xF0 == 16: return true
            case 192 where b[1] == 168: return true
            case 192 where b[1] == 0 && b[2] == 0: return true  // IETF protocol assignments
            case 198 where b[1] & 0xFE == 18: return true  // benchmarking
            case 224...255: return true  // multicast, reserved, broadcast
            default: return false
            }
        }
        if b[0..<15].allSatisfy({ $0 == 0 }) { return true }  // :: and ::1
        if b[0] & 0xFE == 0xFC { return true }  // fc00::/7 unique local (fd00:ec2::254 too)
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return true }  // fe80::/10 link-local
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return true }  // fec0::/10 site-local (deprecated)
        if b[0] == 0xFF { return true }  // multicast
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B { return true }  // 64:ff9b::/96 NAT64 (may embed anything)
        if b[0] == 0x20 && b[1] == 0x02 { return true }  // 2002::/16 6to4 (embeds IPv4)
        return false
    }

    /// Whether this is a loopback address (127.0.0.0/8, ::1).
    public var isLoopback: Bool {
        if let mapped = mappedIPv4 { return mapped.isLoopback }
        return isIPv4 ? bytes[0] == 127 : bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
    }
}
