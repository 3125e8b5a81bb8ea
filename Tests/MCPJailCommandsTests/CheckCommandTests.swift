import Foundation
import MCPJailCore
import Testing
@testable import MCPJailCommands

/// A temporary profile directory for the profile commands' tests.
final class ProfileCommandSandbox {
    let root: String
    var profiles: String { root + "/profiles" }
    let command: String

    init() throws {
        root = NSTemporaryDirectory() + "mcpjail-command-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/profiles", withIntermediateDirectories: true)
        command = root + "/bin/server"
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try Data("#!/bin/sh\nexit 0\n".utf8).write(to: URL(fileURLWithPath: command))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: command)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ name: String, _ contents: String) throws {
        try Data(contents.utf8).write(to: URL(fileURLWithPath: profiles + "/\(name).toml"))
    }

    /// A valid profile running the sandbox's executable.
    func writeValid(_ name: String, description: String = "") throws {
        try write(name, "description = \"\(description)\"\n[server]\ncommand = \"\(command)\"\n[tools.echo]\n")
    }

    var store: ProfileStore { ProfileStore(directories: [profiles]) }
}

@Suite("mcpjail check")
struct CheckCommandTests {
    @Test("a valid profile prints the effective policy and exits 0")
    func valid() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time", description: "Time tools.")
        let check = try Check.parse(["time", "--profiles", sandbox.profiles])
        let output = check.output(store: check.profileOptions.store())
        #expect(output.status == 0)
        #expect(output.stderr == "")
        #expect(output.stdout.contains("description = \"Time tools.\""))
        #expect(output.stdout.contains("command = \"\(sandbox.command)\""))
        #expect(output.stdout.contains("workdir = \"/\""))  // defaults filled in
        #expect(output.stdout.contains("stop_timeout = \"2s\""))
        #expect(output.stdout.contains("max_message = \"16M\""))
        #expect(output.stdout.contains("[tools.echo]"))
    }

    @Test("--json prints the policy as JSON")
    func validJSON() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.writeValid("time")
        let check = try Check.parse(["time", "--json", "--profiles", sandbox.profiles])
        let output = check.output(store: check.profileOptions.store())
        #expect(output.status == 0)
        let object = try #require(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["name"] as? String == "time")
        #expect((object["server"] as? [String: Any])?["command"] as? String == sandbox.command)
        #expect((object["limits"] as? [String: Any])?["max_message_bytes"] as? Int == 16 << 20)
    }

    @Test("an invalid profile lists every problem on stderr and exits 1")
    func invalid() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.write("bad", """
            [server]
            command = "\(sandbox.command)"
            comand = "x"
            stop_timeout = "soon"
            [filesystem]
            read_only = ["relative"]
            """)
        let check = try Check.parse(["bad", "--profiles", sandbox.profiles])
        let output = check.output(store: check.profileOptions.store())
        let file = sandbox.profiles + "/bad.toml"
        #expect(output.status == 1)
        #expect(output.stdout == "")
        let lines = output.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "mcpjail: invalid profile \(file):")
        #expect(lines.count == 4)
        #expect(lines[1] == "\(file):3: server.comand: unknown key (did you mean 'command'?)")
        #expect(lines[2].hasPrefix("\(file):4: server.stop_timeout: "))
        #expect(lines[3].hasPrefix("\(file):6: filesystem.read_only[0]: "))
    }

    @Test("--json on an invalid profile also prints the problems as JSON")
    func invalidJSON() throws {
        let sandbox = try ProfileCommandSandbox()
        try sandbox.write("bad", "[server]\ncomand = \"x\"\n")
        let check = try Check.parse(["bad", "--json", "--profiles", sandbox.profiles])
        let output = check.output(store: check.profileOptions.store())
        #expect(output.status == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["valid"] as? Bool == false)
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.map { $0["key_path"] as? String } == ["server.command", "server.comand"])
        #expect(problems.map { $0["line"] as? Int } == [1, 2])
    }

    @Test("a missing profile is the no-profile error")
    func missing() throws {
        let sandbox = try ProfileCommandSandbox()
        for name in ["nope", "../profiles/x", ""] {
            let check = try Check.parse([name, "--profiles", sandbox.profiles])
            let output = check.output(store: check.profileOptions.store())
            #expect(output.status == 1)
            #expect(output.stdout == "")
            #expect(output.stderr.hasPrefix("mcpjail: no profile '"))
            #expect(output.stderr.hasSuffix(" in \(sandbox.profiles) (the profiles are the allowlist)\n"))
        }
    }

    @Test("--profiles is made absolute")
    func relativeProfiles() throws {
        let check = try Check.parse(["time", "--profiles", "some/dir"])
        #expect(check.profileOptions.store(environment: [:]).directories
            == [FileManager.default.currentDirectoryPath + "/some/dir"])
        #expect(check.profileOptions.isExplicit(environment: [:]))
        let bare = try Check.parse(["time"])
        #expect(!bare.profileOptions.isExplicit(environment: ["HOME": "/h"]))
        #expect(bare.profileOptions.isExplicit(environment: ["MCPJAIL_PROFILES": "/p"]))
    }
}

@Suite struct CheckIdentityNoteTests {
    @Test func saysWhoTheServerRunsAs() {
        #expect(Check.identityNote(isRoot: true, uid: 0).contains("runs as nobody (uid 65534, gid 65534), supplementary groups dropped"))
        let user = Check.identityNote(isRoot: false, uid: 1000)
        #expect(user.contains("uid 1000") && user.contains("cannot drop") && user.contains("supplementary groups"))
        #expect(user.split(separator: "\n").allSatisfy { $0.hasPrefix("#") })
    }
}
