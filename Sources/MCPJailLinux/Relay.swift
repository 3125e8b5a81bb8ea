import Foundation
import Glibc
import Logging
import MCPJailCore
import Synchronization

/// The inspecting stdio relay between an MCP client and one server.
///
/// Two blocking threads, one per direction, each owning its ``LineReader``: the
/// client-to-server thread scans every line, refuses framing faults (invalid JSON, batches,
/// oversize lines, malformed envelopes) and runs each request through the
/// ``RequestPipeline``; the server-to-client thread drops what is not JSON-RPC, matches
/// responses to requests and hands the outcome to the ``AuditWriter``. Everything
/// forwarded is the original bytes. Replies of mcpjail's own and forwarded server output
/// share one lock on the client's stdout so lines never interleave.
public final class Relay: @unchecked Sendable {
    // Shared state is behind `pending` and `clientOutput`; each reader is owned by its thread.
    private let context: SessionContext
    private let pipeline: RequestPipeline
    private let audit: AuditWriter
    private let events: EventPipe
    private let logger: Logger
    private let clientInput: Int32
    private let clientOutput: LockedOutput
    private let serverInput: ServerInput
    private let serverOutput: Int32
    private let pending = Mutex<[RequestID: PendingCall]>([:])

    /// Arguments larger than this are digested on the relay thread instead of copied for
    /// the audit thread, so a huge argument is never held twice.
    private static let largeArguments = 1 << 20

    public init(
        context: SessionContext, pipeline: RequestPipeline, audit: AuditWriter, events: EventPipe,
        logger: Logger, clientInput: Int32, clientOutput: Int32, serverInput: Int32, serverOutput: Int32
    ) {
        self.context = context
        self.pipeline = pipeline
        self.audit = audit
        self.events = events
        self.logger = logger
        self.clientInput = clientInput
        self.clientOutput = LockedOutput(fd: clientOutput)
        self.serverInput = ServerInput(fd: serverInput)
        self.serverOutput = serverOutput
    }

    // MARK: client → server

    /// Runs until the client closes its side; then closes the server's stdin and posts
    /// ``SessionEvent/clientClosed``.
    public func runClientToServer() {
        let reader = LineReader(fd: clientInput, maxLine: context.profile.limits.maxMessageBytes)
        defer {
            serverInput.close()
            events.post(.clientClosed)
        }
        do {
            while try reader.readAndProcess(
                onLine: { line in self.handleClientLine(line) },
                onOversize: { size, prefix in self.refuseOversize(size, prefix: prefix) },
                flush: { (bytes) throws(SystemCallError) in self.serverInput.write(bytes) })
            {}
        } catch {
            logger.error("reading from the client failed: \(error)")
        }
    }

    private func handleClientLine(_ line: UnsafeRawBufferPointer) -> LineReader.Disposition {
        let arrived = monotonicNanoseconds()
        if Self.isBlank(line) { return .consume }
        let scanned: ScannedMessage
        do {
            scanned = try JSONScanner.scan(line)
        } catch {
            refuseFrame(line, code: JSONRPCErrorCode.parseError, SafeError(.parseError, "invalid JSON: \(error.reason) at byte \(error.offset)", retryable: false), id: nil, arrived: arrived)
            return .consume
        }
        guard scanned.kind == .object else {
            if scanned.kind == .array {
                refuseFrame(line, code: JSONRPCErrorCode.invalidRequest, SafeError(.batchRefused, "JSON-RPC batches are not accepted; send one message per line", retryable: false), id: nil, arrived: arrived)
            } else {
                refuseFrame(line, code: JSONRPCErrorCode.invalidRequest, SafeError(.invalidRequest, "a JSON-RPC message must be an object", retryable: false), id: nil, arrived: arrived)
            }
            return .consume
        }
        let kind = scanned.classify(line)
        if let duplicate = scanned.firstDuplicateKey {
            refuseFrame(line, code: JSONRPCErrorCode.invalidRequest, SafeError(.invalidRequest, "duplicate key \"\(duplicate)\"", retryable: false), id: kind.requestID, arrived: arrived)
            return .consume
        }
        switch kind {
        case .notification, .response:
            return .forward
        case .invalid(let reason, let id):
            refuseFrame(line, code: JSONRPCErrorCode.invalidRequest, SafeError(.invalidRequest, reason, retryable: false), id: id, arrived: arrived)
            return .consume
        case .request(let method, let id):
            return handleRequest(line, scanned: scanned, method: method, id: id, arrived: arrived)
        }
    }

    private func handleRequest(
        _ line: UnsafeRawBufferPointer, scanned: ScannedMessage, method: String, id: RequestID, arrived: UInt64
    ) -> LineReader.Disposition {
        let toolName = method == "tools/call" ? scanned.member("name", in: "params").flatMap { scanned.string($0, in: line) } : nil
        let request = InspectedRequest(method: method, id: id, toolName: toolName, scanned: scanned, line: line)
        var call = PendingCall(
            id: id, method: method, tool: toolName, arguments: .none, arrived: arrived,
            time: wallClockSeconds(), bytesIn: line.count + 1)
        if method == "tools/call", let arguments = request.argumentsBytes {
            call.arguments = arguments.count > Self.largeArguments
                ? .digest(try? CanonicalDigest.sha256Hex(ofJSON: arguments))
                : .bytes(Array(arguments))
        }
        var refusal = pipeline.decide(request)
        if refusal == nil {
            let inserted = pending.withLock { table -> Bool in
                guard table[id] == nil else { return false }
                table[id] = call
                return true
            }
            if !inserted {
                refusal = Refusal(SafeError(.invalidRequest, "id \(id.json) is already in use by a request in flight", retryable: false), decidedBy: "relay", protocolCode: JSONRPCErrorCode.invalidRequest)
            }
        }
        guard let refusal else { return .forward }
        let reply = Replies.refusal(refusal, id: id, method: method)
        sendToClient(reply)
        audit.enqueue(call.completed(
            outcome: refusal.protocolCode == nil ? .toolError : .protocolError, decision: .deny,
            decidedBy: refusal.decidedBy, errorCode: refusal.protocolCode, errorType: refusal.error.kind.rawValue,
            finished: monotonicNanoseconds(), bytesOut: reply.count))
        return .consume
    }

    /// Answers a line that never reached the pipeline (framing or envelope fault).
    private func refuseFrame(_ line: UnsafeRawBufferPointer, code: Int, _ error: SafeError, id: RequestID?, arrived: UInt64) {
        let reply = Replies.error(id: id, code: code, error)
        sendToClient(reply)
        let call = PendingCall(id: id, method: "-", tool: nil, arguments: .none, arrived: arrived, time: wallClockSeconds(), bytesIn: line.count + 1)
        audit.enqueue(call.completed(
            outcome: .protocolError, decision: .deny, decidedBy: "framing", errorCode: code,
            errorType: error.kind.rawValue, finished: monotonicNanoseconds(), bytesOut: reply.count))
    }

    /// Answers a client line over the limit, with its id when the first bytes name one.
    private func refuseOversize(_ size: Int, prefix: UnsafeRawBufferPointer) {
        let limit = context.profile.limits.maxMessageBytes
        let error = SafeError(.messageTooLarge, "message of \(size) bytes exceeds the limit of \(limit) bytes", retryable: false)
        let (id, method) = Self.identify(prefix)
        let reply = Replies.error(id: id, code: JSONRPCErrorCode.invalidRequest, error)
        sendToClient(reply)
        let call = PendingCall(id: id, method: method ?? "-", tool: nil, arguments: .none, arrived: monotonicNanoseconds(), time: wallClockSeconds(), bytesIn: size + 1)
        audit.enqueue(call.completed(
            outcome: .protocolError, decision: .deny, decidedBy: "framing", errorCode: JSONRPCErrorCode.invalidRequest,
            errorType: error.kind.rawValue, finished: monotonicNanoseconds(), bytesOut: reply.count))
        logger.warning("refused a client message of \(size) bytes (limit \(limit))")
    }

    /// The id and method in the first bytes of a message too long to scan whole.
    private static func identify(_ prefix: UnsafeRawBufferPointer) -> (RequestID?, String?) {
        let start = JSONScanner.scanPrefix(prefix)
        var id: RequestID? = nil
        if let member = start.member("id"), case .valid(let parsed) = RequestID.from(member, in: prefix) { id = parsed }
        return (id, start.member("method").flatMap { start.string($0, in: prefix) })
    }

    // MARK: server → client

    /// Runs until the server's stdout closes; then posts ``SessionEvent/serverOutputClosed``.
    public func runServerToClient() {
        let reader = LineReader(fd: serverOutput, maxLine: context.profile.limits.maxMessageBytes)
        var answered: [AuditEntry] = []
        defer { events.post(.serverOutputClosed) }
        do {
            var more = true
            while more {
                more = try reader.readAndProcess(
                    onLine: { line in self.handleServerLine(line, answered: &answered) },
                    onOversize: { size, prefix in self.dropOversizeFromServer(size, prefix: prefix, answered: &answered) },
                    flush: { (bytes) throws(SystemCallError) in self.sendToClient(bytes) })
                // After the responses are on their way, off the latency path: digest the
                // arguments here, spread over the calls while the client reads its answer,
                // rather than in bursts on the audit thread.
                for index in answered.indices { answered[index].digestArguments() }
                audit.enqueue(contentsOf: answered)
                answered.removeAll(keepingCapacity: true)
            }
        } catch {
            logger.error("reading from the server failed: \(error)")
        }
    }

    private func handleServerLine(_ line: UnsafeRawBufferPointer, answered: inout [AuditEntry]) -> LineReader.Disposition {
        if Self.isBlank(line) { return .consume }
        guard let scanned = try? JSONScanner.scan(line), scanned.kind == .object else {
            logger.warning("dropped \(line.count) bytes of non-JSON-RPC output from the server's stdout")
            return .consume
        }
        switch scanned.classify(line) {
        case .request, .notification:
            return .forward
        case .invalid(let reason, _):
            logger.warning("dropped an invalid message from the server: \(reason)")
            return .consume
        case .response(let id):
            guard let call = pending.withLock({ $0.removeValue(forKey: id) }) else {
                logger.warning("dropped a response from the server to unknown request id \(id.json)")
                return .consume
            }
            var outcome = AuditRecord.Outcome.ok
            var errorCode: Int? = nil
            if let code = scanned.member("code", in: "error") {
                outcome = .protocolError
                errorCode = Int(String(decoding: UnsafeRawBufferPointer(rebasing: line[code.value.start..<code.value.end]), as: UTF8.self))
            } else if scanned.member("error") != nil {
                outcome = .protocolError
            } else if let isError = scanned.member("isError", in: "result"), isError.kind == .bool,
                line[isError.value.start] == UInt8(ascii: "t")
            {
                outcome = .toolError
            }
            answered.append(call.completed(
                outcome: outcome, decision: .allow, decidedBy: nil, errorCode: errorCode, errorType: nil,
                finished: monotonicNanoseconds(), bytesOut: line.count + 1))
            return .forward
        }
    }

    /// A server line over the limit never reaches the client; the request it answers (if
    /// its first bytes say which) gets a `message_too_large` error instead of waiting forever.
    private func dropOversizeFromServer(_ size: Int, prefix: UnsafeRawBufferPointer, answered: inout [AuditEntry]) {
        let limit = context.profile.limits.maxMessageBytes
        logger.warning("dropped a server message of \(size) bytes (limit \(limit))")
        guard case (let id?, nil) = Self.identify(prefix), let call = pending.withLock({ $0.removeValue(forKey: id) }) else { return }
        let error = SafeError(.messageTooLarge, "the server's reply of \(size) bytes exceeds the limit of \(limit) bytes", retryable: false)
        let isToolCall = call.method == "tools/call"
        let reply = isToolCall ? Replies.toolError(id: id, error) : Replies.error(id: id, code: JSONRPCErrorCode.messageTooLarge, error)
        sendToClient(reply)
        answered.append(call.completed(
            outcome: isToolCall ? .toolError : .protocolError, decision: .allow, decidedBy: nil,
            errorCode: isToolCall ? nil : JSONRPCErrorCode.messageTooLarge, errorType: error.kind.rawValue,
            finished: monotonicNanoseconds(), bytesOut: reply.count))
    }

    // MARK: session end

    /// Closes the server's stdin (idempotent; safe while the client thread writes).
    public func closeServerInput() { serverInput.close() }

    /// Answers every request still waiting for the server and audits it as `no_response`:
    /// `server_unavailable` (retryable) when the server exited, `limit_exceeded` (not
    /// retryable, naming the limit) when a resource limit ended it. Called once it is gone.
    public func failInFlight(limit: String? = nil) {
        let calls = pending.withLock { table -> [PendingCall] in
            defer { table.removeAll() }
            return table.values.sorted { $0.arrived < $1.arrived }
        }
        let error =
            limit.map { SafeError(.limitExceeded, "the server was stopped: its \($0) limit was reached", retryable: false) }
            ?? SafeError(.serverUnavailable, "the server exited before answering", retryable: true)
        for call in calls {
            guard let id = call.id else { continue }
            let reply = call.method == "tools/call"
                ? Replies.toolError(id: id, error)
                : Replies.error(id: id, code: JSONRPCErrorCode.serverUnavailable, error)
            sendToClient(reply)
            audit.enqueue(call.completed(
                outcome: .noResponse, decision: .allow, decidedBy: limit.map { "limits.\($0)" }, errorCode: nil,
                errorType: error.kind.rawValue, finished: monotonicNanoseconds(), bytesOut: reply.count))
        }
    }

    // MARK: helpers

    private func sendToClient(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { sendToClient($0) }
    }

    private func sendToClient(_ bytes: UnsafeRawBufferPointer) {
        if !clientOutput.write(bytes) { events.post(.clientClosed) }
    }

    private static func isBlank(_ line: UnsafeRawBufferPointer) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }
}

/// The facts of one `mcpjail run` that every record and reply needs.
public struct SessionContext: Sendable {
    public var profile: Profile
    /// A random id per session, in every audit record.
    public var sessionID: String

    public init(profile: Profile, sessionID: String) {
        self.profile = profile
        self.sessionID = sessionID
    }
}

extension JSONRPCMessageKind {
    /// The id of a request or response, if it could be read.
    var requestID: RequestID? {
        switch self {
        case .request(_, let id), .response(let id): id
        case .invalid(_, let id): id
        case .notification: nil
        }
    }
}

/// A request forwarded to the server (or refused), waiting to become an audit record.
struct PendingCall: Sendable {
    enum Arguments: Sendable {
        case none
        /// A copy, digested later on the audit thread.
        case bytes([UInt8])
        /// Already digested (large arguments), or nil if they were not valid JSON.
        case digest(String?)
    }

    var id: RequestID?
    var method: String
    var tool: String?
    var arguments: Arguments
    var arrived: UInt64
    var time: Double
    var bytesIn: Int

    /// The audit entry for this call's end. Session fields are filled in by the writer.
    func completed(
        outcome: AuditRecord.Outcome, decision: AuditRecord.Decision, decidedBy: String?, errorCode: Int?,
        errorType: String?, finished: UInt64, bytesOut: Int
    ) -> AuditEntry {
        let record = AuditRecord(
            time: time, server: "", profileDigest: "", session: "", requestID: id?.json, method: method,
            tool: tool, argumentsDigest: nil, decision: decision, decidedBy: decidedBy, outcome: outcome,
            errorCode: errorCode, errorType: errorType,
            latencyMicros: Int64((finished &- arrived) / 1000), bytesIn: bytesIn, bytesOut: bytesOut)
        return AuditEntry(record: record, arguments: arguments)
    }
}

/// One fd written whole lines at a time by several threads.
final class LockedOutput: @unchecked Sendable {
    private let fd: Int32
    private let state = Mutex<Bool>(true)  // still writable

    init(fd: Int32) { self.fd = fd }

    /// False once the reader has gone (EPIPE and friends); later writes are dropped.
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        state.withLock { open in
            guard open else { return false }
            do {
                try FD.writeAll(fd, bytes)
                return true
            } catch {
                open = false
                return false
            }
        }
    }
}

/// The server's stdin: written by the client thread, closed by whichever side ends the
/// session first. Closing swaps the fd for /dev/null with dup2, so a write racing the
/// close never lands on a reused fd number.
final class ServerInput: @unchecked Sendable {
    private let fd: Int32
    private let closed = Atomic<Bool>(false)

    init(fd: Int32) { self.fd = fd }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard !closed.load(ordering: .acquiring) else { return }
        // A failed write means the server is gone; the supervisor sees its exit and
        // answers what is still in flight.
        try? FD.writeAll(fd, bytes)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if devNull >= 0 {
            _ = dup2(devNull, fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            FD.close(devNull)
        } else {
            FD.close(fd)
        }
    }
}
