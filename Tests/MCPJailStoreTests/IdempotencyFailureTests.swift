import Foundation
import MCPJailCore
import Testing

@testable import MCPJailStore

/// Opens a store at `temp.path` and begins a fresh call; returns the error, failing the test
/// if anything else happens (above all an `.execute`).
private func expectFailure(_ temp: TempStore, busyTimeoutMilliseconds: Int32 = 2000) -> MCPJailError? {
    do {
        let store = try temp.open(busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        let decision = try store.begin(writeCall(9999), owner: me, ttl: 60, now: t0)
        Issue.record("expected an error, got \(decision)")
        return nil
    } catch let error as MCPJailError {
        return error
    } catch {
        Issue.record("expected an MCPJailError, got \(error)")
        return nil
    }
}

@Suite("Idempotency store: damaged, locked and foreign files")
struct IdempotencyFailureTests {
    @Test("a file of garbage is a clear error naming the file")
    func garbageFile() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        for garbage in [
            Data(repeating: 0x42, count: 8192),
            Data("SQLite format 3\0".utf8) + Data(repeating: 0xFF, count: 4080),
            Data("not a database\n".utf8),
        ] {
            try garbage.write(to: URL(fileURLWithPath: temp.path))
            let error = try #require(expectFailure(temp))
            #expect(error.code == .idempotencyStore)
            #expect(error.message.contains(temp.path) && error.message.contains("corrupted"), "\(error)")
            #expect(error.hint?.contains("move it aside") == true)
        }
    }

    @Test("a database damaged after its header is a clear error, never an execute")
    func damagedPages() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        do {
            let store = try temp.open()
            for n in 0..<50 {
                #expect(try store.begin(writeCall(n), owner: me, ttl: 60, now: t0) == .execute)
                #expect(try store.complete(key: writeCall(n).key, owner: me, result: okResult, now: t0))
            }
        }  // closed: the WAL is checkpointed into the file and removed
        #expect(!FileManager.default.fileExists(atPath: temp.path + "-wal"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: temp.path)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temp.path))
        try handle.seek(toOffset: 100)  // keep SQLite's 100-byte header, garble every page after it
        handle.write(Data(repeating: 0xA5, count: size - 100))
        try handle.close()
        let error = try #require(expectFailure(temp))
        #expect(error.code == .idempotencyStore)
        #expect(error.message.contains(temp.path) && error.message.contains("corrupted"), "\(error)")
    }

    @Test("a write lock held past the busy timeout is a clear error; the key stays unclaimed")
    func lockedForWriting() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let store = try temp.open(busyTimeoutMilliseconds: 100)
        let holder = try RawConnection(temp.path)
        try holder.execute("BEGIN IMMEDIATE")
        let call = writeCall(1)
        let started = ContinuousClock.now
        let error = try #require(throws: MCPJailError.self) { try store.begin(call, owner: me, ttl: 60, now: t0) }
        #expect(ContinuousClock.now - started >= .milliseconds(90))
        #expect(error.code == .idempotencyStore)
        #expect(error.message.contains(temp.path) && error.message.contains("locked"), "\(error)")
        #expect(error.message.contains("100 ms"))
        // WAL: reading still works while another process writes, and nothing was claimed.
        #expect(try store.peek(key: call.key, fingerprint: call.fingerprint, now: t0) == .execute)
        #expect(throws: MCPJailError.self) { try store.complete(key: call.key, owner: me, result: okResult, now: t0) }

        try holder.execute("COMMIT")
        #expect(try store.begin(call, owner: me, ttl: 60, now: t0) == .execute)
    }

    @Test("a database another process holds exclusively (even reads blocked) cannot be opened: a clear error")
    func lockedExclusively() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        do {
            let store = try temp.open()
            #expect(try store.begin(writeCall(2), owner: me, ttl: 60, now: t0) == .execute)
        }
        // Possible only while no store has the file open (each WAL connection keeps a shared lock).
        let holder = try RawConnection(temp.path)
        try holder.execute("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT")
        let error = try #require(expectFailure(temp, busyTimeoutMilliseconds: 50))
        #expect(error.code == .idempotencyStore)
        #expect(error.message.contains(temp.path) && error.message.contains("locked"), "\(error)")
    }

    @Test("another application's SQLite file, or a newer schema, is refused")
    func foreignOrNewer() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        do {
            let other = try RawConnection(temp.path)
            try other.execute("CREATE TABLE notes (x TEXT)")
        }
        let foreign = try #require(expectFailure(temp))
        #expect(foreign.message.contains("not mcpjail's idempotency database") && foreign.message.contains(temp.path))

        try FileManager.default.removeItem(atPath: temp.path)
        _ = try temp.open()
        do {
            let raw = try RawConnection(temp.path)
            try raw.execute("PRAGMA user_version = 2")
        }
        let newer = try #require(expectFailure(temp))
        #expect(newer.message.contains("schema version 2"), "\(newer)")
    }

    @Test("the file is created 0600 (and its WAL and shm), missing directories 0700")
    func permissions() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        let path = temp.directory + "/a/b/idempotency.sqlite"
        let store = try SQLiteIdempotencyStore(path: path)
        #expect(try store.begin(writeCall(1), owner: me) == .execute)
        #expect(mode(path) == 0o600)
        #expect(mode(path + "-wal") == 0o600)
        #expect(mode(path + "-shm") == 0o600)
        #expect(mode(temp.directory + "/a") == 0o700)
        #expect(mode(temp.directory + "/a/b") == 0o700)
        #expect(StateDirectory(path: "/s").idempotencyDatabase == "/s/" + SQLiteIdempotencyStore.fileName)
    }

    @Test("a directory where the file should be is a clear error")
    func notAFile() throws {
        let temp = try TempStore()
        defer { temp.cleanup() }
        try FileManager.default.createDirectory(atPath: temp.path, withIntermediateDirectories: true)
        let error = try #require(expectFailure(temp))
        #expect(error.message.contains("cannot create idempotency database \(temp.path)"), "\(error)")
    }
}

@Suite("Idempotency owners from /proc")
struct IdempotencyOwnerTests {
    @Test func currentProcess() throws {
        let owner = try ProcessOwner.current()
        #expect(owner.pid == getpid())
        #expect(owner.bootID.utf8.count == 36)
        #expect(owner.startTime > 0)
        #expect(ProcessOwner.of(pid: getpid()) == owner)
        #expect(ProcessLiveness().isAlive(owner))
        #expect(ProcessOwner.of(pid: -1) == nil)
    }

    @Test("stat parsing counts fields from the last parenthesis")
    func parse() {
        let rest = (4...52).map { $0 == 22 ? "98765" : String($0) }.joined(separator: " ")
        let tricky = ProcessStat.parse(Array("1234 (a) b) Z 7 (c) S \(rest)\n".utf8))
        #expect(tricky?.state == UInt8(ascii: "S") && tricky?.startTime == 98765 && tricky?.isRunning == true)
        let zombie = ProcessStat.parse(Array("1 (x) Z \(rest)".utf8))
        #expect(zombie?.isRunning == false)
        #expect(ProcessStat.parse(Array("1 (x) S 1 2 3".utf8)) == nil)
        #expect(ProcessStat.parse(Array("garbage".utf8)) == nil)
    }
}
