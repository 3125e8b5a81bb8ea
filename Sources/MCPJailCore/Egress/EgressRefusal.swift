/// An attempt of the jail that nothing listened for, as the jail's kernel answered it: a TCP
/// connect to a port no entry lists (the kernel resets it: ECONNREFUSED at once) or a UDP
/// datagram to anything but the DNS stub (the kernel answers ICMP port unreachable:
/// ECONNREFUSED on a connected socket). The refusal watch (a packet socket on the jail's
/// loopback, see `open_refusal_watch` in mcpjail_jail.c) hands mcpjail those answers; this
/// reads them back into the attempt they answer. Pure, so unit-tested with made-up packets.
public struct EgressRefusal: Sendable, Hashable {
    public enum Transport: String, Sendable, Hashable {
        case tcp, udp
    }

    public var transport: Transport
    /// Where the attempt was going.
    public var address: IPAddress
    public var port: UInt16
    /// Where it came from (for UDP: the DNS stub's own late answers are not attempts).
    public var sourceAddress: IPAddress
    public var sourcePort: UInt16

    public init(transport: Transport, address: IPAddress, port: UInt16, sourceAddress: IPAddress, sourcePort: UInt16) {
        self.transport = transport
        self.address = address
        self.port = port
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
    }

    /// The attempt `packet` (an IPv4 or IPv6 packet from its network header on) refuses, or
    /// nil when it is no such answer: a TCP segment with exactly RST|ACK of FIN/SYN/RST/ACK
    /// and sequence number 0 (what the kernel sends for a SYN to a closed port; the resets of
    /// a live connection carry its sequence number), or an ICMP (type 3 code 3) / ICMPv6
    /// (type 1 code 4) port unreachable quoting a UDP datagram.
    public static func parse(_ packet: [UInt8]) -> EgressRefusal? {
        guard let first = packet.first else { return nil }
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, packet.count >= headerLength else { return nil }
            let source = IPAddress(bytes: Array(packet[12..<16]))!, destination = IPAddress(bytes: Array(packet[16..<20]))!
            switch packet[9] {
            case 6: return reset(packet, at: headerLength, from: source, to: destination)
            case 1:
                guard packet.count >= headerLength + 8, packet[headerLength] == 3, packet[headerLength + 1] == 3 else { return nil }
                return quotedDatagram(Array(packet[(headerLength + 8)...]))
            default: return nil
            }
        case 6:
            guard packet.count >= 40 else { return nil }
            let source = IPAddress(bytes: Array(packet[8..<24]))!, destination = IPAddress(bytes: Array(packet[24..<40]))!
            switch packet[6] {
            case 6: return reset(packet, at: 40, from: source, to: destination)
            case 58:
                guard packet.count >= 48, packet[40] == 1, packet[41] == 4 else { return nil }
                return quotedDatagram(Array(packet[48...]))
            default: return nil
            }
        default:
            return nil
        }
    }

    /// A reset from `source` (the closed port) to `destination` (who tried): the attempt
    /// went the other way.
    private static func reset(_ packet: [UInt8], at offset: Int, from source: IPAddress, to destination: IPAddress) -> EgressRefusal? {
        guard packet.count >= offset + 20 else { return nil }
        let flags = packet[offset + 13] & 0x17  // FIN SYN RST ACK
        guard flags == 0x14, packet[(offset + 4)..<(offset + 8)].allSatisfy({ $0 == 0 }) else { return nil }
        return EgressRefusal(
            transport: .tcp, address: source, port: word(packet, offset), sourceAddress: destination, sourcePort: word(packet, offset + 2))
    }

    /// The IP header and first 8 bytes of the datagram an ICMP error quotes, if UDP.
    private static func quotedDatagram(_ quoted: [UInt8]) -> EgressRefusal? {
        guard let first = quoted.first else { return nil }
        let source: IPAddress, destination: IPAddress, offset: Int
        switch first >> 4 {
        case 4:
            offset = Int(first & 0x0F) * 4
            guard offset >= 20, quoted.count >= offset + 4, quoted[9] == 17 else { return nil }
            source = IPAddress(bytes: Array(quoted[12..<16]))!
            destination = IPAddress(bytes: Array(quoted[16..<20]))!
        case 6:
            offset = 40
            guard quoted.count >= offset + 4, quoted[6] == 17 else { return nil }
            source = IPAddress(bytes: Array(quoted[8..<24]))!
            destination = IPAddress(bytes: Array(quoted[24..<40]))!
        default:
            return nil
        }
        return EgressRefusal(
            transport: .udp, address: destination, port: word(quoted, offset + 2), sourceAddress: source, sourcePort: word(quoted, offset))
    }

    private static func word(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
}

/// Keeps a flood of refused attempts from flooding the audit log, while every attempt is
/// still counted: the first attempt to a (transport, destination) is recorded at once;
/// repeats within the next `window` are only counted, and written as one record with
/// `attempts` = their number when the window ends. At most `maxTracked` destinations are
/// followed in a window: attempts to further ones (a port scan) are counted per transport
/// and written as one record for destination `*` when that window ends. So the records per
/// window stay below 2 × `maxTracked` + 2 whatever the jail sends; the kernel's socket
/// buffer bounds what is queued before it is read (beyond it, answers are dropped, uncounted).
public struct EgressRefusalCoalescer: Sendable {
    public struct Key: Sendable, Hashable {
        public var transport: EgressRefusal.Transport
        public var destination: String

        public init(transport: EgressRefusal.Transport, destination: String) {
            self.transport = transport
            self.destination = destination
        }
    }

    /// What to write: one record standing for `attempts` refused attempts.
    public struct Summary: Sendable, Equatable {
        public var key: Key
        public var attempts: Int
    }

    public let window: UInt64
    public let maxTracked: Int
    /// Per destination: when its window began and how many repeats it has not yet written.
    private var tracked: [Key: (start: UInt64, repeats: Int)] = [:]
    private var overflow: [EgressRefusal.Transport: (start: UInt64, count: Int)] = [:]

    public init(window: UInt64 = 1_000_000_000, maxTracked: Int = 64) {
        self.window = window
        self.maxTracked = maxTracked
    }

    /// Whether nothing is waiting to be written.
    public var isIdle: Bool { tracked.isEmpty && overflow.isEmpty }

    /// One refused attempt at `now` (nanoseconds, monotonic): what to write at once (the
    /// windows that ended before it, then the attempt itself when it opens a window).
    public mutating func note(_ key: Key, now: UInt64) -> [Summary] {
        var out = expire(now: now)
        if var entry = tracked[key] {
            entry.repeats += 1
            tracked[key] = entry
        } else if tracked.count < maxTracked {
            tracked[key] = (now, 0)
            out.append(Summary(key: key, attempts: 1))
        } else {
            let entry = overflow[key.transport] ?? (start: now, count: 0)
            overflow[key.transport] = (entry.start, entry.count + 1)
        }
        return out
    }

    /// The summaries of the windows that ended by `now` (all of them with `everything`, at teardown).
    public mutating func expire(now: UInt64, everything: Bool = false) -> [Summary] {
        var out: [Summary] = []
        for (key, entry) in tracked where everything || now >= entry.start + window {
            if entry.repeats > 0 { out.append(Summary(key: key, attempts: entry.repeats)) }
            tracked[key] = nil
        }
        for (transport, entry) in overflow where everything || now >= entry.start + window {
            out.append(Summary(key: Key(transport: transport, destination: "*"), attempts: entry.count))
            overflow[transport] = nil
        }
        return out.sorted { ($0.key.transport.rawValue, $0.key.destination) < ($1.key.transport.rawValue, $1.key.destination) }
    }
}
