import CMCPJailShims
import Glibc
import Logging
import MCPJailCore

/// The host half of a jail's network: every connection the jail opens arrives here, is
/// checked against the profile's `[network] egress`, and is carried out by mcpjail itself
/// (name resolved on the host, rebinding targets refused, connect with a timeout, bytes
/// spliced both ways). Nothing else of the jail gets out.
///
/// One thread polls the DNS stub's socket, the listeners and the refusal watch
/// (``EgressBridge``); each allowed connection gets a thread per direction. Every
/// connection, allowed or denied, every attempt the jail's kernel refused because nothing
/// listens for it (TCP to an unlisted port, UDP but DNS; repeats coalesced, see
/// ``EgressRefusalCoalescer``), and every refused lookup is an audit record
/// (`egress/connect`, `egress/dns`).
/// ``stop()`` closes everything and waits for the connection threads: nothing outlives the session.
public final class EgressProxy: @unchecked Sendable {
    private let policy: EgressPolicy
    private let settings: Profile.Network
    private let sockets: [(EgressBridge.Socket, Int32)]
    private let audit: AuditWriter
    private let logger: Logger
    private var stub: DNSStub  // the poll thread's only
    /// When each refused name was last recorded (the poll thread's only): a resolver asks
    /// for A and AAAA at once, and retries; one record per name and second is enough.
    private var refusedLookups: [String: UInt64] = [:]
    /// Refused attempts waiting to be written (the poll thread's only).
    private var refusals = EgressRefusalCoalescer()
    private let wake: (read: Int32, write: Int32)
    private let condition = Condition()
    // Guarded by `condition`.
    private var connections: [ObjectIdentifier: EgressConnection] = [:]
    private var stopping = false
    private var pollThreadDone = false

    static let connectTimeoutMilliseconds: Int32 = 10_000

    public init(bridge: EgressBridge, sockets: [(EgressBridge.Socket, Int32)], settings: Profile.Network, audit: AuditWriter, logger: Logger) throws(MCPJailError) {
        self.policy = bridge.policy
        self.settings = settings
        self.sockets = sockets
        self.audit = audit
        self.logger = logger
        self.stub = DNSStub(policy: bridge.policy, ipv6: bridge.ipv6)
        do {
            wake = try FD.pipe()
        } catch {
            throw MCPJailError(.io, "cannot start the egress proxy: \(error)")
        }
        for (_, fd) in sockets { try? FD.setNonBlocking(fd) }
    }

    public func start() {
        Threads.start("mcpjail-egress") { [self] in
            pollLoop()
            condition.withLock {
                pollThreadDone = true
                condition.broadcast()
            }
        }
    }

    /// Closes the listeners and every open connection, and waits (at most 2 s) until their threads are done.
    public func stop() {
        condition.withLock { stopping = true }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        let deadline = monotonicNanoseconds() + 2_000_000_000
        condition.withLock {
            while !pollThreadDone, monotonicNanoseconds() < deadline { condition.wait(untilMonotonic: deadline) }
            for connection in connections.values { connection.shutDown() }
            while !connections.isEmpty, monotonicNanoseconds() < deadline { condition.wait(untilMonotonic: deadline) }
        }
        if !condition.withLock({ connections.isEmpty }) { logger.error("egress connections did not finish at teardown") }
    }

    // MARK: the poll thread

    private func pollLoop() {
        var entries = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        entries += sockets.map { pollfd(fd: $0.1, events: Int16(POLLIN), revents: 0) }
        defer {
            for (_, fd) in sockets { FD.close(fd) }
            FD.close(wake.read)
            FD.close(wake.write)
        }
        while true {
            let ready = poll(&entries, nfds_t(entries.count), 1000)
            if condition.withLock({ stopping }) {
                // What the jail's kernel refused last is still queued: it is recorded too.
                for (socket, fd) in sockets where socket.role == .refusals { readRefusals(fd) }
                writeRefusals(refusals.expire(now: monotonicNanoseconds(), everything: true))
                return
            }
            sweepIdle()
            if !refusals.isIdle { writeRefusals(refusals.expire(now: monotonicNanoseconds())) }
            guard ready > 0 else { continue }
            for index in 1..<entries.count where entries[index].revents != 0 {
                let (socket, fd) = sockets[index - 1]
                switch socket.role {
                case .dns: answerDNS(fd)
                case .transparent, .httpProxy: acceptAll(fd, role: socket.role)
                case .refusals: readRefusals(fd)
                }
            }
        }
    }

    /// Reads the refusal watch dry: each kernel answer to an attempt nothing listened for
    /// (``EgressRefusal``) is a denial, written through the coalescer.
    private func readRefusals(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: Int(MCPJAIL_REFUSAL_SNAPLEN))
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if got < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: drained
            }
            guard let refusal = EgressRefusal.parse(Array(buffer[0..<got])), !isOwnTraffic(refusal) else { continue }
            let destination: EgressDestination
            if let name = stub.pool.name(for: refusal.address) {
                destination = .name(name, port: refusal.port)
            } else {
                destination = .address(refusal.address, port: refusal.port)
            }
            let key = EgressRefusalCoalescer.Key(transport: refusal.transport, destination: destination.description)
            writeRefusals(refusals.note(key, now: monotonicNanoseconds()))
        }
    }

    /// Whether a refusal answers mcpjail's own sockets rather than an attempt of the jail:
    /// a reset from a port a listener holds (the proxy resetting a connection it refused),
    /// or an unreachable answering the DNS stub's reply to a resolver that already left.
    private func isOwnTraffic(_ refusal: EgressRefusal) -> Bool {
        switch refusal.transport {
        case .tcp:
            return sockets.contains { socket, _ in
                guard socket.role == .transparent || socket.role == .httpProxy, socket.port == refusal.port,
                    socket.address.isIPv4 == refusal.address.isIPv4 else { return false }
                return socket.address == refusal.address || socket.address.bytes.allSatisfy { $0 == 0 }
            }
        case .udp:
            return sockets.contains { socket, _ in
                socket.role == .dns && socket.address == refusal.sourceAddress && socket.port == refusal.sourcePort
            }
        }
    }

    private func writeRefusals(_ summaries: [EgressRefusalCoalescer.Summary]) {
        let now = monotonicNanoseconds()
        for summary in summaries {
            record(method: "egress/connect", destination: summary.key.destination, decision: .deny, outcome: .refused,
                   errorType: "not_allowed", started: now, transport: summary.key.transport.rawValue,
                   attempts: summary.attempts > 1 ? summary.attempts : nil)
        }
    }

    private func answerDNS(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1500)
        while true {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let got = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
                }
            }
            if got < 0 { return }  // EAGAIN: drained
            let (reply, outcome) = stub.answer(Array(buffer[0..<got]))
            if let reply {
                _ = reply.withUnsafeBytes { raw in
                    withUnsafePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, raw.baseAddress, raw.count, 0, $0, length) }
                    }
                }
            }
            if case .refused(let name) = outcome {
                let now = monotonicNanoseconds()
                if let last = refusedLookups[name], now - last < 1_000_000_000 { continue }
                if refusedLookups.count > 4096 { refusedLookups.removeAll() }
                refusedLookups[name] = now
                record(method: "egress/dns", destination: name, decision: .deny, outcome: .refused, errorType: "not_allowed",
                       started: monotonicNanoseconds(), transport: nil)
            }
        }
    }

    private func acceptAll(_ listener: Int32, role: EgressBridge.Role) {
        while true {
            let fd = mcpjail_accept_cloexec(listener)
            if fd < 0 { return }
            let started = monotonicNanoseconds()
            let active = condition.withLock { connections.count }
            if active >= settings.maxConnections {
                SocketAddress.reset(fd)
                record(method: "egress/connect", destination: localDescription(fd), decision: .deny, outcome: .refused,
                       errorType: "max_connections", started: started)
                continue
            }
            if role == .httpProxy {
                begin(EgressConnection(jailSide: fd, destination: nil, started: started, proxy: self))
                continue
            }
            guard let (address, port) = SocketAddress.local(fd) else {
                SocketAddress.reset(fd)
                continue
            }
            let destination: EgressDestination
            if let name = stub.pool.name(for: address) {
                destination = .name(name, port: port)
            } else {
                destination = .address(address, port: port)
            }
            guard policy.rule(for: destination) != nil else {
                SocketAddress.reset(fd)
                record(method: "egress/connect", destination: destination.description, decision: .deny, outcome: .refused,
                       errorType: "not_allowed", started: started)
                continue
            }
            begin(EgressConnection(jailSide: fd, destination: destination, started: started, proxy: self))
        }
    }

    private func localDescription(_ fd: Int32) -> String {
        guard let (address, port) = SocketAddress.local(fd) else { return "?" }
        return EgressDestination.address(address, port: port).description
    }

    private func begin(_ connection: EgressConnection) {
        condition.withLock { connections[ObjectIdentifier(connection)] = connection }
        Threads.start("mcpjail-egress-c") { connection.run() }
    }

    private func sweepIdle() {
        let now = monotonicNanoseconds()
        let (seconds, attoseconds) = settings.idleTimeout.components
        let limit = UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        let idle = condition.withLock { connections.values.filter { now > $0.lastActivity + limit } }
        for connection in idle {
            connection.idledOut = true
            connection.shutDown()
        }
    }

    // MARK: for connections

    func finished(_ connection: EgressConnection) {
        condition.withLock {
            connections[ObjectIdentifier(connection)] = nil
            condition.broadcast()
        }
    }

    func decide(_ destination: EgressDestination) -> EgressRule? { policy.rule(for: destination) }

    func connectable(_ addresses: [IPAddress], port: UInt16) -> [IPAddress] { policy.connectable(addresses, port: port) }

    func record(
        method: String, destination: String, address: String? = nil, decision: AuditRecord.Decision, outcome: AuditRecord.Outcome,
        errorType: String? = nil, started: UInt64, bytesIn: Int = 0, bytesOut: Int = 0, transport: String? = "tcp",
        attempts: Int? = nil
    ) {
        var record = AuditRecord(
            time: wallClockSeconds(), server: "", profileDigest: "", session: "", requestID: nil, method: method,
            decision: decision, decidedBy: decision == .deny ? "egress" : nil, outcome: outcome, errorType: errorType,
            latencyMicros: Int64((monotonicNanoseconds() - started) / 1000), bytesIn: bytesIn, bytesOut: bytesOut)
        record.destination = destination
        record.peerAddress = address
        record.transport = transport
        record.attempts = attempts
        audit.enqueue(AuditEntry(record: record, arguments: .none))
        if decision == .deny { logger.debug("egress denied: \(destination) (\(errorType ?? "-"))") }
    }
}
