import ArgumentParser
import Foundation
import MCPJailCore
import Synchronization
import Testing

@testable import MCPJailCommands

/// A temporary state directory holding an audit log, removed by `cleanup()`.
private struct LogsStateDir {
    let path: String
    var log: String { path + "/audit.jsonl" }
    var environment: [String: String] { ["MCPJAIL_STATE_DIR": path, "HOME": "/nonexistent"] }

    init() throws {
        path = NSTemporaryDirectory() + "mcpjail-logs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

private func record(_ i: Int, server: String = "time", method: String = "tools/call") -> AuditRecord {
    AuditRecord(
        time: 1_795_307_926.123456 + Double(i), server: server, profileDigest: String(repeating: "0f", count: 32),
        session: "sess", requestID: "\(i)", method: method, tool: method == "tools/call" ? "get_current_time" : nil,
        argumentsDigest: nil, decision: i == 2 ? .deny : .allow, decidedBy: i == 2 ? "auth" : nil,
        outcome: i == 2 ? .toolError : .ok, errorType: i == 2 ? "forbidden" : nil,
        latencyMicros: [812, 12_345, 40, 2_500_000][i % 4], bytesIn: 90, bytesOut: 300)
}

/// Runs `mcpjail logs ARGS` against `state`; returns (exit code, stdout lines, stderr lines).
private func runLogs(
    _ arguments: [String], state: LogsStateDir, stop: @escaping @Sendable () -> Bool = { false },
    onOutput: @escaping @Sendable (String) -> Void = { _ in }
) async throws -> (Int32, [String], [String]) {
    let command = try #require(try Logs.parseAsRoot(arguments) as? Logs)
    var out: [String] = []
    var err: [String] = []
    let code = try await command.execute(
        environment: state.environment, isRoot: false,
        output: { out.append($0); onOutput($0) }, errors: { err.append($0) }, stopFollowing: stop)
    return (code, out, err)
}

@Suite("logs command")
struct LogsCommandTests {
    @Test func noLogYet() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let (code, out, _) = try await runLogs([], state: state)
        #expect(code == 0)
        #expect(out == ["no audit log at \(state.log) yet (nothing has been recorded)"])

        let (vcode, vout, _) = try await runLogs(["--verify"], state: state)
        #expect(vcode == 0)
        #expect(vout == ["no audit log at \(state.log) (0 records)"])

        let (jcode, jout, jerr) = try await runLogs(["--json"], state: state)
        #expect(jcode == 0 && jout.isEmpty && jerr.count == 1)
    }

    @Test func humanOutputIsAligned() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<4 { try log.append(record(i, server: i == 1 ? "git" : "time")) }
        let (code, out, err) = try await runLogs([], state: state)
        #expect(code == 0 && err.isEmpty)
        #expect(out.count == 5)
        #expect(out[0].hasPrefix("TIME                     SERVER           METHOD           TOOL"))
        #expect(out[1] == "2026-11-22T00:38:46.123Z time             tools/call       get_current_time         allow              ok                               812µs")
        #expect(out[2].contains(" git ") && out[2].hasSuffix("12.3ms"))
        #expect(out[3].contains("deny(auth)         tool_error forbidden") && out[3].hasSuffix("40µs"))
        #expect(out[4].hasSuffix("2.50s"))
        // Columns line up: every field starts at the header's offsets.
        for column in ["SERVER", "METHOD", "TOOL", "DECISION"] {
            let offset = out[0].range(of: column)!.lowerBound.utf16Offset(in: out[0])
            for line in out[1...] {
                let index = line.index(line.startIndex, offsetBy: offset - 1)
                #expect(line[index] == " ", "\(column) misaligned in \(line)")
            }
        }
    }

    @Test func nameFiltersByServer() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<4 { try log.append(record(i, server: i % 2 == 0 ? "time" : "git")) }
        let (_, out, _) = try await runLogs(["git"], state: state)
        #expect(out.count == 3)
        #expect(out.dropFirst().allSatisfy { $0.contains(" git ") })
        let (_, none, _) = try await runLogs(["other"], state: state)
        #expect(none.last == "no records for server 'other' in \(state.log)")
    }

    @Test func jsonPrintsTheRawLines() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<3 { try log.append(record(i)) }
        let raw = try String(contentsOfFile: state.log, encoding: .utf8).split(separator: "\n").map(String.init)
        let (code, out, _) = try await runLogs(["--json"], state: state)
        #expect(code == 0 && out == raw)
    }

    @Test func verifyIntactAndBroken() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<5 { try log.append(record(i)) }
        let (code, out, _) = try await runLogs(["--verify"], state: state)
        #expect(code == 0)
        #expect(out == ["audit log \(state.log): 5 records, chain intact"])
        // NAME is allowed with --verify (the chain covers every server).
        #expect(try await runLogs(["time", "--verify"], state: state).0 == 0)

        var text = try String(contentsOfFile: state.log, encoding: .utf8)
        text = text.replacingOccurrences(of: #""request_id":"1""#, with: #""request_id":"7""#)
        try text.write(toFile: state.log, atomically: false, encoding: .utf8)
        let (bcode, bout, _) = try await runLogs(["--verify"], state: state)
        #expect(bcode == 1)
        #expect(bout.first == "audit log \(state.log): broken at line 2: hash mismatch (record edited)")

        let (jcode, jout, _) = try await runLogs(["--verify", "--json"], state: state)
        #expect(jcode == 1)
        let result = try JSONParser.parse(jout[0])
        #expect(result["intact"] == false)
        #expect(result["records"] == 5)
        #expect(result["first_break"]?["line"] == 2)
        #expect(result["first_break"]?["kind"] == "hash_mismatch")
    }

    @Test func verifyReportsTornLineWithoutFailing() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<3 { try log.append(record(i)) }
        let handle = try #require(FileHandle(forWritingAtPath: state.log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"hash":"0123"#.utf8))
        try handle.close()
        let (code, out, _) = try await runLogs(["--verify"], state: state)
        #expect(code == 0)
        #expect(out.first == "audit log \(state.log): 3 records, chain intact")
        #expect(out.count == 2 && out[1].contains("line 4: torn line"))

        // A torn fragment in the middle shows as unreadable when reading.
        try log.append(record(3))
        let (rcode, rout, rerr) = try await runLogs([], state: state)
        #expect(rcode == 0 && rout.count == 5)
        #expect(rerr == ["mcpjail: audit log line 4 is not a readable record (torn or damaged; see mcpjail logs --verify)"])
    }

    @Test func controlCharactersAreNotPrinted() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        try log.append(record(0, method: "evil\u{1B}[2J\nfake line"))
        let (_, out, _) = try await runLogs([], state: state)
        #expect(out.count == 2)
        #expect(out[1].contains("evil?[2J?fake line"))
        #expect(!out[1].contains("\u{1B}"))
    }

    @Test func followPrintsNewRecordsUntilStopped() async throws {
        let state = try LogsStateDir()
        defer { state.cleanup() }
        let log = try AuditLog(path: state.log)
        for i in 0..<12 { try log.append(record(i % 4 == 1 ? 0 : i % 4)) }
        let lines = Mutex(0)
        let follower = Task {
            try await runLogs(
                ["time", "--follow", "--json"], state: state, stop: { lines.withLock { $0 } >= 12 },
                onOutput: { _ in lines.withLock { $0 += 1 } })
        }
        // The last 10 existing records first, then new ones.
        for _ in 0..<500 where lines.withLock({ $0 }) < 10 { try await Task.sleep(for: .milliseconds(10)) }
        try log.append(record(5))
        try log.append(record(6, server: "git"))
        try log.append(record(7))
        let (code, out, _) = try await follower.value
        #expect(code == 0)
        #expect(out.count == 12)
        let raw = try String(contentsOfFile: state.log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(out == Array(raw[2..<12]) + [raw[12], raw[14]])
    }

    @Test func rejectsBadArguments() {
        #expect(throws: (any Error).self) { try Logs.parseAsRoot(["../etc"]) }
        #expect(throws: (any Error).self) { try Logs.parseAsRoot([String(repeating: "a", count: 65)]) }
        #expect(throws: (any Error).self) { try Logs.parseAsRoot([".."]) }
        #expect(throws: (any Error).self) { try Logs.parseAsRoot(["--verify", "--follow"]) }
        #expect(Logs.message(for: ValidationError("x")) == "x")
        do {
            _ = try Logs.parseAsRoot(["a/b"])
        } catch {
            #expect(Logs.message(for: error).contains("invalid server name 'a/b'"))
        }
        #expect((try? Logs.parseAsRoot(["time.v2_x-1", "-f", "--json"])) != nil)
    }

    @Test func helpHasExamples() {
        let help = Logs.helpMessage()
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail logs --verify"))
        #expect(help.contains("--follow"))
    }

    @Test func latencyFormat() {
        #expect(Logs.formatLatency(0) == "0µs")
        #expect(Logs.formatLatency(999) == "999µs")
        #expect(Logs.formatLatency(1000) == "1.00ms")
        #expect(Logs.formatLatency(9_999) == "10.00ms")
        #expect(Logs.formatLatency(123_456) == "123.5ms")
        #expect(Logs.formatLatency(61_000_000) == "61.00s")
    }
}
