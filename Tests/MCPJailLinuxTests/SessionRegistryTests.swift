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

        let live = registry.live()
        #expect(live.map(\.session) == ["s1"] && live.first?.pid == getpid() && live.first?.serverPID == 42)
        #expect(access(torn, F_OK) != 0, "the torn entry is still there")
        registration.remove()
        #expect(registry.live().isEmpty)
    }
}
