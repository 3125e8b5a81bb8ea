import ArgumentParser
import Foundation
import MCPJailCore
import MCPJailStore
import Testing

@testable import MCPJailCommands

/// A temporary state directory, removed by `cleanup()`.
private struct IdemStateDir {
    let path: String
    var environment: [String: String] { ["MCPJAIL_STATE_DIR": path, "HOME": "/nonexistent"] }
    var database: String { path + "/idempotency.sqlite" }

    init() throws {
        path = NSTemporaryDirectory() + "mcpjail-idem-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

private let now: Double = 1_800_000_000

private func call(_ n: Int) throws -> IdempotentCall {
    try IdempotencyKeys.call(
        subject: "local", server: "github", tool: "create_issue", arguments: ["n": .number(JSONNumber(n))], meta: nil)
}

/// Runs `mcpjail idempotency ARGS`; returns (exit code, stdout lines, stderr lines).
private func run(_ arguments: [String], _ state: IdemStateDir) throws -> (Int32, [String], [String]) {
    var out: [String] = []
    var err: [String] = []
    let command = try Idempotency.parseAsRoot(arguments)
    let code: Int32
    switch command {
    case let list as IdempotencyList:
        code = try list.execute(
            environment: state.environment, isRoot: false, now: now, output: { out.append($0) }, errors: { err.append($0) })
    case let resolve as IdempotencyResolve:
        code = try resolve.execute(
            environment: state.environment, isRoot: false, now: now, output: { out.append($0) }, errors: { err.append($0) })
    case let forget as IdempotencyForget:
        code = try forget.execute(
            environment: state.environment, isRoot: false, output: { out.append($0) }, errors: { err.append($0) })
    default:
        throw ValidationError("unexpected command \(type(of: command))")
    }
    return (code, out, err)
}

@Suite("idempotency command")
struct IdempotencyCommandTests {
    @Test("list without a database says so and creates none")
    func listNothing() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        let (code, out, err) = try run(["list"], state)
        #expect(code == 0 && err.isEmpty)
        #expect(out == ["no idempotency database at \(state.database) yet (no write calls recorded)"])
        #expect(!FileManager.default.fileExists(atPath: state.database))
        let (jcode, jout, _) = try run(["list", "--json"], state)
        #expect(jcode == 0 && jout.isEmpty)
    }

    @Test("list shows each call's key, state, server and tool, and points at unknown ones")
    func listRecords() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        let store = try SQLiteIdempotencyStore(path: state.database, now: now)
        let owner = try ProcessOwner.current()
        let (a, b) = (try call(1), try call(2))
        #expect(try store.begin(a, owner: owner, ttl: 60, now: now) == .execute)
        #expect(try store.complete(key: a.key, owner: owner, result: Array("{}".utf8), now: now))
        #expect(try store.begin(b, owner: owner, ttl: 60, now: now) == .execute)
        #expect(try store.markUnknown(key: b.key, owner: owner, now: now))
        var gone = owner
        gone.startTime += 1  // the same pid, another process: the owner is gone
        let c = try call(7)
        #expect(try store.begin(c, owner: gone, ttl: 60, now: now) == .execute)

        let (code, out, err) = try run(["list"], state)
        #expect(code == 0 && err.isEmpty)
        #expect(out.count == 5)
        #expect(out[0].hasPrefix("KEY") && out[0].contains("STATE") && out[0].contains("SERVER"))
        #expect(out[1].hasPrefix(a.key) && out[1].contains("completed") && out[1].contains("github"))
        #expect(out[1].contains("create_issue") && out[1].contains("2027-01-15T08:00:00.000Z"))
        #expect(out[2].hasPrefix(b.key) && out[2].contains("unknown"))
        #expect(out[3].hasPrefix(c.key) && out[3].contains("in_flight(owner gone)"))
        #expect(out[4].hasPrefix("2 calls with an unknown outcome"))

        let (jcode, jout, _) = try run(["list", "--json"], state)
        #expect(jcode == 0 && jout.count == 3)
        #expect(try JSONParser.parse(jout[2])["owner_alive"] == false)
        let first = try JSONParser.parse(jout[0])
        #expect(first["key"] == .string(a.key) && first["state"] == "completed" && first["result_bytes"] == 2)
        #expect(first["server"] == "github" && first["tool"] == "create_issue" && first["resolved_by_operator"] == false)
    }

    @Test("resolve without a result: retries get the operator's error result")
    func resolveDefault() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        let store = try SQLiteIdempotencyStore(path: state.database, now: now)
        let owner = try ProcessOwner.current()
        let c = try call(3)
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now) == .execute)
        #expect(try store.markUnknown(key: c.key, owner: owner, now: now))

        let (code, out, err) = try run(["resolve", c.key], state)
        #expect(code == 0 && err.isEmpty, "\(err)")
        #expect(out == ["resolved \(c.key): retries get an error result saying an operator resolved it"])
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now) == .replay(IdempotencyErrors.operatorResolvedResult))
        let (_, listed, _) = try run(["list"], state)
        #expect(listed[1].contains("completed(resolved)"))
    }

    @Test("resolve --result-file stores the file's object as one line")
    func resolveWithResult() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        let store = try SQLiteIdempotencyStore(path: state.database, now: now)
        let owner = try ProcessOwner.current()
        let c = try call(4)
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now) == .execute)
        let file = state.path + "/result.json"
        try Data("{\n  \"content\": [{\"type\": \"text\", \"text\": \"done\"}],\n  \"isError\": false\n}\n".utf8)
            .write(to: URL(fileURLWithPath: file))
        let (code, _, err) = try run(["resolve", c.key, "--result-file", file], state)
        #expect(code == 0 && err.isEmpty, "\(err)")
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now)
            == .replay(Array(#"{"content":[{"type":"text","text":"done"}],"isError":false}"#.utf8)))

        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: file))
        let (acode, _, aerr) = try run(["resolve", c.key, "--result-file", file], state)
        #expect(acode == 1 && aerr.first?.contains("holds a JSON array, not an object") == true, "\(aerr)")
        try Data("{oops".utf8).write(to: URL(fileURLWithPath: file))
        let (bcode, _, berr) = try run(["resolve", c.key, "--result-file", file], state)
        #expect(bcode == 1 && berr.first?.contains("is not JSON") == true, "\(berr)")
        let (ccode, _, cerr) = try run(["resolve", c.key, "--result-file", state.path + "/missing.json"], state)
        #expect(ccode == 1 && cerr.first?.contains("cannot read result file") == true, "\(cerr)")
    }

    @Test("forget, and the errors for keys that are absent or malformed")
    func forgetAndErrors() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        let c = try call(5)
        let (ncode, _, nerr) = try run(["forget", c.key], state)
        #expect(ncode == 1 && nerr == ["mcpjail: no recorded call \(c.key) in \(state.database)"])

        let store = try SQLiteIdempotencyStore(path: state.database, now: now)
        let owner = try ProcessOwner.current()
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now) == .execute)
        let (code, out, _) = try run(["forget", c.key], state)
        #expect(code == 0 && out == ["forgot \(c.key): the next call with this key runs again"])
        #expect(try store.begin(c, owner: owner, ttl: 60, now: now) == .execute)

        let (rcode, _, rerr) = try run(["resolve", try call(6).key], state)
        #expect(rcode == 1 && rerr.first?.contains("no recorded call") == true)
        #expect(throws: (any Error).self) { try Idempotency.parseAsRoot(["forget", "not-a-key"]) }
        #expect(throws: (any Error).self) { try Idempotency.parseAsRoot(["resolve", String(repeating: "A", count: 64)]) }
    }

    @Test("a corrupted database is one clear line and exit 1")
    func corrupted() throws {
        let state = try IdemStateDir()
        defer { state.cleanup() }
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: state.database))
        let (code, out, err) = try run(["list"], state)
        #expect(code == 1 && out.isEmpty)
        #expect(err.count == 1 && err[0].hasPrefix("mcpjail: idempotency database \(state.database) is corrupted"), "\(err)")
    }

    @Test("help: every subcommand explains itself with examples")
    func help() {
        let root = MCPJail.helpMessage(for: Idempotency.self)
        #expect(root.contains("Examples:"))
        for sub in ["list", "resolve", "forget"] { #expect(root.contains("  \(sub)")) }
        #expect(root.contains("outcome_unknown"))
        let resolve = MCPJail.helpMessage(for: IdempotencyResolve.self)
        #expect(resolve.contains("USAGE: mcpjail idempotency resolve <key> [--result-file <file>]"))
        #expect(resolve.contains("Examples:") && resolve.contains("operator"))
        let list = MCPJail.helpMessage(for: IdempotencyList.self)
        #expect(list.contains("--json") && list.contains("Examples:"))
        let forget = MCPJail.helpMessage(for: IdempotencyForget.self)
        #expect(forget.contains("<key>") && forget.contains("Examples:"))
    }
}
