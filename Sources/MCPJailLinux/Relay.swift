import CMCPJailShims
import FoundationEssentials
import Glibc
import Logging
import MCPJailCore
import Synchronization

/// The inspecting stdio relay between an MCP client and one server.
///
/// Two blocking threads, one per direction, each owning its ``LineReader``: the
/// client-to-server thread scans every line, refuses framing faults (invalid JSON, batches,
/// oversize lines, malformed envelopes) and runs each request through the
/// ``RelayPolicy``'s pipeline; the server-to-client thread drops what is not JSON-RPC,
/// matches responses to requests, filters list results, sanitizes errors, redacts secrets
/// and hands the outcome to the ``AuditWriter``. What needs no change is forwarded as the
/// original bytes. Replies of mcpjail's own and forwarded server output share one lock on
/// the client's stdout so lines never interleave.
///
/// The relay also sends requests of its own to the server: `tools/list` (ids
/// `dev.mcpjail/tools-N`) to learn the argument schemas before the first call and after
/// `notifications/tools/list_changed`, and `notifications/cancelled` for a call that
/// outlived its timeout. Their answers never reach the client.
public final class Relay: @unchecked Sendable {
    // Shared state is behind `pending` and `clientOutput`; each reader is owned by its thread.
    private let context: SessionContext
    private let policy: RelayPolicy
    /// Idempotency for write tools; nil when the profile has none.
    private let writes: WriteGate?
    private let audit: AuditWriter
    private let events: EventPipe
    private let logger: Logger
    private let clientInput: Int32
    private let clientOutput: LockedOutput
    private let serverInput: ServerInput
    private let serverOutput: Int32
    private let pending = Mutex<[RequestID: PendingCall]>([:])
    /// Client thread only: the current line was answered with `.flushFirst`.
    private var awaitingFlush = false
    /// Server thread only: the server has answered a tool call (the session's start-up,
    /// handshake and tool catalog included, is over).
    private var toolCallAnswered = false
    /// Called once, by the thread that carries the server's output, after the first of it
    /// has gone to the client (set before the relay's threads start).
    var afterFirstServerOutput: (@Sendable () -> Void)?
    private let internalRequests = Atomic<Int>(0)
    /// Nonzero once the server is revoked (a ``Revocation``'s raw value): every request is
    /// refused from then on.
    private let revoked = Atomic<UInt8>(0)
    private let profileChangeNoted = Atomic<Bool>(false)

    /// Why a running server stops taking calls for good (`server_revoked`, not retryable).
    public enum Revocation: UInt8, Sendable {
        /// Its profile was removed or renamed.
        case profileRemoved = 1
        /// Its pinned code changed on the host while it ran (``CodeWatch``).
        case pinnedCodeChanged = 2

        var error: SafeError {
            switch self {
            case .profileRemoved:
                SafeError(.serverRevoked, "this server was revoked (its profile was removed); it no longer takes calls", retryable: false)
            case .pinnedCodeChanged:
                SafeError(
                    .serverRevoked, "this server was stopped: its pinned code changed while it ran; it no longer takes calls",
                    retryable: false)
            }
        }

        /// The audit record's `decided_by`.
        var decidedBy: String {
            switch self {
            case .profileRemoved: "revocation"
            case .pinnedCodeChanged: "pins"
            }
        }
    }

    public init(
        context: SessionContext, policy: RelayPolicy, writes: WriteGate?, audit: AuditWriter, events: EventPipe,
        logger: Logger, clientInput: Int32, clientOutput: Int32, serverInput: Int32, serverOutput: Int32
    ) {
        self.context = context
        self.policy = policy
        self.writes = writes
        self.audit = audit
        self.events = events
        self.logger = logger
        self.clientInput = clientInput
        self.clientOutput = LockedOutput(fd: clientOutput)
        self.serverInput = ServerInput(fd: serverInput)
        self.serverOutput = serverOutput
        // A message of tens of kilobytes then crosses each pipe in one write and one read
        // instead of several, each with a wake-up. Best effort: the client's ends may be a
        // terminal or a file.
        for fd in [clientInput, clientOutput, serverInput, serverOutput] { FD.growPipe(fd, to: Self.pipeSize) }
    }

    /// The size the relay gives each pipe it reads or writes (the kernel's default is 64 KiB).
    /// 256 KiB, not more: an ordinary user's pipes beyond `pipe-user-pages-soft` (64 MiB in
    /// all) shrink every new pipe that user makes, so a session takes at most 1 MiB of it.
    static let pipeSize: Int32 = 256 * 1024

    /// A reader of one side, with the profile's message cap and `relay_spin`.
    private func lineReader(_ fd: Int32) -> LineReader {
        let limits = context.profile.limits
        return LineReader(fd: fd, maxLine: limits.maxMessageBytes, spinBudget: limits.relaySpin.wholeNanoseconds)
    }

    // MARK: client → server

    /// Runs until the client closes its side; then closes the server's stdin and posts
    /// ``SessionEvent/clientClosed``.
    public func runClientToServer() {
        let reader = lineReader(clientInput)
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
        if let revocation = Revocation(rawValue: revoked.load(ordering: .acquiring)) {
            refuse(
                PendingCall(id: id, method: method, tool: toolName, arguments: .none, arrived: arrived, time: wallClockSeconds(), bytesIn: line.count + 1),
                id: id, Refusal(revocation.error, decidedBy: revocation.decidedBy, protocolCode: JSONRPCErrorCode.serverUnavailable))
            return .consume
        }
        var loadFailure: String? = nil
        let toolPolicy = toolName.flatMap(policy.profile.policy(forTool:))
        if toolPolicy != nil, policy.catalog.needsLoad {
            // The relay's own tools/list must reach the server after what the client sent
            // before this call, so the reader flushes those lines first and asks again.
            if !awaitingFlush {
                awaitingFlush = true
                return .flushFirst
            }
            loadFailure = loadCatalog(for: request)
        }
        awaitingFlush = false
        var state = CallState(meta: RequestMeta.read(scanned, line: line), now: arrived)
        var call = PendingCall(
            id: id, method: method, tool: toolName, arguments: .none, arrived: arrived,
            time: wallClockSeconds(), bytesIn: line.count + 1)
        if method == "tools/call", let arguments = request.argumentsBytes {
            call.arguments = arguments.count > InspectedRequest.largeArguments
                ? .digest(try? CanonicalDigest.sha256Hex(ofJSON: arguments))
                : .bytes(Array(arguments))
        }
        var refusal: Refusal? = nil
        if let loadFailure {
            refusal = Refusal(SafeError(.serverUnavailable, "cannot check this call: \(loadFailure)", retryable: true), decidedBy: "schema")
        } else {
            // Parsed once, before the checks, when the call needs the value anyway (a write's
            // key, logged arguments): the schema check then validates that value.
            if method == "tools/call", toolPolicy?.write == true || policy.profile.audit.logArguments {
                _ = state.arguments(of: request)
            }
            refusal = policy.pipeline.decide(request, &state)
        }
        if let principal = state.principal {
            call.subject = principal.subject
            if !principal.actors.isEmpty { call.actors = principal.actors }
        }
        if policy.profile.audit.logArguments, method == "tools/call", let arguments = state.arguments(of: request) {
            let redactor = policy.sanitizer.redactor
            call.loggedArguments = redactor.isEmpty ? arguments : arguments.mapStrings(redactor.redact)
        }
        if refusal == nil, let toolName, let toolPolicy, toolPolicy.write {
            let start = writes?.start(
                tool: toolName, policy: toolPolicy, subject: state.subject, arguments: state.arguments(of: request),
                suppliedKey: state.meta.idempotencyKey)
                ?? .refuse(nil, Refusal(SafeError(.internal, "write tools need the idempotency store", retryable: false), decidedBy: WriteGate.checkName))
            switch start {
            case .execute(let write):
                call.write = write
                call.idempotency = "executed"
            case .refuse(let write, let refused):
                call.write = write
                call.idempotency = refused.error.kind.rawValue
                refusal = refused
            case .replay(let write, let stored):
                call.write = write
                answerReplay(call, id: id, stored: stored)
                return .consume
            case .wait(let write):
                call.write = write
                let forwardLine = (state.meta.strippedLine ?? Array(line)) + [UInt8(ascii: "\n")]
                let timeout = policy.timeout(method: method, tool: toolName)
                let waiting = call
                Threads.start("mcpjail-write-wait", background: true) { [self] in
                    waitForSameWrite(waiting, id: id, policy: toolPolicy, timeout: timeout, forwardLine: forwardLine)
                }
                return .consume
            }
        }
        if refusal == nil {
            call.deadline = arrived &+ policy.timeout(method: method, tool: toolName).wholeNanoseconds
            let inserted = pending.withLock { table -> Bool in
                guard table[id] == nil else { return false }
                table[id] = call
                return true
            }
            if !inserted {
                refusal = Refusal(SafeError(.invalidRequest, "id \(id.json) is already in use by a request in flight", retryable: false), decidedBy: "relay", protocolCode: JSONRPCErrorCode.invalidRequest)
            }
        }
        guard let refusal else {
            if let stripped = state.meta.strippedLine { return .replace(stripped) }
            return .forward
        }
        refuse(call, id: id, refusal)
        return .consume
    }

    // MARK: write tools

    private func answerReplay(_ call: PendingCall, id: RequestID, stored: [UInt8]) {
        let replay = WriteGate.replay(id: id, stored: stored)
        sendToClient(replay.line)
        var call = call
        call.idempotency = "replayed"
        audit.enqueue(call.completed(
            outcome: replay.outcome, decision: .allow, decidedBy: WriteGate.checkName, errorCode: replay.errorCode,
            errorType: nil, finished: monotonicNanoseconds(), bytesOut: replay.line.count))
    }

    /// A duplicate of a write still running (here or in another `mcpjail run`): waits for
    /// its result on a thread of its own, so the client's other messages keep flowing.
    private func waitForSameWrite(_ call: PendingCall, id: RequestID, policy toolPolicy: Profile.ToolPolicy, timeout: Duration, forwardLine: [UInt8]) {
        guard let writes, let write = call.write else { return }
        var call = call
        switch writes.wait(for: write, policy: toolPolicy, timeout: timeout) {
        case .replay(_, let stored):
            answerReplay(call, id: id, stored: stored)
        case .execute:
            // The key was forgotten meanwhile: this call is now the first.
            call.idempotency = "executed"
            call.deadline = monotonicNanoseconds() &+ timeout.wholeNanoseconds
            let inserted = pending.withLock { table -> Bool in
                guard table[id] == nil else { return false }
                table[id] = call
                return true
            }
            if inserted {
                forwardLine.withUnsafeBytes { serverInput.write($0) }
            } else {
                writes.abandon(write)
                refuse(call, id: id, Refusal(SafeError(.invalidRequest, "id \(id.json) is already in use by a request in flight", retryable: false), decidedBy: "relay", protocolCode: JSONRPCErrorCode.invalidRequest))
            }
        case .refuse(_, let refused):
            call.idempotency = refused.error.kind.rawValue
            refuse(call, id: id, refused)
        case .wait:
            refuse(call, id: id, Refusal(IdempotencyErrors.conflict, decidedBy: WriteGate.checkName))
        }
    }

    private func refuse(_ call: PendingCall, id: RequestID, _ refusal: Refusal) {
        let reply = Replies.refusal(refusal, id: id, method: call.method)
        sendToClient(reply)
        audit.enqueue(call.completed(
            outcome: refusal.protocolCode == nil ? .toolError : .protocolError, decision: .deny,
            decidedBy: refusal.decidedBy, errorCode: refusal.protocolCode, errorType: refusal.error.kind.rawValue,
            finished: monotonicNanoseconds(), bytesOut: reply.count))
    }

    // MARK: the relay's own tools/list

    /// Loads the tool catalog with the relay's own `tools/list` (all pages) and waits for
    /// it. Runs on the client thread, which holds the call until the schemas are known.
    /// nil when loaded, else why not.
    private func loadCatalog(for request: InspectedRequest) -> String? {
        policy.catalog.beginLoad()
        let meta = Self.forwardableMeta(request)
        sendCatalogRequest(cursor: nil, meta: meta)
        let timeout = policy.timeout(method: "tools/list", tool: nil)
        return policy.catalog.waitForLoad(untilMonotonic: monotonicNanoseconds() + UInt64(timeout.secondsValue * 1e9))
    }

    /// The caller's `_meta` without mcpjail's keys and the progress token, for the
    /// relay's own requests (the 2026-07-28 protocol carries its version there).
    private static func forwardableMeta(_ request: InspectedRequest) -> [UInt8]? {
        guard let member = request.scanned.member("_meta", in: "params"), member.kind == .object,
            case .object(let meta)? = try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: request.line[member.value.start..<member.value.end]))
        else { return nil }
        let kept = meta.members.filter { !$0.key.hasPrefix(RequestMeta.prefix) && $0.key != "progressToken" }
        return JSONWriter.bytes(.object(JSONObject(kept.map { ($0.key, $0.value) })))
    }

    private func sendCatalogRequest(cursor: String?, meta: [UInt8]?) {
        var call = PendingCall(id: nil, method: "tools/list", tool: nil, arguments: .none, arrived: monotonicNanoseconds(), time: wallClockSeconds(), bytesIn: 0)
        call.role = .catalogPage(meta: meta)
        call.deadline = call.arrived &+ policy.timeout(method: "tools/list", tool: nil).wholeNanoseconds
        var id: RequestID
        repeat {
            let number = internalRequests.add(1, ordering: .relaxed).newValue
            let text = "dev.mcpjail/tools-\(number)"
            id = RequestID(string: text)
            call.id = id
        } while !pending.withLock({ table -> Bool in
            guard table[id] == nil else { return false }
            table[id] = call
            return true
        })
        var line = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + Array(id.json.utf8) + Array(#","method":"tools/list","params":{"#.utf8)
        var separator = ""
        if let meta {
            line += Array(#""_meta":"#.utf8) + meta
            separator = ","
        }
        if let cursor { line += Array((separator + #""cursor":"# + JSONWriter.quoted(cursor)).utf8) }
        line += Array("}}\n".utf8)
        line.withUnsafeBytes { serverInput.write($0) }
    }

    /// One page of the relay's own `tools/list`: add it, ask for the next, or finish.
    private func handleCatalogPage(_ line: UnsafeRawBufferPointer, meta: [UInt8]?) {
        guard case .object(let message)? = try? JSONParser.parse(line), case .object(let result)? = message["result"],
            case .array(let tools)? = result["tools"]
        else {
            policy.catalog.failLoad("the server's answer to tools/list was not a tool list")
            return
        }
        policy.catalog.addPage(tools)
        if case .string(let cursor)? = result["nextCursor"], !cursor.isEmpty {
            sendCatalogRequest(cursor: cursor, meta: meta)
        } else {
            policy.catalog.finishLoad()
        }
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

    /// Puts a canned `initialize` answer through the parsing that every answer from the
    /// server goes through, once, on the thread that relays them, before its first wait (the
    /// server is starting then; this thread is off its CPU). The handshake's answer then
    /// finds that code resident, the thread's stack and malloc arena touched and the
    /// runtime's type metadata made: without this it spent ~110 µs more in the relay than
    /// later answers do, on the path to the client's first answer. Pure: nothing is sent,
    /// recorded or remembered.
    static func warmUp() {
        let canned = #"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"#
            + #""serverInfo":{"name":"warm-up","version":"1"},"instructions":"none"}}"#
        var bytes = Array(canned.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            let line = UnsafeRawBufferPointer(buffer)
            guard let scanned = try? JSONScanner.scan(line) else { return }
            let kind = scanned.classify(line)
            let members = [scanned.member("code", in: "error"), scanned.member("error"), scanned.member("isError", in: "result")]
            let result = (try? JSONParser.parse(line))?["result"]
            let serverInfo = result?["serverInfo"] ?? result?["_meta"]?["io.modelcontextprotocol/serverInfo"]
            withExtendedLifetime((kind, members, serverInfo, result?["instructions"]?.stringValue)) {}
        }
    }

    /// Runs until the server's stdout closes; then posts ``SessionEvent/serverOutputClosed``.
    public func runServerToClient() {
        Self.warmUp()
        var startupReleased = false
        let reader = lineReader(serverOutput)
        var answered: [AuditEntry] = []
        defer { events.post(.serverOutputClosed) }
        do {
            var more = true
            while more {
                more = try reader.readAndProcess(
                    onLine: { line in self.handleServerLine(line, answered: &answered) },
                    onOversize: { size, prefix in self.dropOversizeFromServer(size, prefix: prefix, answered: &answered) },
                    flush: { (bytes) throws(SystemCallError) in self.sendToClient(bytes) })
                if let first = afterFirstServerOutput {
                    afterFirstServerOutput = nil
                    first()
                }
                // After the responses are on their way, off the latency path: digest the
                // arguments here, spread over the calls while the client reads its answer,
                // rather than in bursts on the audit thread.
                for index in answered.indices { answered[index].digestArguments() }
                audit.enqueue(contentsOf: answered)
                answered.removeAll(keepingCapacity: true)
                if !startupReleased, toolCallAnswered {
                    // The first tool call ends the session's start-up (handshake, the tool
                    // catalog loaded and its schemas compiled): that code leaves the
                    // resident set too; what calls need faults back in.
                    startupReleased = true
                    _ = mcpjail_release_startup_pages()
                }
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
        case .notification(let method):
            if method == "notifications/tools/list_changed" { policy.catalog.markStale() }
            return redacted(line, replacing: nil)
        case .request:
            return redacted(line, replacing: nil)
        case .invalid(let reason, _):
            logger.warning("dropped an invalid message from the server: \(reason)")
            return .consume
        case .response(let id):
            guard let call = pending.withLock({ $0.removeValue(forKey: id) }) else {
                logger.warning("dropped a response from the server to unknown request id \(id.json) (timed out, or never sent)")
                return .consume
            }
            if case .catalogPage(let meta) = call.role {
                handleCatalogPage(line, meta: meta)
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
            if outcome == .ok, call.method == "initialize" || call.method == "server/discover" {
                let result = (try? JSONParser.parse(line))?["result"]
                let serverInfo = result?["serverInfo"] ?? result?["_meta"]?["io.modelcontextprotocol/serverInfo"]
                policy.review.observe(instructions: result?["instructions"]?.stringValue, serverInfo: serverInfo)
            }
            var replacement: [UInt8]? = nil
            if outcome != .ok {
                replacement = policy.sanitizer.sanitizeErrorReply(line)
            } else if let filtered = policy.exposure.filterListResponse(method: call.method, line: line) {
                switch filtered {
                case .unchanged: break
                case .filtered(let bytes): replacement = bytes
                case .unreadable:
                    let error = SafeError(.internal, "the server's \(call.method) result could not be checked", retryable: false)
                    let reply = Replies.error(id: id, code: JSONRPCErrorCode.serverUnavailable, error)
                    sendToClient(reply)
                    answered.append(call.completed(
                        outcome: .protocolError, decision: .deny, decidedBy: "exposure", errorCode: JSONRPCErrorCode.serverUnavailable,
                        errorType: error.kind.rawValue, finished: monotonicNanoseconds(), bytesOut: reply.count))
                    return .consume
                }
            }
            let disposition = redacted(line, replacing: replacement)
            if case .consume = disposition {
                // The answer could not be made safe to pass on: the request still gets one.
                if let write = call.write { writes?.abandon(write) }
                let error = SafeError(.internal, "the server's answer held a secret where it could not be redacted", retryable: false)
                let reply = call.method == "tools/call"
                    ? Replies.toolError(id: id, error)
                    : Replies.error(id: id, code: JSONRPCErrorCode.serverUnavailable, error)
                sendToClient(reply)
                answered.append(call.completed(
                    outcome: call.method == "tools/call" ? .toolError : .protocolError, decision: .deny,
                    decidedBy: "redaction", errorCode: nil, errorType: error.kind.rawValue,
                    finished: monotonicNanoseconds(), bytesOut: reply.count))
                return .consume
            }
            var bytesOut = line.count + 1
            if case .replace(let bytes) = disposition { bytesOut = bytes.count + 1 }
            if let write = call.write {
                // Durably stored before the client can see it: what a retry replays is
                // exactly what this answer was.
                switch disposition {
                case .replace(let bytes): bytes.withUnsafeBytes { writes?.finish(write, response: $0) }
                default: writes?.finish(write, response: line)
                }
            }
            let entry = call.completed(
                outcome: outcome, decision: .allow, decidedBy: nil, errorCode: errorCode, errorType: nil,
                finished: monotonicNanoseconds(), bytesOut: bytesOut)
            if call.method == "tools/call" { toolCallAnswered = true }
            if call.write != nil {
                // A write's record goes in before the client can see its answer, so before
                // any retry's `replayed` record (its arguments are digested by the writer).
                audit.enqueue(entry)
            } else {
                answered.append(entry)
            }
            return disposition
        }
    }

    /// The line (or its `replacement`) with every secret value redacted. A line that is
    /// not JSON after redaction (a secret outside a string) is dropped whole.
    private func redacted(_ line: UnsafeRawBufferPointer, replacing replacement: [UInt8]?) -> LineReader.Disposition {
        let redactor = policy.sanitizer.redactor
        guard !redactor.isEmpty else { return replacement.map { .replace($0) } ?? .forward }
        let source = replacement
        let cleaned: [UInt8]? = source.map { bytes in bytes.withUnsafeBytes { redactor.redact($0) } ?? bytes } ?? redactor.redact(line)
        guard let cleaned else { return .forward }
        let valid = cleaned.withUnsafeBytes { (try? JSONScanner.scan($0)) != nil }
        if !valid {
            logger.warning("dropped a server message that held a secret outside a JSON string")
            return .consume
        }
        return .replace(cleaned)
    }

    /// A server line over the limit never reaches the client; the request it answers (if
    /// its first bytes say which) gets a `message_too_large` error instead of waiting forever.
    private func dropOversizeFromServer(_ size: Int, prefix: UnsafeRawBufferPointer, answered: inout [AuditEntry]) {
        let limit = context.profile.limits.maxMessageBytes
        logger.warning("dropped a server message of \(size) bytes (limit \(limit))")
        guard case (let id?, nil) = Self.identify(prefix), let call = pending.withLock({ $0.removeValue(forKey: id) }) else { return }
        if let write = call.write { writes?.abandon(write) }
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

    /// Refuses what comes next and answers what is in flight with `server_revoked` (not
    /// retryable), saying why. The supervisor then tears the jail down. The first reason stays.
    public func revoke(_ why: Revocation) {
        guard revoked.compareExchange(expected: 0, desired: why.rawValue, ordering: .acquiringAndReleasing).exchanged else { return }
        failInFlight(error: why.error, decidedBy: why.decidedBy)
    }

    /// Records, once per session, that the profile file changed while it ran: the session
    /// keeps the policy it started with (the new one applies at the next start).
    public func noteProfileChanged() {
        guard !profileChangeNoted.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let call = PendingCall(id: nil, method: "mcpjail/profile_changed", tool: nil, arguments: .none, arrived: monotonicNanoseconds(), time: wallClockSeconds(), bytesIn: 0)
        audit.enqueue(call.completed(
            outcome: .ok, decision: .allow, decidedBy: "session: keeps the policy it started with", errorCode: nil, errorType: nil,
            finished: call.arrived, bytesOut: 0))
        logger.notice("profile \(context.profile.path) changed; this session keeps the policy it started with")
    }

    /// Answers every request still waiting for the server and audits it as `no_response`:
    /// `server_unavailable` (retryable) when the server exited, `limit_exceeded` (not
    /// retryable, naming the limit) when a resource limit ended it. Called once it is gone.
    public func failInFlight(limit: String? = nil) {
        let error =
            limit.map { SafeError(.limitExceeded, "the server was stopped: its \($0) limit was reached", retryable: false) }
            ?? SafeError(.serverUnavailable, "the server exited before answering", retryable: true)
        failInFlight(error: error, decidedBy: limit.map { "limits.\($0)" })
    }

    private func failInFlight(error: SafeError, decidedBy: String?) {
        let calls = pending.withLock { table -> [PendingCall] in
            defer { table.removeAll() }
            return table.values.sorted { $0.arrived < $1.arrived }
        }
        for call in calls {
            guard let id = call.id else { continue }
            if case .catalogPage = call.role {
                policy.catalog.failLoad("the server exited")
                continue
            }
            if let write = call.write { writes?.abandon(write) }
            let reply = call.method == "tools/call"
                ? Replies.toolError(id: id, error)
                : Replies.error(id: id, code: JSONRPCErrorCode.serverUnavailable, error)
            sendToClient(reply)
            audit.enqueue(call.completed(
                outcome: .noResponse, decision: .allow, decidedBy: decidedBy, errorCode: nil,
                errorType: error.kind.rawValue, finished: monotonicNanoseconds(), bytesOut: reply.count))
        }
    }

    /// Answers every request past its deadline with `timeout` and tells the server with
    /// `notifications/cancelled`; a late answer is then dropped as one to an unknown id.
    /// Returns the next deadline (monotonic nanoseconds), or `.max` when nothing waits.
    public func expireCalls(now: UInt64) -> UInt64 {
        var expired: [PendingCall] = []
        let next = pending.withLock { table -> UInt64 in
            var next = UInt64.max
            for (id, call) in table {
                if call.deadline <= now {
                    expired.append(call)
                    table.removeValue(forKey: id)
                } else {
                    next = min(next, call.deadline)
                }
            }
            return next
        }
        for call in expired.sorted(by: { $0.arrived < $1.arrived }) {
            guard let id = call.id else { continue }
            let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"# + id.json + #","reason":"timeout"}}"# + "\n"
            Array(cancel.utf8).withUnsafeBytes { serverInput.write($0) }
            if case .catalogPage = call.role {
                policy.catalog.failLoad("the server did not answer tools/list in time")
                continue
            }
            if let write = call.write { writes?.abandon(write) }
            let error = SafeError(.timeout, "the server did not answer within the call timeout", retryable: true)
            let reply = call.method == "tools/call"
                ? Replies.toolError(id: id, error)
                : Replies.error(id: id, code: JSONRPCErrorCode.timeout, error)
            sendToClient(reply)
            audit.enqueue(call.completed(
                outcome: .noResponse, decision: .allow, decidedBy: "timeout", errorCode: nil,
                errorType: error.kind.rawValue, finished: now, bytesOut: reply.count))
            logger.notice("request \(id.json) (\(call.method)) timed out; sent notifications/cancelled")
        }
        return next
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

    /// Whose request it is: the client's, or one page of the relay's own `tools/list`.
    enum Role: Sendable {
        case client
        case catalogPage(meta: [UInt8]?)
    }

    var id: RequestID?
    var method: String
    var tool: String?
    var arguments: Arguments
    var arrived: UInt64
    var time: Double
    var bytesIn: Int
    var role = Role.client
    /// Monotonic nanoseconds after which the relay answers `timeout`.
    var deadline = UInt64.max
    var subject: String?
    var actors: [String]?
    var loggedArguments: JSONValue?
    /// A write tool's idempotent identity, and what became of it (for the audit).
    var write: IdempotentCall?
    var idempotency: String?

    /// The audit entry for this call's end. Session fields are filled in by the writer.
    func completed(
        outcome: AuditRecord.Outcome, decision: AuditRecord.Decision, decidedBy: String?, errorCode: Int?,
        errorType: String?, finished: UInt64, bytesOut: Int
    ) -> AuditEntry {
        let record = AuditRecord(
            time: time, server: "", profileDigest: "", session: "", requestID: id?.json, method: method,
            tool: tool, argumentsDigest: nil, decision: decision, decidedBy: decidedBy, outcome: outcome,
            errorCode: errorCode, errorType: errorType,
            latencyMicros: Int64((finished &- arrived) / 1000), bytesIn: bytesIn, bytesOut: bytesOut,
            subject: subject, actors: actors, arguments: loggedArguments, idempotencyKey: write?.key,
            idempotency: idempotency)
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
    /// Whole lines from the client thread, the relay's own requests and cancellations
    /// (from the server thread and the supervisor) must not interleave.
    private let writing = Mutex<Void>(())

    init(fd: Int32) { self.fd = fd }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard !closed.load(ordering: .acquiring) else { return }
        // A failed write means the server is gone; the supervisor sees its exit and
        // answers what is still in flight.
        writing.withLock { _ in try? FD.writeAll(fd, bytes) }
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
