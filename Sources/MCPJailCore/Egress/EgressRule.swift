/// One `[network] egress` entry: a destination the jailed server may connect to.
///
/// `host:port` (a DNS name), `*.domain:port` (any subdomain of `domain`, not `domain`
/// itself), `1.2.3.4:port` or `[2001:db8::1]:port` (an address, reached as it is, even
/// when it is loopback or private). Names are compared lowercase, without a final dot.
public struct EgressRule: Sendable, Hashable, CustomStringConvertible {
    public enum Host: Sendable, Hashable {
        /// An exact DNS name, lowercase.
        case name(String)
        /// `*.suffix`: any name ending in `.suffix` (not `suffix` itself), lowercase.
        case wildcard(String)
        /// An IP literal.
        case address(IPAddress)
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// The entry as a profile writes it (lowercase, IPv6 in brackets).
    public var description: String {
        switch host {
        case .name(let name): return "\(name):\(port)"
        case .wildcard(let suffix): return "*.\(suffix):\(port)"
        case .address(let address): return address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
        }
    }

    /// Whether a connection to DNS name `name` (any case, final dot allowed) on `port` is allowed.
    public func matches(name: String, port: UInt16) -> Bool {
        port == self.port && matches(name: name)
    }

    /// Whether `name` is this rule's host, whatever the port (the DNS stub's question).
    public func matches(name: String) -> Bool {
        let name = EgressRule.normalize(name)
        switch host {
        case .name(let own): return name == own
        case .wildcard(let suffix): return name.count > suffix.count + 1 && name.hasSuffix("." + suffix)
        case .address: return false
        }
    }

    /// Whether a connection to `address`:`port` is allowed as an address. `localhost` names
    /// the loopback addresses (127.0.0.1, ::1) themselves: the jail's /etc/hosts resolves it
    /// there, and the host's loopback is what such an entry means.
    public func matches(address: IPAddress, port: UInt16) -> Bool {
        guard port == self.port else { return false }
        let address = address.mappedIPv4 ?? address
        switch host {
        case .address(let own): return own == address
        case .name(let name): return name == "localhost" && Self.localhostAddresses.contains(address)
        case .wildcard: return false
        }
    }

    static let localhostAddresses = [IPAddress("127.0.0.1")!, IPAddress("::1")!]

    static func normalize(_ name: String) -> String {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// Parses one entry; the message says what is wrong and how to write it.
    public static func parse(_ text: String) -> Result<EgressRule, ProfileValueError> {
        let entry = text.trimmingSpaces()
        func fail(_ message: String) -> Result<EgressRule, ProfileValueError> { .failure(ProfileValueError(message)) }
        guard !entry.isEmpty else { return fail("an egress entry cannot be empty: write \"host:port\"") }
        var hostText: Substring
        var portText: Substring?
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else { return fail("'\(text)': an IPv6 address needs a closing ']', like \"[::1]:8080\"") }
            hostText = entry[entry.index(after: entry.startIndex)..<close]
            let rest = entry[entry.index(after: close)...]
            if rest.isEmpty {
                return fail("'\(text)' has no port: write \"\(entry):443\" (or the port the server uses)")
            }
            guard rest.hasPrefix(":") else { return fail("'\(text)': expected ':port' after ']'") }
            portText = rest.dropFirst()
            guard let address = IPAddress(String(hostText)), !address.isIPv4 else {
                return fail("'\(hostText)' is not an IPv6 address")
            }
            guard let port = parsePort(portText!) else { return fail("'\(portText!)' is not a port (1 to 65535)") }
            return .success(EgressRule(host: .address(address), port: port))
        }
        let colons = entry.filter { $0 == ":" }.count
        if colons > 1 {
            return fail("'\(text)': write an IPv6 address in brackets with a port, like \"[\(entry)]:443\"")
        }
        if colons == 0 {
            return fail("'\(text)' has no port: write \"\(entry):443\" (or the port the server uses); a host alone is never opened on every port")
        }
        let colon = entry.lastIndex(of: ":")!
        hostText = entry[..<colon]
        portText = entry[entry.index(after: colon)...]
        guard let port = parsePort(portText!) else {
            return fail("'\(portText!)' in '\(text)' is not a port (1 to 65535)")
        }
        if let v4 = IPAddress.parseIPv4(hostText) {
            return .success(EgressRule(host: .address(IPAddress(bytes: v4)!), port: port))
        }
        var name = normalize(String(hostText))
        var wildcard = false
        if name.hasPrefix("*.") {
            wildcard = true
            name.removeFirst(2)
        }
        if name.contains("*") {
            return fail("'\(text)': a wildcard is only allowed as the whole first label, like \"*.example.com:443\"")
        }
        if let problem = hostNameProblem(name) { return fail("'\(text)': \(problem)") }
        if wildcard, !name.contains(".") {
            return fail("'\(text)': a wildcard needs a domain of at least two labels (\"*.example.com\", not \"*.com\")")
        }
        if name.split(separator: ".").last.map({ $0.allSatisfy(\.isNumber) }) == true {
            return fail("'\(hostText)' is not a valid IPv4 address or host name")
        }
        return .success(EgressRule(host: wildcard ? .wildcard(name) : .name(name), port: port))
    }

    static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(text), (1...65535).contains(value)
        else { return nil }
        return UInt16(value)
    }

    /// Why `name` is not a DNS host name (letters, digits, hyphens; labels of 1 to 63; at most 253).
    static func hostNameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "the host name is empty" }
        guard name.utf8.count <= 253 else { return "the host name is longer than 253 characters" }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else { return "'\(name)' has an empty or over-long label" }
            guard label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }),
                label.first != "-", label.last != "-"
            else { return "'\(name)' is not a valid host name (letters, digits and '-' only; IDNs in their xn-- form)" }
        }
        return nil
    }
}

/// A profile value's problem, as a message (the parser adds file, line and key).
public struct ProfileValueError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}
