import CSQLite
import Foundation
import MCPJailCore
import Synchronization
import Testing

@testable import MCPJailStore

/// A temporary directory holding one database, removed by `cleanup()`.
struct TempStore {
    let directory: String
    var path: String { directory + "/idempotency.sqlite" }

    init() throws {
        directory = NSTemporaryDirectory() + "mcpjail-idem-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func open(
        busyTimeoutMilliseconds: Int32 = 2000, liveness: any IdempotencyOwnerLiveness = ProcessLiveness(),
        now: Double = t0
    ) throws -> SQLiteIdempotencyStore {
        try SQLiteIdempotencyStore(
            path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds, liveness: liveness, now: now)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A fixed "now" for tests that do not care about the wall clock.
let t0: Double = 1_800_000_000

let me: IdempotencyOwner = {
    do { return try ProcessOwner.current() } catch { fatalError("\(error)") }
}()

/// A write call to `tool` with arguments `{"n":N}`.
func writeCall(_ n: Int, tool: String = "create_issue", suppliedKey: String? = nil) -> IdempotentCall {
    do {
        let meta: JSONValue? = suppliedKey.map { [IdempotencyKeys.metaName: .string($0)] }
        return try IdempotencyKeys.call(
            subject: "local", server: "github", tool: tool, arguments: ["n": .number(JSONNumber(n))], meta: meta)
    } catch { fatalError("\(error)") }
}

let okResult = Array(#"{"content":[{"type":"text","text":"created #42"}],"isError":false}"#.utf8)
let errorResult = Array(#"{"content":[{"type":"text","text":"repository is archived"}],"isError":true}"#.utf8)

/// Liveness the test controls.
final class SwitchableLiveness: IdempotencyOwnerLiveness {
    let alive: Atomic<Bool>
    init(alive: Bool) { self.alive = Atomic(alive) }
    func isAlive(_ owner: IdempotencyOwner) -> Bool { alive.load(ordering: .sequentiallyConsistent) }
}

/// A raw SQLite connection, to hold locks and write files the store did not.
final class RawConnection {
    let db: OpaquePointer

    init(_ path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open(path, &handle) == SQLITE_OK, let handle else {
            throw TestFailure("cannot open \(path)")
        }
        db = handle
    }

    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw TestFailure("\(sql): \(String(cString: sqlite3_errmsg(db)))") }
    }

    deinit { sqlite3_close_v2(db) }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `mcpjail-idem-probe serve DB`: another process using the store, driven line by line.
final class ProbeProcess {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []

    /// The probe next to the test bundle (SwiftPM builds it: the test target depends on it).
    static var executable: String {
        let bundle = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("mcpjail-idem-probe").path
    }

    /// `mode` is the probe's subcommand: `serve`, or `open` (opens when sent a line).
    init(database: String, mode: String = "serve") throws {
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [mode, database]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { return nil }
            buffer.append(contentsOf: data)
        }
    }

    func ask(_ line: String) -> String? {
        send(line)
        return readLine()
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// The permission bits of `path`, nil when it does not exist.
func mode(_ path: String) -> Int? {
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
        let permissions = attributes[.posixPermissions] as? NSNumber
    else { return nil }
    return permissions.intValue
}
