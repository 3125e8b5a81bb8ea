import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore

#if canImport(Glibc)
    import Glibc
#endif

/// `mcpjail logs [NAME] [--follow] [--json] [--verify]`: reads the audit log, or checks its chain.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Show the audit log, or verify its hash chain.",
        discussion: """
            Every request that reaches the relay's policy pipeline (at least every tools/call) \
            leaves one record in the audit log: time, server, method, tool, the decision, the \
            outcome and the latency. Every connection a jailed server opens through the \
            egress proxy is a record too (method egress/connect or egress/http-proxy, the \
            destination in the TOOL column, bytes each way, its duration), and so is every \
            name lookup the DNS stub refused (egress/dns), and every TCP connect or UDP \
            datagram the jail's kernel refused because nothing listens for it (egress/connect, \
            repeats within a second coalesced into one record with "attempts"); the egress \
            denials are counted at the end, each attempt once. The log is $MCPJAIL_STATE_DIR/audit.jsonl, else \
            $XDG_STATE_HOME/mcpjail/audit.jsonl (~/.local/state/mcpjail/audit.jsonl), or \
            /var/lib/mcpjail/audit.jsonl for root.

            Each record carries the hash of the one before it. --verify checks the whole chain \
            (every server's records) and names the first line that was edited, removed, \
            inserted or reordered; it exits 1 if the chain is broken. A line cut short by a \
            crash is reported as torn and does not break the chain. Removing the last records \
            cannot be detected from the file alone: keep the last hash (--verify --json) \
            elsewhere to detect that.

            --follow prints the last 10 records, then new ones as they are written, until \
            interrupted.

            Examples:
              mcpjail logs                   # every record, one line each
              mcpjail logs time              # only the records of server 'time'
              mcpjail logs time --follow     # like tail -f
              mcpjail logs --json | jq .     # the raw JSON lines
              mcpjail logs --verify          # check the hash chain (exit 1 if broken)
            """
    )

    @Argument(help: "Show only the records of this server (a profile name).")
    var name: String?

    @Flag(name: [.customShort("f"), .long], help: "Keep printing records as they are appended.")
    var follow = false

    @Flag(help: "Print the records as the raw JSON lines of the log (with --verify: the result as JSON).")
    var json = false

    @Flag(help: "Check the hash chain instead of printing records.")
    var verify = false

    func validate() throws {
        if let name, !ProfileName.isValid(name) {
            throw ValidationError(
                "invalid server name '\(Self.printable(name, limit: 80))': use 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)")
        }
        if verify && follow { throw ValidationError("--verify and --follow cannot be combined") }
    }

    func run() async throws {
        let stdout = OutputStream(fd: STDOUT_FILENO)
        let stderr = OutputStream(fd: STDERR_FILENO)
        let code = try await execute(
            environment: ProcessInfo.processInfo.environment, isRoot: geteuid() == 0,
            output: { stdout.write($0, flush: follow) }, errors: { stderr.write($0, flush: true) })
        stdout.flush()
        if code != 0 { throw ExitCode(code) }
    }

    /// The command's work, with its environment and output injected (tests call this).
    /// `output` and `errors` receive whole lines without the newline. Returns the exit code.
    func execute(
        environment: [String: String], isRoot: Bool,
        output: (String) -> Void, errors: (String) -> Void,
        stopFollowing: @Sendable () -> Bool = { false }
    ) async throws -> Int32 {
        let path = StateDirectory.resolve(environment: environment, isRoot: isRoot).auditLog
        do {
            if verify { return try verifyLog(path: path, output: output) }
            try await show(path: path, output: output, errors: errors, stopFollowing: stopFollowing)
            return 0
        } catch let error as MCPJailError {
            errors(error.description)
            return 1
        }
    }

    // MARK: - --verify

    private func verifyLog(path: String, output: (String) -> Void) throws -> Int32 {
        let result = try AuditVerifier.verify(path: path)
        if json {
            var w = JSONObjectWriter()
            w.field("path", path)
            w.field("exists", result.exists)
            w.field("records", result.records)
            w.field("intact", result.chainIntact)
            if let problem = result.firstBreak {
                var p = JSONObjectWriter()
                p.field("line", problem.line)
                p.field("kind", Self.code(problem.kind))
                p.field("description", problem.kind.rawValue)
                w.field("first_break", rawJSON: p.finish())
            }
            w.field("torn_lines", JSONValue.array(result.tornLines.map { .number(JSONNumber($0)) }))
            w.field("last_hash", result.lastHash)
            output(String(decoding: w.finish(), as: UTF8.self))
            return result.chainIntact ? 0 : 1
        }
        guard result.exists else {
            output("no audit log at \(path) (0 records)")
            return 0
        }
        let plural = result.records == 1 ? "record" : "records"
        if let problem = result.firstBreak {
            output("audit log \(path): broken at line \(problem.line): \(problem.kind.rawValue)")
            output("  \(result.records) \(plural) checked")
        } else {
            output("audit log \(path): \(result.records) \(plural), chain intact")
        }
        for line in result.tornLines {
            output("  line \(line): torn line (write interrupted by a crash; that record is lost, the chain around it holds)")
        }
        return result.chainIntact ? 0 : 1
    }

    static func code(_ kind: AuditVerification.Kind) -> String {
        switch kind {
        case .hashMismatch: return "hash_mismatch"
        case .prevMismatch: return "prev_mismatch"
        case .unparseable: return "unparseable"
        case .tornLine: return "torn_line"
        }
    }

    // MARK: - Reading

    private func show(
        path: String, output: (String) -> Void, errors: (String) -> Void, stopFollowing: @Sendable () -> Bool
    ) async throws {
        let reader = AuditReader(path: path)
        let missing = !reader.exists
        if missing {
            let message = follow
                ? "no audit log at \(path) yet; waiting for records"
                : "no audit log at \(path) yet (nothing has been recorded)"
            if json { errors(message) } else { output(message) }
            if !follow { return }
        }
        if !json && (follow || !missing) { output(Self.header) }

        var unreadable = 0
        var shown = 0
        var egressDenials = 0
        func emit(_ item: AuditReader.Item) {
            switch item {
            case .record(let entry):
                shown += 1
                if entry.record.method.hasPrefix("egress/"), entry.record.decision == .deny {
                    egressDenials += max(1, entry.record.attempts ?? 1)  // coalesced repeats count each
                }
                output(json ? entry.text : Self.format(entry.record))
            case .unreadable(let line, _):
                unreadable += 1
                errors("mcpjail: audit log line \(line) is not a readable record (torn or damaged; see mcpjail logs --verify)")
            }
        }

        var position = AuditReader.Position.start
        if follow {
            // Like tail -f: the last 10 records first.
            var last: [AuditReader.Item] = []
            position = try reader.read(server: name) { item in
                last.append(item)
                if last.count > 10 { last.removeFirst() }
            }
            last.forEach(emit)
            try await reader.follow(server: name, from: position, until: stopFollowing, emit)
            return
        }
        try reader.read(server: name, emit)
        if shown == 0 && unreadable == 0 && !json {
            output(name.map { "no records for server '\($0)' in \(path)" } ?? "no records in \(path)")
        }
        if egressDenials > 0 && !json {
            output("\(egressDenials) egress denials (connections and lookups [network] egress refused)")
        }
    }

    static let header = row(
        time: "TIME", server: "SERVER", method: "METHOD", tool: "TOOL", decision: "DECISION", outcome: "OUTCOME",
        latency: "LATENCY")

    /// One aligned line per record.
    static func format(_ r: AuditRecord) -> String {
        var decision = r.decision.rawValue
        if let by = r.decidedBy { decision += "(\(printable(by, limit: 24)))" }
        var outcome = r.outcome.rawValue
        if let code = r.errorCode { outcome += " \(code)" }
        if let type = r.errorType { outcome += " \(printable(type, limit: 32))" }
        let micros = Int64((r.time * 1_000_000).rounded())
        return row(
            time: AuditTime.format(micros: micros, fractionDigits: 3), server: printable(r.server, limit: 64),
            method: printable(r.method, limit: 64), tool: printable(r.tool ?? r.destination ?? "-", limit: 64),
            decision: decision, outcome: outcome, latency: formatLatency(r.latencyMicros))
    }

    private static func row(
        time: String, server: String, method: String, tool: String, decision: String, outcome: String,
        latency: String
    ) -> String {
        pad(time, 24) + " " + pad(server, 16) + " " + pad(method, 16) + " " + pad(tool, 24) + " "
            + pad(decision, 18) + " " + pad(outcome, 28) + " " + padLeft(latency, 9)
    }

    static func formatLatency(_ micros: Int64) -> String {
        if micros < 1000 { return "\(micros)µs" }
        if micros < 1_000_000 { return fixed(Double(micros) / 1000, micros < 10_000 ? 2 : 1) + "ms" }
        return fixed(Double(micros) / 1_000_000, 2) + "s"
    }

    private static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let whole = scaled / Int64(scale)
        let fraction = String(scaled % Int64(scale))
        return "\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    private static func pad(_ s: String, _ width: Int) -> String {
        let n = s.count
        return n >= width ? s : s + String(repeating: " ", count: width - n)
    }

    private static func padLeft(_ s: String, _ width: Int) -> String {
        let n = s.count
        return n >= width ? s : String(repeating: " ", count: width - n) + s
    }

    /// Text from the log made safe for a terminal: control characters (which could forge
    /// lines or send escape sequences) become `?`, and long values are cut.
    static func printable(_ s: String, limit: Int) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        for scalar in s.unicodeScalars {
            if count == limit {
                out.append("…")
                break
            }
            out.append(scalar.properties.generalCategory == .control ? "?" : scalar)
            count += 1
        }
        return String(out)
    }
}

/// Line output to a file descriptor, buffered unless asked to flush.
private final class OutputStream {
    let fd: Int32
    var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    func write(_ line: String, flush: Bool) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if flush || buffer.count >= 64 * 1024 { self.flush() }
    }

    func flush() {
        buffer.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return  // stdout closed (a pipe to `head`): nothing more to do
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
