import Foundation
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux

@Suite struct JailPlanTests {
    private func profile(readOnly: [String] = [], readWrite: [String] = [], tmpfs: [String: Int] = [:], env: [String: String] = [:]) -> Profile {
        Profile(
            name: "t", path: "/p/t.toml", digest: "d",
            server: Profile.Server(command: "/usr/bin/env", env: env),
            filesystem: Profile.Filesystem(readOnly: readOnly, readWrite: readWrite, tmpfs: tmpfs))
    }

    private func plan(_ profile: Profile, root: Bool = true, state: String = "/var/lib/mcpjail") throws -> JailPlan {
        try JailPlan.make(for: profile, isRoot: root, uid: root ? 0 : 1000, gid: root ? 0 : 1000, stateDirectory: state)
    }

    @Test func parentsAreMountedBeforeWhatTheyContain() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jailplan-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/inner", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mounts = try plan(profile(readOnly: [dir + "/inner", "/usr"], tmpfs: ["/tmp": 1 << 20])).mounts
        let targets = mounts.map(\.target)
        #expect(try #require(targets.firstIndex(of: "/tmp")) < #require(targets.firstIndex(of: dir + "/inner")))
        #expect(try #require(targets.firstIndex(of: "/usr")) < #require(targets.firstIndex(of: dir + "/inner")))
    }

    @Test func rootsServersRunAsNobodyAndUsersAsThemselves() throws {
        let asRoot = try plan(profile(readOnly: ["/usr"]))
        #expect(asRoot.uid == 65534 && asRoot.gid == 65534 && asRoot.switchIdentity)
        let asUser = try plan(profile(readOnly: ["/usr"]), root: false)
        #expect(asUser.uid == 1000 && asUser.gid == 1000 && !asUser.switchIdentity)
        let passwd = asRoot.mounts.compactMap { if case .file("/etc/passwd", let text, _) = $0 { text } else { nil } }
        #expect(passwd == ["nobody:x:65534:65534:nobody:/home/mcpjail:/bin/sh\n"])
    }

    @Test func aMissingPathIsAnErrorBeforeAnythingStarts() {
        #expect(throws: MCPJailError.self) { try plan(profile(readOnly: ["/usr", "/no/such/dir"])) }
    }

    @Test func theStateDirectoryIsMaskedUnderABoundParent() throws {
        let mounts = try plan(profile(readOnly: ["/usr", "/var"]), state: "/var/lib/mcpjail").mounts
        #expect(mounts.contains(.tmpfs(target: "/var/lib/mcpjail", size: 4096, mode: 0o700)))
        let unbound = try plan(profile(readOnly: ["/usr"]), state: "/var/lib/mcpjail").mounts
        #expect(!unbound.contains { $0.target == "/var/lib/mcpjail" })
    }

    @Test func homeIsPrivateUnlessTheProfileSetsIt() throws {
        let withDefault = try plan(profile(readOnly: ["/usr"]))
        #expect(withDefault.environment["HOME"] == "/home/mcpjail")
        #expect(withDefault.mounts.contains(.tmpfs(target: "/home/mcpjail", size: 64 << 20, mode: 0o700)))
        let own = try plan(profile(readOnly: ["/usr"], env: ["HOME": "/data"]))
        #expect(own.environment["HOME"] == "/data" && !own.mounts.contains { $0.target == "/home/mcpjail" })
    }

    @Test func mergedUsrLinksFollowTheHost() throws {
        let mounts = try plan(profile(readOnly: ["/usr"])).mounts
        for link in ["/bin", "/lib"] {
            if let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: link) {
                #expect(mounts.contains(.symlink(target: link, destination: destination)))
            }
        }
        #expect(mounts.contains(.proc(target: "/proc")))
        #expect(mounts.filter { if case .device = $0 { true } else { false } }.count == 5)
    }
}
