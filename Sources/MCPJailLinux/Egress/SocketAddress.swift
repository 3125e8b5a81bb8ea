import Glibc
import MCPJailCore

/// sockaddr_in / sockaddr_in6 ⇄ (``IPAddress``, port), for the egress proxy.
enum SocketAddress {
    /// The local (`getsockname`) or peer address of `fd`.
    static func local(_ fd: Int32) -> (IPAddress, UInt16)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { return nil }
        return decode(storage)
    }

    static func decode(_ storage: sockaddr_storage) -> (IPAddress, UInt16)? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { raw in
                let v4 = raw.load(as: sockaddr_in.self)
                let bytes = withUnsafeBytes(of: v4.sin_addr) { Array($0) }
                return (IPAddress(bytes: bytes)!, UInt16(bigEndian: v4.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw in
                let v6 = raw.load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
                let address = IPAddress(bytes: bytes)!
                return (address.mappedIPv4 ?? address, UInt16(bigEndian: v6.sin6_port))
            }
        default:
            return nil
        }
    }

    /// Calls `body` with a sockaddr for (address, port).
    static func with<R>(_ address: IPAddress, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if address.isIPv4 {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &v4.sin_addr) { $0.copyBytes(from: address.bytes) }
            return withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &v6.sin6_addr) { $0.copyBytes(from: address.bytes) }
        return withUnsafePointer(to: &v6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    /// The host's addresses for `name` (getaddrinfo, TCP), IPv4 first as the resolver orders them.
    static func resolve(_ name: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(name, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var out: [IPAddress] = []
        var entry = list
        while let current = entry {
            if let raw = current.pointee.ai_addr {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(current.pointee.ai_addrlen)))
                }
                if let (address, _) = decode(storage), !out.contains(address) { out.append(address) }
            }
            entry = current.pointee.ai_next
        }
        return out
    }

    /// Closes `fd` with a reset (SO_LINGER 0): the jailed peer sees ECONNRESET at once.
    static func reset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        FD.close(fd)
    }

    /// Connects a new TCP socket to (address, port) within `timeoutMilliseconds`.
    static func connect(to address: IPAddress, port: UInt16, timeoutMilliseconds: Int32) -> Result<Int32, SystemCallError> {
        let fd = socket(address.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemCallError("socket", errno: errno)) }
        let status = with(address, port: port) { Glibc.connect(fd, $0, $1) }
        if status != 0 {
            guard errno == EINPROGRESS else {
                let error = errno
                FD.close(fd)
                return .failure(SystemCallError("connect", errno: error))
            }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat { ready = poll(&entry, 1, timeoutMilliseconds) } while ready < 0 && errno == EINTR
            if ready == 0 {
                FD.close(fd)
                return .failure(SystemCallError("connect", errno: ETIMEDOUT))
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                FD.close(fd)
                return .failure(SystemCallError("connect", errno: error))
            }
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return .success(fd)
    }
}
