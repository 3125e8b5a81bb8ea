import CMCPJailShims
import Glibc
import MCPJailCore
import Synchronization

/// One connection from the jail through the egress proxy: (for the HTTP proxy) reads the
/// request, resolves and checks the destination, connects out, then splices bytes both
/// ways until either side closes, the session stops, or it is idle too long; then writes
/// its audit record.
final class EgressConnection: @unchecked Sendable {
    private let jailSide: Int32
    private var destination: EgressDestination?
    private let started: UInt64
    private unowned let proxy: EgressProxy
    private let lock = Condition()
    private var remoteSide: Int32 = -1  // guarded by `lock`
    private var closed = false  // guarded by `lock`
    private let activity = Atomic<UInt64>(0)
    private let idled = Atomic<Bool>(false)

    init(jailSide: Int32, destination: EgressDestination?, started: UInt64, proxy: EgressProxy) {
        self.jailSide = jailSide
        self.destination = destination
        self.started = started
        self.proxy = proxy
        activity.store(started, ordering: .relaxed)
    }

    var lastActivity: UInt64 { activity.load(ordering: .relaxed) }

    var idledOut: Bool {
        get { idled.load(ordering: .relaxed) }
        set { idled.store(newValue, ordering: .relaxed) }
    }

    /// Wakes both directions (session stop, idle timeout): their splices return.
    func shutDown() {
        lock.withLock {
            guard !closed else { return }
            _ = shutdown(jailSide, Int32(SHUT_RDWR))
            if remoteSide >= 0 { _ = shutdown(remoteSide, Int32(SHUT_RDWR)) }
        }
    }

    func run() {
        defer { proxy.finished(self) }
        let isProxyRequest = destination == nil
        let method = isProxyRequest ? "egress/http-proxy" : "egress/connect"
        // For the HTTP proxy: what to send the destination first (a forwarded request's head
        // in origin form, or what a CONNECT client sent early), and whether to answer 200.
        var headToSend: [UInt8] = []
        var answerConnect = false
        if isProxyRequest {
            guard let (request, leftover) = readProxyRequest() else { return }
            destination = IPAddress(request.host).map { .address($0, port: request.port) } ?? .name(request.host, port: request.port)
            switch request {
            case .forward(_, _, let head): headToSend = head + leftover
            case .connect:
                headToSend = leftover
                answerConnect = true
            }
            guard let destination, proxy.decide(destination) != nil else {
                refuse(isProxyRequest, status: "403 Forbidden")
                proxy.record(method: method, destination: destination?.description ?? "-", decision: .deny, outcome: .refused,
                             errorType: "not_allowed", started: started)
                return
            }
        }
        guard let destination else { return }

        // Resolve on the host; an allowed name must not lead to an internal address.
        let candidates: [IPAddress]
        switch destination {
        case .address(let address, _): candidates = [address]
        case .name(let name, _): candidates = IPAddress(name).map { [$0] } ?? SocketAddress.resolve(name)
        }
        let allowed: [IPAddress]
        if case .address = destination { allowed = candidates } else { allowed = proxy.connectable(candidates, port: destination.port) }
        guard !allowed.isEmpty else {
            refuse(isProxyRequest, status: candidates.isEmpty ? "502 Bad Gateway" : "403 Forbidden")
            let rebinding = !candidates.isEmpty
            proxy.record(method: method, destination: destination.description, address: candidates.first?.description,
                         decision: rebinding ? .deny : .allow, outcome: .refused,
                         errorType: rebinding ? "internal_address" : "resolve_failed", started: started)
            return
        }
        var remote: Int32 = -1
        var lastError = SystemCallError("connect", errno: EHOSTUNREACH)
        var connectedAddress = allowed[0]
        for address in allowed {
            switch SocketAddress.connect(to: address, port: destination.port, timeoutMilliseconds: EgressProxy.connectTimeoutMilliseconds) {
            case .success(let fd):
                remote = fd
                connectedAddress = address
            case .failure(let error):
                lastError = error
            }
            if remote >= 0 { break }
        }
        guard remote >= 0 else {
            refuse(isProxyRequest, status: "502 Bad Gateway")
            proxy.record(method: method, destination: destination.description, address: allowed.first?.description,
                         decision: .allow, outcome: .refused, errorType: "connect_failed: \(String(cString: strerror(lastError.errno)))",
                         started: started)
            return
        }
        lock.withLock { remoteSide = remote }
        if answerConnect {
            _ = try? FD.writeAll(jailSide, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8))
        }
        if !headToSend.isEmpty { _ = try? FD.writeAll(remote, headToSend) }

        // Both directions: this thread carries remote → jail, another jail → remote.
        let upstream = Atomic<Int>(-1)
        let upstreamDone = Latch()
        let jail = jailSide
        let remoteFD = remote
        Threads.start("mcpjail-egress-u") { [self] in
            upstream.store(pump(from: jail, to: remoteFD), ordering: .relaxed)
            upstreamDone.open()
        }
        let downstream = pump(from: remote, to: jail)
        upstreamDone.wait(seconds: 3600 * 24 * 365)
        lock.withLock {
            closed = true
            FD.close(jailSide)
            FD.close(remote)
            remoteSide = -1
        }
        let sent = upstream.load(ordering: .relaxed) + headToSend.count
        proxy.record(method: method, destination: destination.description, address: connectedAddress.description,
                     decision: .allow, outcome: .ok, errorType: idledOut ? "idle_timeout" : nil, started: started,
                     bytesIn: max(0, sent), bytesOut: downstream)
    }

    /// Copies `from` → `to` with splice(2) through a pipe until end of file or an error,
    /// then passes the end of file on. Returns the bytes carried.
    private func pump(from: Int32, to: Int32) -> Int {
        guard let pipe = try? FD.pipe() else { return 0 }
        defer {
            FD.close(pipe.read)
            FD.close(pipe.write)
        }
        _ = mcpjail_set_pipe_size(pipe.write, 1 << 20)
        var total = 0
        var failed = false
        outer: while true {
            let n = mcpjail_splice(from, pipe.write, 1 << 20, 1)
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if n == 0 { break }
            var left = n
            while left > 0 {
                let m = mcpjail_splice(pipe.read, to, left, 1)
                if m < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    break outer
                }
                left -= m
            }
            total += n
            activity.store(monotonicNanoseconds(), ordering: .relaxed)
        }
        _ = shutdown(to, Int32(SHUT_WR))
        if failed { _ = shutdown(from, Int32(SHUT_RD)) }
        return total
    }

    /// Reads an HTTP proxy request head (10 s, 16 KiB at most); answers 400 and closes on a bad one.
    private func readProxyRequest() -> (HTTPProxyRequest, [UInt8])? {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(jailSide, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while buffer.count <= HTTPProxyRequest.maxHeadBytes {
            let n = chunk.withUnsafeMutableBytes { recv(jailSide, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buffer += chunk[0..<n]
            if let end = HTTPProxyRequest.headEnd(buffer) {
                timeout = timeval(tv_sec: 0, tv_usec: 0)
                _ = setsockopt(jailSide, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                guard let request = HTTPProxyRequest.parse(head: Array(buffer[0..<end])) else { break }
                return (request, Array(buffer[end...]))
            }
        }
        refuse(true, status: "400 Bad Request")
        proxy.record(method: "egress/http-proxy", destination: "-", decision: .deny, outcome: .refused,
                     errorType: "bad_proxy_request", started: started)
        return nil
    }

    /// Ends a connection that gets nowhere: an HTTP status for a proxy client, a reset
    /// (ECONNRESET at once, never a hang) for a transparent one.
    private func refuse(_ isProxyRequest: Bool, status: String) {
        lock.withLock { closed = true }
        if isProxyRequest {
            _ = try? FD.writeAll(jailSide, Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            FD.close(jailSide)
        } else {
            SocketAddress.reset(jailSide)
        }
    }
}
