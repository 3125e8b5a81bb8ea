import Foundation
import Synchronization
import Testing

@testable import MCPJailCore

/// A fresh directory under the system temporary directory, removed by `cleanup()`.
struct AuditTempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "mcpjail-audit-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

func auditSampleRecord(_ i: Int, server: String = "time", tool: String? = "get_current_time") -> AuditRecord {
    AuditRecord(
        time: 1_795_307_926.123456 + Double(i), server: server,
        profileDigest: String(repeating: "ab", count: 32), session: "s-\(i % 3)",
        requestID: i % 2 == 0 ? "\(i)" : "\"req-\(i)\"", method: tool == nil ? "tools/list" : "tools/call",
        tool: tool, argumentsDigest: tool == nil ? nil : String(repeating: "cd", count: 32),
        decision: i % 5 == 4 ? .deny : .allow, decidedBy: i % 5 == 4 ? "tool_policy" : nil,
        outcome: i % 5 == 4 ? .toolError : .ok, errorCode: nil, errorType: i % 5 == 4 ? "forbidden" : nil,
        latencyMicros: Int64(800 + i), bytesIn: 100 + i, bytesOut: 200 + i)
}

func auditLines(_ path: String) throws -> [String] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var parts = text.components(separatedBy: "\n")
    if parts.last == "" { parts.removeLast() }
    return parts
}

func auditWriteLines(_ lines: [String], to path: String, finalNewline: Bool = true) throws {
    let text = lines.joined(separator: "\n") + (finalNewline ? "\n" : "")
    try text.write(toFile: path, atomically: false, encoding: .utf8)
}

@Suite("Audit log")
struct AuditLogTests {
    @Test func appendAndVerifyIntact() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/state/nested/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<25 { try log.append(auditSampleRecord(i)) }

        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 25)
        #expect(result.chainIntact)
        #expect(result.firstProblem == nil)
        #expect(result.tornLines.isEmpty)
        let all = try auditLines(path)
        #expect(all.count == 25)
        #expect(result.lastHash == String(all[24].dropFirst(9).prefix(64)))

        // Permissions: the file 0600, the directories it created 0700.
        let fileMode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
        let dirMode = try FileManager.default.attributesOfItem(atPath: dir.path + "/state/nested")[.posixPermissions] as? Int
        #expect(dirMode == 0o700)
    }

    @Test func lineFormat() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        try log.append(auditSampleRecord(0))
        try log.append(auditSampleRecord(1, tool: nil))
        let all = try auditLines(path)
        let first = all[0]
        #expect(first.hasPrefix(#"{"hash":""#))
        let hash = String(first.dropFirst(9).prefix(64))
        let body = String(first.dropFirst(9 + 64 + 2))
        #expect(body.hasPrefix(#""prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2026-11-22T00:38:46.123456Z","server":"time","profile_digest":""#))
        #expect(SHA256Hex.digest(Array(body.utf8)) == hash)
        #expect(first.hasSuffix(#""decision":"allow","outcome":"ok","latency_us":800,"bytes_in":100,"bytes_out":200}"#))
        #expect(first.contains(#""request_id":"0","method":"tools/call","tool":"get_current_time","arguments_digest":""#))
        #expect(!first.contains("decided_by"))
        #expect(!first.contains("error_code"))
        // The second chains to the first; nil fields are omitted.
        #expect(all[1].contains(#""prev":"\#(hash)""#))
        #expect(all[1].contains(#""request_id":"\"req-1\"""#))
        #expect(!all[1].contains(#""tool""#))
        // Every line is strict JSON.
        for line in all { _ = try JSONParser.parse(line) }
    }

    @Test func recordRoundTripsThroughReader() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        var written = (0..<6).map { auditSampleRecord($0) }
        written[2].errorCode = -32602
        written[2].outcome = .protocolError
        written[3].server = "git"
        written[3].method = "tools/\"odd\"\nmethod\u{1}é"
        for r in written { try log.append(r) }
        var read: [AuditEntry] = []
        let end = try AuditReader(path: path).read { item in
            if case .record(let e) = item { read.append(e) } else { Issue.record("unreadable \(item)") }
        }
        #expect(read.map(\.record) == written)
        #expect(read.map(\.line) == Array(1...6))
        #expect(read[0].prev == AuditLine.genesisHash)
        #expect(read[1].prev == read[0].hash)
        #expect(end.line == 6)

        var git: [AuditEntry] = []
        try AuditReader(path: path).read(server: "git") { if case .record(let e) = $0 { git.append(e) } }
        #expect(git.map(\.line) == [4])
    }

    @Test func editedByteIsHashMismatchAtThatLine() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<10 { try log.append(auditSampleRecord(i)) }
        var all = try auditLines(path)
        all[4] = all[4].replacingOccurrences(of: #""bytes_out":204"#, with: #""bytes_out":205"#)
        try auditWriteLines(all, to: path)
        let result = try AuditVerifier.verify(path: path)
        #expect(result.firstBreak == .init(line: 5, kind: .hashMismatch))
        #expect(!result.chainIntact)
        #expect(result.records == 10)
    }

    @Test func editThatBreaksJSONIsStillAnEditNotATornLine() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<6 { try log.append(auditSampleRecord(i)) }
        var all = try auditLines(path)
        all[2] = String(all[2].dropLast())  // remove the closing brace
        try auditWriteLines(all, to: path)
        let result = try AuditVerifier.verify(path: path)
        #expect(result.firstBreak == .init(line: 3, kind: .hashMismatch))
        #expect(result.tornLines.isEmpty)
        #expect(result.records == 6)
    }

    @Test func removedRecordIsPrevMismatch() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<10 { try log.append(auditSampleRecord(i)) }
        var all = try auditLines(path)
        all.remove(at: 3)
        try auditWriteLines(all, to: path)
        let result = try AuditVerifier.verify(path: path)
        #expect(result.firstBreak == .init(line: 4, kind: .prevMismatch))
        #expect(result.records == 9)

        // Removing the first record breaks the chain at the new first line.
        all.remove(at: 0)
        try auditWriteLines(all, to: path)
        #expect(try AuditVerifier.verify(path: path).firstBreak == .init(line: 1, kind: .prevMismatch))
    }

    @Test func swappedRecordsAreDetected() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<10 { try log.append(auditSampleRecord(i)) }
        var all = try auditLines(path)
        all.swapAt(5, 6)
        try auditWriteLines(all, to: path)
        let result = try AuditVerifier.verify(path: path)
        #expect(result.firstBreak == .init(line: 6, kind: .prevMismatch))
    }

    @Test func truncationAtALineBoundaryIsNotDetectable() throws {
        // Documented limitation: the file alone cannot show its last records were removed.
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<5 { try log.append(auditSampleRecord(i)) }
        let full = try AuditVerifier.verify(path: path)
        let all = try auditLines(path)
        try auditWriteLines(Array(all.prefix(3)), to: path)
        let cut = try AuditVerifier.verify(path: path)
        #expect(cut.chainIntact && cut.records == 3)
        #expect(cut.lastHash != full.lastHash)  // what an external copy of lastHash would catch
    }

    @Test func garbageLineIsUnparseable() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<4 { try log.append(auditSampleRecord(i)) }
        var all = try auditLines(path)
        all.insert("hello", at: 2)
        try auditWriteLines(all, to: path)
        #expect(try AuditVerifier.verify(path: path).firstBreak == .init(line: 3, kind: .unparseable))
        all[2] = #"{"valid":"json","but":"not a record"}"#
        try auditWriteLines(all, to: path)
        #expect(try AuditVerifier.verify(path: path).firstBreak == .init(line: 3, kind: .unparseable))
    }

    @Test func tornLastLineThenLaterAppends() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<5 { try log.append(auditSampleRecord(i)) }
        let before = try AuditVerifier.verify(path: path)

        // A crash mid-write: the beginning of a sixth record, no newline.
        let (line, _) = AuditLine.encode(auditSampleRecord(5), prev: before.lastHash)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.prefix(120)))
        try handle.close()

        let torn = try AuditVerifier.verify(path: path)
        #expect(torn.tornLines == [6])
        #expect(torn.chainIntact)
        #expect(torn.firstProblem == .init(line: 6, kind: .tornLine))
        #expect(torn.records == 5)

        // The same instance (its cached size is stale now) and a new one append after it.
        try log.append(auditSampleRecord(6))
        let other = try AuditLog(path: path)
        try other.append(auditSampleRecord(7))
        try log.append(auditSampleRecord(8))

        let after = try AuditVerifier.verify(path: path)
        #expect(after.records == 8)
        #expect(after.chainIntact)
        #expect(after.tornLines == [6])
        let all = try auditLines(path)
        #expect(all.count == 9)
        #expect(all[5].utf8.count == 120)

        // The reader shows the fragment as unreadable and the records around it.
        var items: [AuditReader.Item] = []
        try AuditReader(path: path).read { items.append($0) }
        #expect(items.count == 9)
        if case .unreadable(let n, _) = items[5] { #expect(n == 6) } else { Issue.record("expected unreadable") }
    }

    @Test func tornTailThatIsACompleteRecordIsChainedFrom() throws {
        // A write that lost only its newline: the record is whole, so later ones chain to it.
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<3 { try log.append(auditSampleRecord(i)) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.dropLast().write(to: URL(fileURLWithPath: path))
        try log.append(auditSampleRecord(3))
        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 4)
        #expect(result.chainIntact)
        #expect(result.tornLines.isEmpty)
    }

    @Test func tornLineWithoutAnyValidRecordBeforeIt() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        try #"{"hash":"12"#.write(toFile: path, atomically: false, encoding: .utf8)
        let log = try AuditLog(path: path)
        try log.append(auditSampleRecord(0))
        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 1)
        #expect(result.chainIntact)
        #expect(result.tornLines == [1])
    }

    @Test func manyThreadsAndTwoInstancesKeepOneChain() async throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let a = try AuditLog(path: path)
        let b = try AuditLog(path: path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    let log = t % 2 == 0 ? a : b
                    for i in 0..<50 { try log.append(auditSampleRecord(t * 1000 + i, server: "s\(t)")) }
                }
            }
            try await group.waitForAll()
        }
        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 400)
        #expect(result.chainIntact)
        #expect(result.tornLines.isEmpty)
    }

    @Test func anotherProcessAppendingConcurrently() async throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        try log.append(auditSampleRecord(0))
        // The parent appends on a background task while a child process (an exit test) appends too.
        let parent = Task.detached {
            for i in 1...300 { try log.append(auditSampleRecord(i, server: "parent")) }
        }
        await #expect(processExitsWith: .success) { [path = path as String] in
            let child = try AuditLog(path: path)
            for i in 0..<300 { try child.append(auditSampleRecord(i, server: "child")) }
        }
        try await parent.value
        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 601)
        #expect(result.chainIntact)
        var servers: [String: Int] = [:]
        try AuditReader(path: path).read { if case .record(let e) = $0 { servers[e.record.server, default: 0] += 1 } }
        #expect(servers == ["time": 1, "parent": 300, "child": 300])
    }

    @Test func rotationStartsANewChain() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        for i in 0..<3 { try log.append(auditSampleRecord(i)) }
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try log.append(auditSampleRecord(3))
        #expect(try auditLines(path).count == 1)
        #expect(try auditLines(path + ".1").count == 3)
        let result = try AuditVerifier.verify(path: path)
        #expect(result.records == 1 && result.chainIntact)
    }

    @Test func openErrorsAreClear() {
        do {
            _ = try AuditLog(path: "/dev/null/audit.jsonl")
            Issue.record("opened")
        } catch {
            #expect(error.code == .auditLog)
            #expect(error.message.hasPrefix("cannot write audit log /dev/null/audit.jsonl: "))
        }
    }

    @Test func missingLogVerifiesEmpty() throws {
        let result = try AuditVerifier.verify(path: "/nonexistent-mcpjail/audit.jsonl")
        #expect(!result.exists && result.records == 0 && result.chainIntact)
    }

    @Test func timeFormat() {
        #expect(AuditTime.format(1_795_307_926.123456) == "2026-11-22T00:38:46.123456Z")
        #expect(AuditTime.format(0) == "1970-01-01T00:00:00.000000Z")
        #expect(AuditTime.format(-0.5) == "1969-12-31T23:59:59.500000Z")
        #expect(AuditTime.format(951_825_600) == "2000-02-29T12:00:00.000000Z")
        #expect(AuditTime.format(micros: 1_795_307_926_123_456, fractionDigits: 3) == "2026-11-22T00:38:46.123Z")
        #expect(AuditTime.parse("2026-11-22T00:38:46.123456Z") == 1_795_307_926.123456)
        #expect(AuditTime.parse("2000-02-29T12:00:00Z") == 951_825_600)
        #expect(AuditTime.parse("1969-12-31T23:59:59.5Z") == -0.5)
        #expect(AuditTime.parse("2026-11-22 00:38:46Z") == nil)
        #expect(AuditTime.parse("2026-13-22T00:38:46Z") == nil)
        for t in [0.0, 1.000001, 1_795_307_926.999999, 4_102_444_800.5] {
            #expect(AuditTime.parse(AuditTime.format(t)) == t)
        }
    }
}

@Suite("Audit reader")
struct AuditReaderTests {
    @Test func followSeesAppendedRecordsAndStops() async throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let log = try AuditLog(path: path)
        try log.append(auditSampleRecord(0, server: "a"))
        try log.append(auditSampleRecord(1, server: "b"))

        let seen = Mutex<[Int]>([])
        let follower = Task {
            try await AuditReader(path: path).follow(
                server: "a", pollInterval: .milliseconds(10), until: { seen.withLock { $0.count >= 3 } }
            ) { item in
                if case .record(let e) = item { seen.withLock { $0.append(e.line) } }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        try log.append(auditSampleRecord(2, server: "a"))
        try log.append(auditSampleRecord(3, server: "b"))
        try log.append(auditSampleRecord(4, server: "a"))
        try await follower.value
        #expect(seen.withLock { $0 } == [1, 3, 5])
    }

    @Test func followWaitsForTheFileAndIsCancellable() async throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let seen = Mutex(0)
        let follower = Task {
            try await AuditReader(path: path).follow(pollInterval: .milliseconds(10)) { _ in
                seen.withLock { $0 += 1 }
            }
        }
        try await Task.sleep(for: .milliseconds(30))
        let log = try AuditLog(path: path)
        try log.append(auditSampleRecord(0))
        for _ in 0..<200 where seen.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        follower.cancel()
        try await follower.value
        #expect(seen.withLock { $0 } == 1)
    }

    @Test func partialLastLineIsNotReadUntilComplete() throws {
        let dir = try AuditTempDir()
        defer { dir.cleanup() }
        let path = dir.path + "/audit.jsonl"
        let (line, _) = AuditLine.encode(auditSampleRecord(0), prev: AuditLine.genesisHash)
        try Data(line.dropLast(10)).write(to: URL(fileURLWithPath: path))
        var count = 0
        let pos = try AuditReader(path: path).read { _ in count += 1 }
        #expect(count == 0 && pos == .start)
        try Data(line).write(to: URL(fileURLWithPath: path))
        let next = try AuditReader(path: path).read(from: pos) { _ in count += 1 }
        #expect(count == 1 && next.offset == Int64(line.count) && next.line == 1)
    }
}
