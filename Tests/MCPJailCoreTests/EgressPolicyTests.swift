import Foundation
import Testing
@testable import MCPJailCore

@Suite("Egress allow-list: entries, matching, rebinding")
struct EgressPolicyTests {
    static func rule(_ text: String) throws -> EgressRule { try EgressRule.parse(text).get() }

    static func problem(_ text: String) -> String? {
        if case .failure(let error) = EgressRule.parse(text) { return error.message }
        return nil
    }

    @Test("entries parse to names, wildcards, IPv4 and bracketed IPv6 literals")
    func parsing() throws {
        #expect(try Self.rule("api.github.com:443") == EgressRule(host: .name("api.github.com"), port: 443))
        #expect(try Self.rule("API.GitHub.com.:443") == EgressRule(host: .name("api.github.com"), port: 443))
        #expect(try Self.rule("*.githubusercontent.com:443") == EgressRule(host: .wildcard("githubusercontent.com"), port: 443))
        #expect(try Self.rule("127.0.0.1:8080") == EgressRule(host: .address(IPAddress("127.0.0.1")!), port: 8080))
        #expect(try Self.rule("[::1]:8080") == EgressRule(host: .address(IPAddress("::1")!), port: 8080))
        #expect(try Self.rule("[fd00:ec2::254]:80").description == "[fd00:ec2::254]:80")
        #expect(try Self.rule("localhost:1").description == "localhost:1")
    }

    @Test("a bare host is an error that says which port to add")
    func bareHost() {
        #expect(Self.problem("api.github.com")?.contains("has no port: write \"api.github.com:443\"") == true)
        #expect(Self.problem("[::1]")?.contains("has no port") == true)
        #expect(Self.problem("::1")?.contains("in brackets") == true)
    }

    @Test("bad entries are refused", arguments: [
        "", ":443", "host:0", "host:65536", "host:http", "*.com:443", "a.*.com:443", "*:443",
        "exa mple.com:443", "-bad.com:443", "1.2.3:80", "256.1.1.1:80", "01.2.3.4:80", "[1.2.3.4]:80", "[::g]:80",
        "[::1:80", "[::1]80",
    ])
    func bad(text: String) {
        #expect(Self.problem(text) != nil, "\(text) was accepted")
    }

    @Test("a wildcard matches subdomains, not the apex; names on their own port only")
    func matching() throws {
        let policy = EgressPolicy(rules: [
            try Self.rule("api.github.com:443"), try Self.rule("*.githubusercontent.com:443"), try Self.rule("127.0.0.1:8080"),
        ])
        #expect(policy.rule(name: "api.github.com", port: 443) != nil)
        #expect(policy.rule(name: "API.GITHUB.COM.", port: 443) != nil)
        #expect(policy.rule(name: "api.github.com", port: 80) == nil)
        #expect(policy.rule(name: "github.com", port: 443) == nil)
        #expect(policy.rule(name: "evilapi.github.com", port: 443) == nil)
        #expect(policy.rule(name: "raw.githubusercontent.com", port: 443) != nil)
        #expect(policy.rule(name: "a.b.githubusercontent.com", port: 443) != nil)
        #expect(policy.rule(name: "githubusercontent.com", port: 443) == nil)
        #expect(policy.rule(name: "xgithubusercontent.com", port: 443) == nil)
        #expect(policy.allowsLookup("raw.githubusercontent.com"))
        #expect(!policy.allowsLookup("example.com"))
        #expect(policy.rule(for: .address(IPAddress("127.0.0.1")!, port: 8080)) != nil)
        #expect(policy.rule(for: .address(IPAddress("127.0.0.1")!, port: 8081)) == nil)
        #expect(policy.rule(for: .address(IPAddress("::ffff:127.0.0.1")!, port: 8080)) != nil)
        #expect(policy.rule(for: .name("127.0.0.1", port: 8080)) != nil)
        #expect(policy.ports == [443, 8080])
    }

    @Test("resolved internal addresses are dropped unless named literally (DNS rebinding)")
    func rebinding() throws {
        let policy = EgressPolicy(rules: [try Self.rule("svc.example.com:80"), try Self.rule("10.1.2.3:80")])
        let addresses = ["127.0.0.1", "10.0.0.1", "10.1.2.3", "172.16.5.5", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                         "224.0.0.1", "0.0.0.0", "::1", "fd00:ec2::254", "fe80::1", "ff02::1", "::ffff:10.0.0.1",
                         "93.184.216.34", "2606:4700::1111"].map { IPAddress($0)! }
        #expect(policy.connectable(addresses, port: 80).map(\.description) == ["10.1.2.3", "93.184.216.34", "2606:4700::1111"])
        #expect(policy.connectable(addresses, port: 81).map(\.description) == ["93.184.216.34", "2606:4700::1111"])
    }

    @Test("localhost names the loopback addresses themselves, on its port only")
    func localhost() throws {
        let policy = EgressPolicy(rules: [try Self.rule("localhost:8080")])
        #expect(policy.rule(for: .address(IPAddress("127.0.0.1")!, port: 8080)) != nil)
        #expect(policy.rule(for: .address(IPAddress("::1")!, port: 8080)) != nil)
        #expect(policy.rule(for: .address(IPAddress("127.0.0.2")!, port: 8080)) == nil)
        #expect(policy.rule(for: .address(IPAddress("127.0.0.1")!, port: 8081)) == nil)
        #expect(policy.connectable([IPAddress("127.0.0.1")!, IPAddress("10.0.0.1")!], port: 8080) == [IPAddress("127.0.0.1")!])
    }

    @Test("IPv6 text round-trips in RFC 5952 form")
    func ipv6Text() {
        for (input, output) in [("::1", "::1"), ("::", "::"), ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
                                ("fd00:ec2::254", "fd00:ec2::254"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
                                ("::ffff:1.2.3.4", "::ffff:102:304")] {
            #expect(IPAddress(input)?.description == output, "\(input)")
        }
        for bad in ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", ":1", "::ffff:1.2.3"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test("[network] reads egress, max_connections and idle_timeout, with file, line and key on errors")
    func profileTable() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("[server]\ncommand = \"\(command)\"\n")
        #expect(profile.network == Profile.Network(egress: [], maxConnections: 64, idleTimeout: .seconds(300)))
        let open = try sandbox.load("""
            [server]
            command = "\(command)"
            [network]
            egress = ["api.github.com:443", "127.0.0.1:8080"]
            max_connections = 4
            idle_timeout = "30s"
            """)
        #expect(open.network.egress.count == 2)
        #expect(open.network.maxConnections == 4)
        #expect(open.network.idleTimeout == .seconds(30))
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [network]
            egress = ["api.github.com", "ok.example.com:443", "ok.example.com:443"]
            max_connections = 0
            idle_timeout = "10ms"
            """)
        #expect(problems.map(\.keyPath) == ["network.egress[0]", "network.egress[2]", "network.max_connections", "network.idle_timeout"])
        #expect(problems[0].line == 4)
        #expect(problems[0].message.contains("write \"api.github.com:443\""))
    }
}
