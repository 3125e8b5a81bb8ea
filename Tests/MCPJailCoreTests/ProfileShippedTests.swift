import Foundation
import Testing
@testable import MCPJailCore

/// The profiles in the repository's `profiles/`, including the reference, must load.
@Suite("Shipped profiles")
struct ProfileShippedTests {
    static let projectRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let profilesDirectory = projectRoot + "/profiles"
    /// `make deps` installs the venv; without it only the command checks can fail.
    static let venvInstalled = FileManager.default.isExecutableFile(
        atPath: projectRoot + "/.venv/bin/mcp-server-time")

    static let shipped: [String] = {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: profilesDirectory)) ?? []
        return entries.filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
    }()

    @Test("the reference, time and git are shipped")
    func shippedSet() {
        #expect(Set(Self.shipped).isSuperset(of: ["REFERENCE", "time", "git"]))
    }

    @Test("every shipped profile loads", arguments: shipped)
    func loads(name: String) throws {
        let store = ProfileStore(directories: [Self.profilesDirectory])
        do {
            let profile = try store.load(name)
            #expect(profile.server.command.hasPrefix(Self.projectRoot + "/.venv/bin/"))
            #expect(profile.filesystem.readWrite.isEmpty)
        } catch let error as ProfileError {
            // In CI `make test` has run `make deps`: a missing venv is a failure there.
            if Self.venvInstalled || ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("\(error)")
            } else {
                // Without `make deps` only the command's existence may fail.
                #expect(error.problems.allSatisfy { $0.keyPath == "server.command" && $0.message.hasSuffix("does not exist") })
            }
        }
    }

    @Test("the reference spells out every key of every table")
    func referenceIsComplete() throws {
        let text = try String(contentsOfFile: Self.profilesDirectory + "/REFERENCE.toml", encoding: .utf8)
        for key in [
            "description =", "[server]", "command =", "args =", "env =", "workdir =", "stop_timeout =", "code =", "pinned =",
            "[filesystem]", "read_only =", "read_write =", "tmpfs =", "[limits]", "max_message =", "memory =", "pids =", "cpu =", "open_files =",
            "file_size =", "cpu_time =", "wall_time =", "enforce =", "relay_spin =", "[seccomp]", "allow =", "deny =", "[tools.",
            "call_timeout =", "[auth]", "required =", "keys =", "issuer =", "audience =", "clock_skew =", "rate =",
            "[resources]", "[prompts]", "[secrets]", "[audit]", "log_arguments =", "[tools]", "default =", "scope =",
            "timeout =", "strict =", ".arguments]", "write =", "idempotency_fields =", "idempotency_ttl =", "block_suspicious =",
            "${PROFILE_DIR}", "[network]", "egress =", "max_connections =", "idle_timeout =",
        ] {
            #expect(text.contains(key), "REFERENCE.toml does not mention \(key)")
        }
        let profile = try ProfileParser.parse(
            data: Data(text.utf8), path: "REFERENCE.toml", name: "REFERENCE",
            profileDirectory: Self.profilesDirectory, checkCommand: false)
        // Its values are the defaults (where a default exists).
        #expect(profile.server.workdir == "/")
        #expect(profile.server.stopTimeout == .seconds(2))
        #expect(profile.server.code == [])
        #expect(profile.limits == Profile.Limits())
        #expect(profile.seccomp == Profile.Seccomp())
        #expect(profile.filesystem.readWrite == [])
    }

    @Test("git serves the checkout it ships in, read-only")
    func gitProfile() throws {
        let profile = try ProfileParser.parse(
            data: Data(contentsOf: URL(fileURLWithPath: Self.profilesDirectory + "/git.toml")), path: "git.toml",
            name: "git", profileDirectory: Self.profilesDirectory, checkCommand: false)
        #expect(profile.server.args == ["--repository", Self.projectRoot])
        #expect(profile.filesystem.readOnly.contains(Self.projectRoot))
        #expect(profile.tools.keys.contains("git_status"))
    }
}
