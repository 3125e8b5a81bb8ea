/// The decisions of the egress proxy for one profile: which names the DNS stub answers,
/// which (name, port) and (address, port) pairs get out, and which resolved addresses
/// an allowed name may not lead to. Pure, so every rule is unit-tested without a network.
public struct EgressPolicy: Sendable, Equatable {
    public let rules: [EgressRule]

    public init(rules: [EgressRule]) {
        self.rules = rules
    }

    /// No entries: the jail has its own loopback and nothing else.
    public var isClosed: Bool { rules.isEmpty }

    /// Every port some entry opens (the jail listens on these), ascending.
    public var ports: [UInt16] { Array(Set(rules.map(\.port))).sorted() }

    /// Whether the DNS stub answers `name`: some entry names it, on any port.
    public func allowsLookup(_ name: String) -> Bool {
        rules.contains { $0.matches(name: name) }
    }

    /// The entry that lets a connection to `name`:`port` out, if any.
    public func rule(name: String, port: UInt16) -> EgressRule? {
        rules.first { $0.matches(name: name, port: port) }
    }

    /// The entry that lets a connection to the literal `address`:`port` out, if any.
    public func rule(address: IPAddress, port: UInt16) -> EgressRule? {
        rules.first { $0.matches(address: address, port: port) }
    }

    /// The resolved addresses of an allowed name that the proxy may connect to: the
    /// internal ones (loopback, private, link-local, metadata, ...) are dropped unless an
    /// entry names that very address on this port (DNS rebinding).
    public func connectable(_ addresses: [IPAddress], port: UInt16) -> [IPAddress] {
        addresses.filter { !$0.isInternal || rule(address: $0, port: port) != nil }
    }
}

/// Where a jailed connection was going, as the proxy learns it: a name (through the DNS
/// stub's pool or an HTTP proxy request) or an address.
public enum EgressDestination: Sendable, Hashable, CustomStringConvertible {
    case name(String, port: UInt16)
    case address(IPAddress, port: UInt16)

    public var port: UInt16 {
        switch self {
        case .name(_, let port), .address(_, let port): port
        }
    }

    public var description: String {
        switch self {
        case .name(let name, let port): return "\(name):\(port)"
        case .address(let address, let port): return address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
        }
    }
}

extension EgressPolicy {
    /// The entry that allows `destination`, or nil (denied).
    public func rule(for destination: EgressDestination) -> EgressRule? {
        switch destination {
        case .name(let name, let port):
            // A name that is an address literal (an HTTP proxy request for http://10.0.0.1/)
            // is judged as the address.
            if let address = IPAddress(name) { return rule(address: address, port: port) }
            return rule(name: name, port: port)
        case .address(let address, let port):
            return rule(address: address, port: port)
        }
    }
}

extension EgressPolicy {
    /// The port of the HTTP proxy inside the jail (127.0.0.1): 3128, or the next port no
    /// entry uses.
    public var httpProxyPort: UInt16 {
        var port: UInt16 = 3128
        let used = Set(ports)
        while used.contains(port) { port += 1 }
        return port
    }

    /// The environment a jailed server gets for programs that want a proxy.
    public var proxyEnvironment: [String: String] {
        let proxy = "http://127.0.0.1:\(httpProxyPort)"
        let noProxy = "localhost,127.0.0.1,::1"
        return [
            "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
            "NO_PROXY": noProxy, "no_proxy": noProxy,
        ]
    }
}
