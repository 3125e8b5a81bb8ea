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

@Suite struct JailPlanEgressTests {
    private func profile(egress: [String], readOnly: [String] = ["/usr"]) throws -> Profile {
        Profile(
            name: "t", path: "/p/t.toml", digest: "d", server: Profile.Server(command: "/usr/bin/env"),
            filesystem: Profile.Filesystem(readOnly: readOnly),
            network: Profile.Network(egress: try egress.map { try EgressRule.parse($0).get() }))
    }

    private func plan(_ profile: Profile) throws -> JailPlan {
        try JailPlan.make(for: profile, isRoot: true, uid: 0, gid: 0, stateDirectory: "/var/lib/mcpjail")
    }

    @Test func egressPointsTheResolverAtTheStubAndSetsTheProxyVariables() throws {
        let open = try plan(profile(egress: ["api.github.com:443"]))
        let files = open.mounts.compactMap { if case .file(let target, let text, _) = $0 { (target, text) } else { nil } }
        #expect(files.contains { $0.0 == "/etc/resolv.conf" && $0.1.hasPrefix("nameserver 127.0.0.53\n") })
        #expect(files.contains { $0.0 == "/etc/nsswitch.conf" && $0.1.contains("hosts: files dns") })
        #expect(open.environment["HTTPS_PROXY"] == "http://127.0.0.1:3128")
        #expect(open.environment["NO_PROXY"] == "localhost,127.0.0.1,::1")
        let closed = try plan(profile(egress: []))
        #expect(!closed.mounts.contains { $0.target == "/etc/resolv.conf" })
        #expect(closed.environment["HTTP_PROXY"] == nil)
    }

    @Test func theProxyPortAvoidsListedPorts() throws {
        let open = try plan(profile(egress: ["127.0.0.1:3128", "127.0.0.1:3129"]))
        #expect(open.environment["HTTP_PROXY"] == "http://127.0.0.1:3130")
    }

    @Test func namesWithTheHostsEtcBoundAreAnError() throws {
        #expect(throws: MCPJailError.self) { try plan(profile(egress: ["api.github.com:443"], readOnly: ["/usr", "/etc"])) }
        // Literals need no resolver.
        _ = try plan(profile(egress: ["127.0.0.1:80"], readOnly: ["/usr", "/etc"]))
    }

    @Test func theBridgePlansTheStubAListenerPerPortTheProxyAndTheRefusalWatch() throws {
        let policy = EgressPolicy(rules: try ["a.example.com:443", "b.example.com:443", "10.0.0.5:80", "127.0.0.1:8080", "[2001:db8::1]:80"]
            .map { try EgressRule.parse($0).get() })
        let bridge = try #require(try EgressBridge.make(policy: policy))
        defer { bridge.close() }
        #expect(bridge.sockets.first == EgressBridge.Socket(role: .dns, address: IPAddress("127.0.0.53")!, port: 53))
        #expect(bridge.sockets.dropLast().last == EgressBridge.Socket(role: .httpProxy, address: IPAddress("127.0.0.1")!, port: 3128))
        #expect(bridge.sockets.last?.role == .refusals)
        let watch = try #require(bridge.cSockets().last)
        #expect(watch.family == AF_PACKET && watch.type == Int32(SOCK_DGRAM.rawValue))
        let ports = bridge.sockets.filter { $0.role == .transparent && $0.address.isIPv4 }.map(\.port)
        #expect(ports == [80, 443, 8080])
        #expect(bridge.ipv6 == EgressBridge.hostHasIPv6())
        #expect(try EgressBridge.make(policy: EgressPolicy(rules: [])) == nil)
    }
}
