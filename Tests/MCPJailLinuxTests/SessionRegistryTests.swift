import Foundation
import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

@Suite("The session registry (mcpjail ps)")
struct SessionRegistryTests {
    @Test("a live session is listed, and removed with its registration; a torn entry is cleared")
    func liveAndTorn() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mcpjail-registry-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let registry = SessionRegistry(state: StateDirectory(path: root))
        let registration = try #require(registry.register(
            session: "s1", server: "time", profilePath: "/p/time.toml", profileDigest: "d", serverPID: 42))
        // What a crash between the write and its reaching the disk can leave: an empty file.
        let torn = StateDirectory(path: root).sessions + "/s2.json"
        #expect(FileManager.default.createFile(atPath: torn, contents: Data()))
        // A writer that died before its rename, and one still writing (this process).
        let dead = Self.exitedPID()
        let orphan = StateDirectory(path: root).sessions + "/s3.json.\(dead).tmp"
        let writing = StateDirectory(path: root).sessions + "/s4.json.\(getpid()).tmp"
        #expect(FileManager.default.createFile(atPath: orphan, contents: Data("{".utf8)))
        #expect(FileManager.default.createFile(atPath: writing, contents: Data("{".utf8)))

        let live = registry.live()
        #expect(live.map(\.session) == ["s1"] && live.first?.pid == getpid() && live.first?.serverPID == 42)
        #expect(access(torn, F_OK) != 0, "the torn entry is still there")
        #expect(access(orphan, F_OK) != 0, "a dead writer's temporary file is still there")
        #expect(access(writing, F_OK) == 0, "a live writer's temporary file was removed")
        registration.remove()
        #expect(registry.live().isEmpty)
    }

    @Test("an entry's JSON decodes to the same entry, whatever its strings hold")
    func entryRoundTrip() throws {
        let entry = SessionRegistry.Entry(
            session: "s\"1\\", server: "time", pid: 7, startTicks: UInt64.max, bootID: "b-\u{1}",
            serverPID: -1, started: "2026-12-05T12:00:00Z", profile: "/p/tïme \n.toml", profileDigest: "d")
        let decoded = try JSONDecoder().decode(SessionRegistry.Entry.self, from: Data(entry.json()))
        #expect(decoded == entry)
        #expect(decoded != SessionRegistry.Entry(
            session: "s", server: "time", pid: 7, startTicks: 0, bootID: "b", serverPID: -1,
            started: "", profile: "", profileDigest: ""))
    }

    /// The pid of a child that has exited and been reaped (so no process has it, until
    /// the kernel hands it out again, which takes a whole pid cycle).
    static func exitedPID() -> pid_t {
        let pid = fork()
        if pid == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return pid
    }
}
