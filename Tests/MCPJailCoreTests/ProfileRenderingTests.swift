import Foundation
import Testing
@testable import MCPJailCore

@Suite("Effective policy rendering")
struct ProfileRenderingTests {
    static let text = """
        description = "Round \\"trip\\""
        [server]
        command = "COMMAND"
        args = ["--a", "b c"]
        env = { TZ = "UTC", "LC_ALL" = "C" }
        stop_timeout = "1500ms"
        [filesystem]
        read_only = ["/usr", "/etc/ssl"]
        tmpfs = { "/tmp" = "64M", "/run" = 12345 }
        [network]
        egress = ["API.example.com:443", "*.cdn.example.com:443", "127.0.0.1:8080", "[::1]:9000"]
        max_connections = 8
        [limits]
        max_message = "1M"
        [tools.a]
        [tools."b.c"]
        """

    @Test("the TOML form is itself a profile that loads to the same policy")
    func tomlRoundTrip() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load(Self.text.replacingOccurrences(of: "COMMAND", with: command))
        let rendered = profile.effectiveTOML()
        #expect(rendered.contains("workdir = \"/\""))
        #expect(rendered.contains("stop_timeout = \"1500ms\""))
        #expect(rendered.contains("max_message = \"1M\""))
        #expect(rendered.contains("read_write = []"))
        #expect(rendered.contains("[tools.\"b.c\"]"))
        #expect(rendered.contains("# sha256:  \(profile.digest)"))
        let again = try sandbox.load(rendered, name: "again")
        #expect(again.server == profile.server)
        #expect(again.filesystem == profile.filesystem)
        #expect(again.limits == profile.limits)
        #expect(again.network == profile.network)
        #expect(again.network.egress.map(\.description) == ["api.example.com:443", "*.cdn.example.com:443", "127.0.0.1:8080", "[::1]:9000"])
        #expect(again.tools == profile.tools)
        #expect(again.description == profile.description)
    }

    @Test("the JSON form has every field, sizes in bytes and durations in ms")
    func json() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load(Self.text.replacingOccurrences(of: "COMMAND", with: command))
        let object = try #require(
            JSONSerialization.jsonObject(with: Data(profile.effectiveJSON().utf8)) as? [String: Any])
        #expect(object["name"] as? String == "test")
        #expect(object["digest"] as? String == profile.digest)
        let server = try #require(object["server"] as? [String: Any])
        #expect(server["command"] as? String == command)
        #expect(server["stop_timeout_ms"] as? Int == 1500)
        #expect(server["workdir"] as? String == "/")
        #expect(server["env"] as? [String: String] == ["TZ": "UTC", "LC_ALL": "C"])
        let filesystem = try #require(object["filesystem"] as? [String: Any])
        #expect(filesystem["tmpfs"] as? [String: Int] == ["/tmp": 64 << 20, "/run": 12345])
        #expect(filesystem["read_write"] as? [String] == [])
        let limits = try #require(object["limits"] as? [String: Any])
        #expect(limits["max_message_bytes"] as? Int == 1 << 20)
        #expect((object["tools"] as? [String: Any])?.keys.sorted() == ["a", "b.c"])
    }
}
