import CMCPJailShims
import Glibc
import MCPJailCore

/// The sockets through which a jail reaches the egress proxy, planned from the profile.
///
/// The jail's first process creates them inside its new network namespace before the
/// server exists (`set_up_egress` in mcpjail_jail.c) and hands them to mcpjail over a
/// unix socket with SCM_RIGHTS; the server never holds them, and no process of the
/// server's uid stands between the jail and the host:
/// - the DNS stub's UDP socket on 127.0.0.53:53,
/// - a TCP listener on 0.0.0.0:P and [::]:P for every port P an entry lists (connections
///   to the DNS pool's addresses and to the profile's IP literals land there; the
///   proxy reads the original destination with getsockname),
/// - the HTTP proxy's listener on 127.0.0.1 (``EgressPolicy/httpProxyPort``),
/// - the refusal watch: a packet socket on the jail's loopback that sees the kernel's
///   answers to attempts nothing listens for (``EgressRefusal``).
/// Every address is made local to the jail ("AnyIP" routes on `lo`): a connection to any
/// address on a listed port lands on that port's listener, so the proxy sees, judges and
/// records every destination, IP literals included; any other port, and any UDP but the
/// DNS stub's, is refused at once by the jail's kernel (ECONNREFUSED), and the refusal
/// watch makes that a record too. The namespace has no other interface: nothing leaves it
/// but through mcpjail.
public struct EgressBridge: Sendable {
    public enum Role: Sendable, Equatable {
        case dns
        case transparent
        case httpProxy
        case refusals
    }

    public struct Socket: Sendable, Equatable {
        public var role: Role
        public var address: IPAddress
        public var port: UInt16
    }

    public let policy: EgressPolicy
    public let sockets: [Socket]
    /// Whether the jail gets IPv6 listeners and IPv6 AnyIP (the host can make IPv6 sockets).
    public let ipv6: Bool
    /// mcpjail's end and the jail's end of the hand-off socket.
    public let parentChannel: Int32
    public let jailChannel: Int32

    /// The plan for `policy`, with its hand-off socket; nil for a closed policy (no network).
    public static func make(policy: EgressPolicy) throws(MCPJailError) -> EgressBridge? {
        guard !policy.isClosed else { return nil }
        var sockets = [Socket(role: .dns, address: IPAddress("127.0.0.53")!, port: 53)]
        let ipv6 = hostHasIPv6()
        for port in policy.ports {
            sockets.append(Socket(role: .transparent, address: IPAddress("0.0.0.0")!, port: port))
            if ipv6 { sockets.append(Socket(role: .transparent, address: IPAddress("::")!, port: port)) }
        }
        sockets.append(Socket(role: .httpProxy, address: IPAddress("127.0.0.1")!, port: policy.httpProxyPort))
        sockets.append(Socket(role: .refusals, address: IPAddress("0.0.0.0")!, port: 0))
        guard sockets.count <= Int(MCPJAIL_EGRESS_MAX_SOCKETS) else {
            throw MCPJailError(.invalidProfile, "[network] egress lists too many different ports (at most \(Int(MCPJAIL_EGRESS_MAX_SOCKETS) / 2 - 2))")
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw MCPJailError(.io, "cannot set up the egress bridge: socketpair: \(String(cString: strerror(errno)))")
        }
        return EgressBridge(policy: policy, sockets: sockets, ipv6: ipv6, parentChannel: pair[0], jailChannel: pair[1])
    }

    /// Whether this host can make IPv6 sockets (a kernel booted with ipv6.disable=1 cannot).
    static func hostHasIPv6() -> Bool {
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return false }
        FD.close(fd)
        return true
    }

    /// The C description of the sockets, for the jail's child.
    func cSockets() -> [mcpjail_egress_socket] {
        let stream = Int32(SOCK_STREAM.rawValue), datagram = Int32(SOCK_DGRAM.rawValue)
        return sockets.map { socket in
            var spec = mcpjail_egress_socket()
            spec.family = socket.role == .refusals ? AF_PACKET : socket.address.isIPv4 ? AF_INET : AF_INET6
            spec.type = socket.role == .dns || socket.role == .refusals ? datagram : stream
            spec.port = socket.port
            withUnsafeMutableBytes(of: &spec.address) { $0.copyBytes(from: socket.address.bytes) }
            return spec
        }
    }

    /// After the jail's exec: the sockets, in plan order (the jail sent them before the
    /// server existed, so they are waiting; never blocks). Closes both channel ends.
    public func receive() throws(MCPJailError) -> [(Socket, Int32)] {
        FD.close(jailChannel)
        defer { FD.close(parentChannel) }
        var fds = [Int32](repeating: -1, count: sockets.count)
        let count = mcpjail_receive_fds(parentChannel, &fds, Int32(sockets.count), 0)
        guard count == Int32(sockets.count) else {
            let why = count < 0 ? String(cString: strerror(errno)) : "got \(count) of \(sockets.count) sockets"
            for fd in fds.prefix(max(0, Int(count))) { FD.close(fd) }
            throw MCPJailError(.spawnFailed, "the jail did not hand over its egress sockets: \(why)")
        }
        return Array(zip(sockets, fds))
    }

    /// Closes both channel ends (when the spawn failed).
    public func close() {
        FD.close(jailChannel)
        FD.close(parentChannel)
    }
}
