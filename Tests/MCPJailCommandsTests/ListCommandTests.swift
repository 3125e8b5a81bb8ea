import Foundation
import MCPJailCore
import Testing
@testable import MCPJailCommands

@Suite("mcpjail list")
struct ListCommandTests {
    @Test("one aligned line per profile, invalid ones marked")
    func table() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        try sandbox.writeValid("a-much-longer-name")
        try sandbox.write("broken", "[server]\ncommand = \"relative\"\n")
        let list = try List.parse(["--profiles", sandbox.profiles])
        let output = list.output(store: list.profileOptions.store())
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.map { String($0.prefix { $0 != " " }) } == ["a-much-longer-name", "broken", "time"])
        // Aligned: the command column starts at the same offset on every line.
        let commandColumn = "a-much-longer-name  ".count
        #expect(lines[0].dropFirst(commandColumn).hasPrefix(sandbox.command))
        #expect(lines[2].dropFirst(commandColumn).hasPrefix(sandbox.command))
        #expect(lines[1].dropFirst(commandColumn).hasPrefix("(invalid: line 2: server.command: 'relative' is a relative path"))
        #expect(lines[0].hasSuffix(sandbox.profiles + "/a-much-longer-name.toml"))
        #expect(lines[1].hasSuffix(sandbox.profiles + "/broken.toml"))
    }

    @Test("--json is an array of {name, command, path, valid, error}")
    func json() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        try sandbox.write("broken", "[server]\ncommand = \"relative\"\n")
        let list = try List.parse(["--json", "--profiles", sandbox.profiles])
        let output = list.output(store: list.profileOptions.store())
        let array = try #require(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 2)
        #expect(array[0]["name"] as? String == "broken")
        #expect(array[0]["valid"] as? Bool == false)
        #expect(array[0]["command"] is NSNull)
        #expect((array[0]["error"] as? String)?.hasPrefix(sandbox.profiles + "/broken.toml:2: server.command: ") == true)
        #expect(array[1]["name"] as? String == "time")
        #expect(array[1]["valid"] as? Bool == true)
        #expect(array[1]["command"] as? String == sandbox.command)
        #expect(array[1]["path"] as? String == sandbox.profiles + "/time.toml")
        #expect(array[1]["error"] == nil)
    }

    @Test("no profiles: nothing on stdout, a note on stderr, exit 0")
    func empty() throws {
        let sandbox = try ProfileCommandSandbox()
        let list = try List.parse(["--profiles", sandbox.profiles])
        let output = list.output(store: list.profileOptions.store())
        #expect(output.status == 0)
        #expect(output.stdout == "")
        #expect(output.stderr.contains("no profiles in \(sandbox.profiles)"))
        let json = try List.parse(["--json", "--profiles", sandbox.profiles])
        let jsonOutput = json.output(store: json.profileOptions.store())
        let array = try JSONSerialization.jsonObject(with: Data(jsonOutput.stdout.utf8)) as? [Any]
        #expect(array?.isEmpty == true)
    }
}
