import Foundation
import MCPJailCore
import Testing
@testable import MCPJailCommands

@Suite("mcpjail client-config")
struct ClientConfigCommandTests {
    func run(_ arguments: [String], sandbox: ProfileCommandSandbox, explicit: Bool = false) throws -> ProfileCommandOutput {
        let command = try ClientConfig.parse(arguments)
        return command.output(
            store: sandbox.store, passProfileDirectory: explicit, executable: "/opt/mcpjail/bin/mcpjail")
    }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("claude and cursor: mcpServers.NAME = {command, args}", arguments: ["claude", "cursor"])
    func claudeAndCursor(client: String) throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        let output = try run([client, "time"], sandbox: sandbox)
        #expect(output.status == 0)
        let object = try parse(output.stdout)
        #expect(object.keys.sorted() == ["mcpServers"])
        let entry = try #require((object["mcpServers"] as? [String: Any])?["time"] as? [String: Any])
        #expect(entry["command"] as? String == "/opt/mcpjail/bin/mcpjail")
        #expect(entry["args"] as? [String] == ["run", "time"])
        #expect(entry.keys.sorted() == ["args", "command"])
    }

    @Test("vscode: servers.NAME = {type: stdio, command, args}")
    func vscode() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("git")
        let output = try run(["vscode", "git"], sandbox: sandbox)
        let object = try parse(output.stdout)
        let entry = try #require((object["servers"] as? [String: Any])?["git"] as? [String: Any])
        #expect(entry["type"] as? String == "stdio")
        #expect(entry["command"] as? String == "/opt/mcpjail/bin/mcpjail")
        #expect(entry["args"] as? [String] == ["run", "git"])
    }

    @Test("JSON is pretty-printed with sorted keys and unescaped slashes")
    func jsonFormatting() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        let output = try run(["vscode", "time"], sandbox: sandbox)
        #expect(output.stdout.contains("\n  "))
        #expect(output.stdout.contains("/opt/mcpjail/bin/mcpjail"))
        let args = try #require(output.stdout.range(of: "\"args\""))
        let command = try #require(output.stdout.range(of: "\"command\""))
        let type = try #require(output.stdout.range(of: "\"type\""))
        #expect(args.lowerBound < command.lowerBound && command.lowerBound < type.lowerBound)
    }

    @Test("codex: a [mcp_servers.NAME] TOML table")
    func codex() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        try sandbox.writeValid("my.server")
        #expect(try run(["codex", "time"], sandbox: sandbox).stdout == """
            [mcp_servers.time]
            command = "/opt/mcpjail/bin/mcpjail"
            args = ["run", "time"]

            """)
        #expect(try run(["codex", "my.server"], sandbox: sandbox).stdout.hasPrefix("[mcp_servers.\"my.server\"]\n"))
    }

    @Test("an explicit profile directory is passed on as --profiles")
    func explicitDirectory() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        let output = try run(["claude", "time"], sandbox: sandbox, explicit: true)
        let entry = try #require(((try parse(output.stdout))["mcpServers"] as? [String: Any])?["time"] as? [String: Any])
        #expect(entry["args"] as? [String] == ["run", "--profiles", sandbox.profiles, "time"])
        let codex = try run(["codex", "time"], sandbox: sandbox, explicit: true)
        #expect(codex.stdout.contains("args = [\"run\", \"--profiles\", \"\(sandbox.profiles)\", \"time\"]"))
    }

    @Test("a name without a profile is refused with the no-profile error")
    func missing() throws {
        let sandbox = try ProfileCommandSandbox()
        let output = try run(["claude", "nope"], sandbox: sandbox)
        #expect(output.status == 1)
        #expect(output.stdout == "")
        #expect(output.stderr == "mcpjail: no profile 'nope' in \(sandbox.profiles) (the profiles are the allowlist)\n")
    }

    @Test("an invalid profile is refused with its problems")
    func invalid() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.write("bad", "[server]\ncommand = \"relative\"\n")
        let output = try run(["cursor", "bad"], sandbox: sandbox)
        #expect(output.status == 1)
        #expect(output.stdout == "")
        #expect(output.stderr.hasPrefix("mcpjail: invalid profile \(sandbox.profiles)/bad.toml:\n"))
    }

    @Test("an unknown client is a usage error")
    func unknownClient() {
        #expect(throws: (any Error).self) { try ClientConfig.parse(["zed", "time"]) }
    }

    @Test("outside the mcpjail binary the command falls back to 'mcpjail' on PATH")
    func executableFallback() {
        // The test runner is not called mcpjail.
        #expect(ClientConfig.currentExecutable() == "mcpjail")
    }
}
