import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailStore

#if canImport(Glibc)
    import Glibc
#endif

/// `mcpjail idempotency list|resolve|forget`: the operator's view of the recorded write calls.
struct Idempotency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idempotency",
        abstract: "Show and settle the recorded write calls that retries replay.",
        discussion: """
            mcpjail records every write tool call before forwarding it, and its result before \
            answering, so a retried call replays the result instead of running twice. The \
            records are in $MCPJAIL_STATE_DIR/idempotency.sqlite, else \
            $XDG_STATE_HOME/mcpjail/idempotency.sqlite (~/.local/state/mcpjail/...), or \
            /var/lib/mcpjail/idempotency.sqlite for root, and expire after 24 hours.

            A call whose server died or timed out mid-call is 'unknown': the write may or may \
            not have happened, so retries get an outcome_unknown error and it never runs again. \
            Check its effect, then either resolve it (retries get the result you give, or an \
            error saying an operator resolved it) or forget it (the next retry runs it again).

            KEY is the 64 hex digits that `mcpjail idempotency list` shows.

            Examples:
              mcpjail idempotency list                # every recorded call
              mcpjail idempotency list --json         # one JSON object per call
              mcpjail idempotency resolve KEY         # retries: "resolved by an operator"
              mcpjail idempotency resolve KEY --result-file result.json
              mcpjail idempotency forget KEY          # the next retry runs it again
            """,
        subcommands: [IdempotencyList.self, IdempotencyResolve.self, IdempotencyForget.self]
    )

    /// The store in the state directory, or nil (with a message) when no database exists yet.
    static func existingStore(
        environment: [String: String], isRoot: Bool
    ) throws(MCPJailError) -> (store: SQLiteIdempotencyStore?, path: String) {
        let path = StateDirectory.resolve(environment: environment, isRoot: isRoot).idempotencyDatabase
        guard FileManager.default.fileExists(atPath: path) else { return (nil, path) }
        return (try SQLiteIdempotencyStore(path: path), path)
    }

    /// A key as `list` prints it: 64 lowercase hex digits.
    static func validateKey(_ key: String) throws {
        guard key.utf8.count == 64, key.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else {
            throw ValidationError(
                "'\(Logs.printable(key, limit: 80))' is not a key: use the 64 hex digits that `mcpjail idempotency list` shows")
        }
    }

    /// Runs `body` and turns an ``MCPJailError`` into its line on `errors` and exit code 1.
    static func reporting(_ errors: (String) -> Void, _ body: () throws -> Int32) throws -> Int32 {
        do {
            return try body()
        } catch let error as MCPJailError {
            errors(error.description)
            return 1
        }
    }
}

/// `mcpjail idempotency list [--json]`.
struct IdempotencyList: IdempotencySubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the recorded write calls that have not expired.",
        discussion: """
            One line per call, oldest first: its key, state (in_flight, completed, unknown), \
            server, tool, subject and when it last changed. A completed call that an operator \
            resolved shows as completed(resolved); an in-flight call whose process is gone shows \
            as in_flight(owner gone), and retries will find its outcome unknown.

            Examples:
              mcpjail idempotency list
              mcpjail idempotency list --json | jq 'select(.state == "unknown")'
            """)

    @Flag(help: "Print one JSON object per call (key, state, server, tool, subject, ...).")
    var json = false

    /// The command's work, with its environment and output injected (tests call this).
    func execute(
        environment: [String: String], isRoot: Bool, now: Double = IdempotencyDefaults.now(),
        output: (String) -> Void, errors: (String) -> Void
    ) throws -> Int32 {
        try Idempotency.reporting(errors) {
            let (store, path) = try Idempotency.existingStore(environment: environment, isRoot: isRoot)
            let records = try store?.list(now: now) ?? []
            if json {
                records.forEach { output(Self.jsonLine($0)) }
                return 0
            }
            guard !records.isEmpty else {
                output(store == nil ? "no idempotency database at \(path) yet (no write calls recorded)"
                    : "no recorded write calls in \(path)")
                return 0
            }
            var rows = [["KEY", "STATE", "SERVER", "TOOL", "SUBJECT", "UPDATED"]]
            for record in records {
                rows.append([
                    record.key, Self.state(record),
                    Logs.printable(record.server, limit: 32), Logs.printable(record.tool, limit: 40),
                    Logs.printable(record.subject, limit: 32), AuditTime.format(micros: Int64((record.updatedAt * 1e6).rounded()), fractionDigits: 3),
                ])
            }
            List.columns(rows).split(separator: "\n").forEach { output(String($0)) }
            let unknown = records.filter { $0.state == .unknown || Self.ownerGone($0) }.count
            if unknown > 0 {
                output("\(unknown) call\(unknown == 1 ? "" : "s") with an unknown outcome: check the effect, then "
                    + "`mcpjail idempotency resolve KEY` or `mcpjail idempotency forget KEY`")
            }
            return 0
        }
    }

    /// The state column: the stored state, with what an operator needs to know about it.
    static func state(_ record: IdempotencyRecord) -> String {
        if record.resolvedByOperator { return record.state.rawValue + "(resolved)" }
        if ownerGone(record) { return record.state.rawValue + "(owner gone)" }
        return record.state.rawValue
    }

    /// In flight, but its process no longer runs: the next begin marks it unknown.
    static func ownerGone(_ record: IdempotencyRecord) -> Bool {
        record.state == .inFlight && !ProcessLiveness().isAlive(record.owner)
    }

    static func jsonLine(_ record: IdempotencyRecord) -> String {
        var w = JSONObjectWriter()
        w.field("key", record.key)
        w.field("state", record.state.rawValue)
        w.field("server", record.server)
        w.field("tool", record.tool)
        w.field("subject", record.subject)
        w.optionalField("supplied_key", record.suppliedKey)
        w.field("owner_pid", Int(record.owner.pid))
        if record.state == .inFlight { w.field("owner_alive", !ownerGone(record)) }
        w.field("created", AuditTime.format(record.createdAt))
        w.field("updated", AuditTime.format(record.updatedAt))
        // A call in flight or of unknown outcome does not expire until it is settled.
        w.optionalField("expires", record.state == .completed ? AuditTime.format(record.expiresAt) : nil)
        w.field("resolved_by_operator", record.resolvedByOperator)
        w.field("result_bytes", record.resultSize)
        return String(decoding: w.finish(), as: UTF8.self)
    }
}

/// `mcpjail idempotency resolve KEY [--result-file F]`.
struct IdempotencyResolve: IdempotencySubcommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Settle a recorded call: retries get the given result instead of running it.",
        discussion: """
            Without --result-file, retries get an error result (isError: true) saying that an \
            operator resolved the outcome. With it, they get the file's JSON object as the \
            tools/call result, e.g. {"content":[{"type":"text","text":"done"}],"isError":false}. \
            Works in any state; a result the server sends later for this call is not stored.

            Examples:
              mcpjail idempotency resolve KEY
              mcpjail idempotency resolve KEY --result-file result.json
            """)

    @Argument(help: "The call's key, as `mcpjail idempotency list` shows it.")
    var key: String

    @Option(name: .customLong("result-file"), help: ArgumentHelp("A file holding the tools/call result object to replay.", valueName: "file"))
    var resultFile: String?

    func validate() throws { try Idempotency.validateKey(key) }

    func execute(
        environment: [String: String], isRoot: Bool, now: Double = IdempotencyDefaults.now(),
        output: (String) -> Void, errors: (String) -> Void
    ) throws -> Int32 {
        try Idempotency.reporting(errors) {
            let result = try resultFile.map(Self.readResult)
            let (store, path) = try Idempotency.existingStore(environment: environment, isRoot: isRoot)
            guard let store, try store.resolve(key: key, result: result, now: now) else {
                errors("mcpjail: no recorded call \(key) in \(path) (expired, forgotten, or never recorded)")
                return 1
            }
            output(result == nil
                ? "resolved \(key): retries get an error result saying an operator resolved it"
                : "resolved \(key): retries get the result in \(resultFile ?? "")")
            return 0
        }
    }

    /// The file's JSON object, compacted to one line (the relay writes results as JSON Lines).
    static func readResult(_ file: String) throws(MCPJailError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw MCPJailError(.invalidArgument, "cannot read result file \(file)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(data))
        } catch {
            throw MCPJailError(.invalidArgument, "result file \(file) is not JSON: \(error)")
        }
        guard case .object = value else {
            throw MCPJailError(
                .invalidArgument, "result file \(file) holds a JSON \(value.typeName), not an object",
                hint: #"a tools/call result looks like {"content":[{"type":"text","text":"done"}],"isError":false}"#)
        }
        return JSONWriter.bytes(value)
    }
}

/// `mcpjail idempotency forget KEY`.
struct IdempotencyForget: IdempotencySubcommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Delete a recorded call: the next call with its key runs again.",
        discussion: """
            Use it for a call whose outcome was unknown once you know the write did not happen. \
            If the call is still running, its result will not be stored.

            Examples:
              mcpjail idempotency forget KEY
            """)

    @Argument(help: "The call's key, as `mcpjail idempotency list` shows it.")
    var key: String

    func validate() throws { try Idempotency.validateKey(key) }

    /// (Forgetting needs no clock; `now` is there for the shared `run`.)
    func execute(
        environment: [String: String], isRoot: Bool, now _: Double = IdempotencyDefaults.now(),
        output: (String) -> Void, errors: (String) -> Void
    ) throws -> Int32 {
        try Idempotency.reporting(errors) {
            let (store, path) = try Idempotency.existingStore(environment: environment, isRoot: isRoot)
            guard let store, try store.forget(key: key) else {
                errors("mcpjail: no recorded call \(key) in \(path)")
                return 1
            }
            output("forgot \(key): the next call with this key runs again")
            return 0
        }
    }
}

/// An `idempotency` subcommand: its work takes the environment and output as arguments
/// (so tests call `execute` directly); `run` supplies the real ones.
protocol IdempotencySubcommand: AsyncParsableCommand {
    func execute(
        environment: [String: String], isRoot: Bool, now: Double, output: (String) -> Void, errors: (String) -> Void
    ) throws -> Int32
}

extension IdempotencySubcommand {
    func run() async throws {
        let code = try execute(
            environment: ProcessInfo.processInfo.environment, isRoot: geteuid() == 0, now: IdempotencyDefaults.now(),
            output: { print($0) }, errors: { writeStandardError($0 + "\n") })
        if code != 0 { throw ExitCode(code) }
    }
}
