import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile keys for pinning: [server] code and pinned")
struct ProfilePinKeysTests {
    @Test("pinned defaults to true and code to nothing")
    func defaults() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("[server]\ncommand = \"\(command)\"\n")
        #expect(profile.server.pinned)
        #expect(profile.server.code == [])
    }

    @Test("code paths expand ${PROFILE_DIR}; pinned = false is kept")
    func parsing() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("""
            [server]
            command = "\(command)"
            code = ["${PROFILE_DIR}/../bin", "/srv//mcp/./time"]
            pinned = false
            """)
        #expect(profile.server.code == [sandbox.root + "/bin", "/srv/mcp/time"])
        #expect(!profile.server.pinned)
    }

    @Test("bad values are reported with their key path", arguments: [
        ("code = \"/srv\"", "server.code", "expected an array of absolute paths"),
        ("code = [\"srv\"]", "server.code[0]", "relative path"),
        ("code = [\"/srv\", \"/srv\"]", "server.code[1]", "listed twice"),
        ("pinned = \"no\"", "server.pinned", "expected true or false"),
        ("pined = false", "server.pined", "did you mean 'pinned'?"),
    ])
    func problems(line: String, keyPath: String, message: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("[server]\ncommand = \"\(command)\"\n\(line)\n")
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == keyPath)
        #expect(problems.first?.message.contains(message) == true, "\(problems)")
    }

    @Test("pinned code can never be writable in the jail", arguments: [
        ("/srv/app", "/srv/app", "is inside filesystem.read_write"),
        ("/srv/app", "/srv", "is inside filesystem.read_write"),
        ("/srv/app", "/srv/app/data", "holds filesystem.read_write"),
    ])
    func codeIsReadOnly(code: String, writable: String, message: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            code = ["/other", "\(code)"]
            [filesystem]
            read_write = ["\(writable)"]
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == "server.code[1]")
        #expect(problems.first?.message.contains(message) == true, "\(problems)")
    }

    @Test("check's TOML flags an unpinned profile and re-parses to the same keys; the JSON has both")
    func rendering() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("[server]\ncommand = \"\(command)\"\ncode = [\"/srv/a\", \"/srv/b\"]\npinned = false\n")
        let toml = profile.effectiveTOML()
        #expect(toml.contains("pinned = false  # UNPINNED"))
        #expect(toml.contains("code = [\n  \"/srv/a\",\n  \"/srv/b\",\n]"))
        let again = try sandbox.load(toml, name: "again")
        #expect(again.server == profile.server)
        let pinned = try sandbox.load("[server]\ncommand = \"\(command)\"\n", name: "pinned")
        #expect(pinned.effectiveTOML().contains("pinned = true  # run verifies the command and code against pinned.lock before exec"))

        let object = try #require(JSONSerialization.jsonObject(with: Data(profile.effectiveJSON().utf8)) as? [String: Any])
        let server = try #require(object["server"] as? [String: Any])
        #expect(server["code"] as? [String] == ["/srv/a", "/srv/b"])
        #expect(server["pinned"] as? Bool == false)
    }

    @Test("audit records carry pinned, and read back")
    func auditField() throws {
        var record = AuditRecord(
            time: 1, server: "s", profileDigest: "d", session: "x", requestID: "1", method: "ping", decision: .allow,
            outcome: .ok, latencyMicros: 1, bytesIn: 1, bytesOut: 1, auth: "off")
        record.pinned = false
        let text = String(decoding: record.jsonObject, as: UTF8.self)
        #expect(text.hasSuffix(",\"auth\":\"off\",\"pinned\":false}"))
        let read = try AuditRecord(json: try JSONParser.parse(record.jsonObject))
        #expect(read.pinned == false)
        record.pinned = nil
        #expect(try AuditRecord(json: try JSONParser.parse(record.jsonObject)).pinned == nil)
    }
}
