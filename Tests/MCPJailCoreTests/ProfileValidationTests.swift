import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile validation")
struct ProfileValidationTests {
    @Test("a minimal profile gets every default")
    func minimalProfileDefaults() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let profile = try sandbox.load("""
            [server]
            command = "\(command)"
            """)
        #expect(profile.name == "test")
        #expect(profile.path == sandbox.root + "/profiles/test.toml")
        #expect(profile.description == "")
        #expect(profile.server.command == command)
        #expect(profile.server.args == [])
        #expect(profile.server.env == [:])
        #expect(profile.server.workdir == "/")
        #expect(profile.server.stopTimeout == .seconds(2))
        #expect(profile.filesystem == Profile.Filesystem(readOnly: [], readWrite: [], tmpfs: [:]))
        #expect(profile.limits.maxMessageBytes == 16 * 1024 * 1024)
        #expect(profile.tools.isEmpty)
        #expect(profile.digest.count == 64)
        #expect(profile.digest.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }

    @Test("every key of a full profile is read")
    func fullProfile() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable("srv/time/bin/mcp-server-time")
        let profile = try sandbox.load("""
            description = "Time and timezone tools."
            [server]
            command = "\(command)"
            args = ["--local-timezone=UTC", "--flag"]
            env = { TZ = "UTC", LANG = "C.UTF-8" }
            workdir = "/srv//time/./data/"
            stop_timeout = "500ms"
            [filesystem]
            read_only = ["/usr", "/etc/ssl", "/srv/mcp/time"]
            read_write = ["/var/cache/time"]
            tmpfs = { "/tmp" = "64M", "/run" = 1048576 }
            [limits]
            max_message = "1MiB"
            [tools.get_current_time]
            [tools."convert.time"]
            """)
        #expect(profile.description == "Time and timezone tools.")
        #expect(profile.server.args == ["--local-timezone=UTC", "--flag"])
        #expect(profile.server.env == ["TZ": "UTC", "LANG": "C.UTF-8"])
        #expect(profile.server.workdir == "/srv/time/data")
        #expect(profile.server.stopTimeout == .milliseconds(500))
        #expect(profile.filesystem.readOnly == ["/usr", "/etc/ssl", "/srv/mcp/time"])
        #expect(profile.filesystem.readWrite == ["/var/cache/time"])
        #expect(profile.filesystem.tmpfs == ["/tmp": 64 << 20, "/run": 1 << 20])
        #expect(profile.limits.maxMessageBytes == 1 << 20)
        #expect(Set(profile.tools.keys) == ["get_current_time", "convert.time"])
    }

    @Test("the digest is the SHA-256 of the file's bytes")
    func digestOfBytes() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let text = "[server]\ncommand = \"\(command)\"\n"
        let first = try sandbox.load(text)
        let second = try sandbox.load(text + "# a comment changes the digest\n")
        #expect(first.digest != second.digest)
        // An empty file is no profile (it names no server).
        let empty = try? ProfileParser.parse(data: Data(), path: "x.toml", name: "x", profileDirectory: "/")
        #expect(empty == nil)
        // Worked out when first read, and sha256sum's digest of the same bytes.
        let fixed = try ProfileParser.parse(
            bytes: Array("[server]\ncommand = \"\(command)\"\n".utf8), path: "/p/fixed.toml", name: "fixed",
            profileDirectory: "/p")
        var copy = fixed
        #expect(fixed.digest == Self.sha256sum("[server]\ncommand = \"\(command)\"\n"))
        #expect(copy.digest == fixed.digest)
        copy.digest = "set"
        #expect(copy.digest == "set" && fixed.digest != "set")
    }

    /// `sha256sum`'s digest of `text` (an implementation other than mcpjail's).
    private static func sha256sum(_ text: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    @Test("an unknown key names its line and key path, with a suggestion")
    func unknownKey() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            description = "x"
            [server]
            command = "\(command)"
            comand = "/x"
            """)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.line == 4)
        #expect(problem.keyPath == "server.comand")
        #expect(problem.message == "unknown key (did you mean 'command'?)")
        #expect(problem.file == sandbox.root + "/profiles/test.toml")
        #expect(problem.description == "\(sandbox.root)/profiles/test.toml:4: server.comand: unknown key (did you mean 'command'?)")
    }

    @Test("unknown tables and keys everywhere are errors")
    func unknownEverywhere() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [egress]
            allow = ["example.com"]
            [limits]
            memroy = "1G"
            [tools.echo]
            read_only = true
            """)
        #expect(problems.map(\.keyPath) == ["egress", "limits.memroy", "tools.echo.read_only"])
        #expect(problems.map(\.line) == [3, 6, 8])
        #expect(problems[0].message.contains("known here: description, server, filesystem, network, limits, seccomp, tools"))
        #expect(problems[1].message == "unknown key (did you mean 'memory'?)")
        #expect(problems[2].message == "unknown key (known here: scope, rate, timeout, strict, write, idempotency_fields, idempotency_ttl, arguments)")
    }

    @Test("wrong types are errors with the expected type")
    func wrongTypes() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            description = 42
            [server]
            command = ["/bin/true"]
            args = "--local-timezone=UTC"
            env = { TZ = 1 }
            workdir = true
            [filesystem]
            read_only = "/usr"
            tmpfs = ["/tmp"]
            [limits]
            max_message = 1.5
            """)
        let byPath = Dictionary(uniqueKeysWithValues: problems.map { ($0.keyPath, $0) })
        #expect(byPath["description"]?.message == "expected a string, found an integer")
        #expect(byPath["description"]?.line == 1)
        #expect(byPath["server.command"]?.message == "expected a string, found an array")
        #expect(byPath["server.command"]?.line == 3)
        #expect(byPath["server.args"]?.message == "expected an array of strings, found a string")
        #expect(byPath["server.env.TZ"]?.message == "expected a string, found an integer")
        #expect(byPath["server.env.TZ"]?.line == 5)
        #expect(byPath["server.workdir"]?.line == 6)
        #expect(byPath["filesystem.read_only"]?.line == 8)
        #expect(byPath["filesystem.tmpfs"]?.line == 9)
        #expect(byPath["limits.max_message"]?.line == 11)
        #expect(problems.count == 8)
    }

    @Test("a section of the wrong type is one error")
    func sectionWrongType() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            limits = "big"
            [server]
            command = "\(command)"
            """)
        #expect(problems.map(\.keyPath) == ["limits"])
        #expect(problems.first?.message == "expected a table [limits], found a string")
    }

    @Test("relative paths are errors", arguments: [
        ("read_only = [\"/usr\", \"usr/lib\"]", "filesystem.read_only[1]"),
        ("read_write = [\"./data\"]", "filesystem.read_write[0]"),
        ("tmpfs = { \"tmp\" = \"1M\" }", "filesystem.tmpfs.tmp"),
    ])
    func relativePaths(line: String, keyPath: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [filesystem]
            \(line)
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == keyPath)
        #expect(problems.first?.line == 4)
        #expect(problems.first?.message.contains("relative path") == true)
    }

    @Test("a relative command and workdir are errors")
    func relativeCommand() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            [server]
            command = "mcp-server-time"
            workdir = "srv"
            """)
        #expect(problems.map(\.keyPath) == ["server.command", "server.workdir"])
        #expect(problems.map(\.line) == [2, 3])
    }

    @Test("'..' components are errors, wherever they are")
    func dotDot() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            workdir = "/srv/../etc"
            [filesystem]
            read_only = [
              "/usr",
              "/srv/mcp/..",
              "${PROFILE_DIR}/x/../y",
            ]
            """)
        #expect(problems.map(\.keyPath) == ["server.workdir", "filesystem.read_only[1]", "filesystem.read_only[2]"])
        #expect(problems.map(\.line) == [3, 7, 8])
        #expect(problems.allSatisfy { $0.message.contains("'..'") })
    }

    @Test("bad sizes are errors", arguments: ["\"64MB\"", "\"lots\"", "\"-1\"", "0", "-5", "\"99999999999999T\"", "\"12X\""])
    func badSizes(value: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [limits]
            max_message = \(value)
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == "limits.max_message")
        #expect(problems.first?.line == 4)
    }

    @Test("bad durations are errors", arguments: ["\"2\"", "\"2 weeks\"", "2", "\"1.5s\"", "\"-1s\"", "\"25h\"", "\"s\""])
    func badDurations(value: String) throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            stop_timeout = \(value)
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == "server.stop_timeout")
        #expect(problems.first?.line == 3)
    }

    @Test("a missing command points at [server]; a missing [server] is named")
    func missingCommand() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            description = "no command"

            [server]
            args = []
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.keyPath == "server.command")
        #expect(problems.first?.line == 3)
        #expect(problems.first?.message.hasPrefix("required") == true)

        let noServer = try sandbox.problems("description = \"nothing\"\n")
        #expect(noServer.map(\.keyPath) == ["server"])
        #expect(noServer.first?.line == nil)
        #expect(noServer.first?.description == "\(sandbox.root)/profiles/test.toml: server: missing table [server]: it names the command to run")
    }

    @Test("the command must exist, be a file and be executable")
    func commandChecks() throws {
        let sandbox = try ProfileSandbox()
        let missing = try sandbox.problems("[server]\ncommand = \"\(sandbox.root)/nope\"\n")
        #expect(missing.map(\.message) == ["\(sandbox.root)/nope does not exist"])
        #expect(missing.first?.line == 2)

        let plain = try sandbox.write("plain", "data")
        let notExecutable = try sandbox.problems("[server]\ncommand = \"\(plain)\"\n")
        #expect(notExecutable.map(\.message) == ["\(plain) is not executable"])

        let directory = try sandbox.problems("[server]\ncommand = \"\(sandbox.root)\"\n")
        #expect(directory.first?.message.contains("is a directory") == true)
    }

    @Test("every problem is reported at once, in file order")
    func manyProblems() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            descripton = "typo"
            [server]
            command = "relative/server"
            args = ["ok", 3]
            env = { "1BAD" = "x", GOOD = "y" }
            stop_timeout = "forever"
            [filesystem]
            read_only = ["/usr", "/usr"]
            read_write = ["/usr", "/srv/../x"]
            tmpfs = { "/tmp" = "64MB" }
            [limits]
            max_message = "2G"
            extra = 1
            """)
        #expect(problems.map(\.keyPath) == [
            "descripton", "server.command", "server.args[1]", "server.env.1BAD", "server.stop_timeout",
            "filesystem.read_only[1]", "filesystem.read_write[1]", "filesystem.tmpfs.\"/tmp\"",
            "limits.max_message", "limits.extra",
        ])
        #expect(problems.map(\.line) == [1, 3, 4, 5, 6, 8, 9, 10, 12, 13])
        let error = ProfileError(problems: problems)
        #expect(error.description.split(separator: "\n").count == problems.count)
        #expect(error.mcpjailError.code == .invalidProfile)
        #expect(error.mcpjailError.description.hasPrefix("mcpjail: invalid profile \(sandbox.root)/profiles/test.toml:\n"))
    }

    @Test("read_write may not repeat read_only")
    func readWriteOverlap() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [filesystem]
            read_only = ["/srv/data"]
            read_write = ["/srv//data/"]
            """)
        #expect(problems.map(\.keyPath) == ["filesystem.read_write[0]"])
        #expect(problems.first?.line == 5)
    }

    @Test("environment names must be variable names")
    func envNames() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            [server.env]
            OK_1 = "yes"
            "WITH SPACE" = "no"
            "A=B" = "no"
            """)
        #expect(problems.map(\.keyPath) == ["server.env.\"WITH SPACE\"", "server.env.\"A=B\""])
        #expect(problems.map(\.line) == [5, 6])
    }

    @Test("a TOML syntax error names its line")
    func syntaxError() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            [server]
            command = "/bin/true"
            args = [ "unterminated
            """)
        #expect(problems.count == 1)
        #expect(problems.first?.line == 3)
        #expect(problems.first?.keyPath == "")
        #expect(problems.first?.message.hasPrefix("TOML syntax error") == true)
    }

    @Test("a duplicate key is a syntax error, not a silent override")
    func duplicateKey() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("[server]\ncommand = \"/bin/true\"\ncommand = \"/bin/sh\"\n")
        #expect(problems.count == 1)
        #expect(problems.first?.line == 3)
    }

    @Test("bytes that are not UTF-8, or NUL bytes, are refused")
    func badBytes() throws {
        #expect(throws: ProfileError.self) {
            try ProfileParser.parse(data: Data([0xFF, 0xFE, 0x41]), path: "x.toml", name: "x", profileDirectory: "/")
        }
        do {
            _ = try ProfileParser.parse(
                data: Data("[server]\ncommand = \"/bin/true\u{0}\"\n".utf8), path: "x.toml", name: "x",
                profileDirectory: "/")
            Issue.record("NUL accepted")
        } catch {
            #expect(error.problems.first?.line == 2)
        }
    }

    @Test("an unreadable or missing file is a problem, not a crash")
    func unreadable() throws {
        do {
            _ = try ProfileParser.load(path: "/nonexistent/x.toml", name: "x")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.problems.first?.message == "cannot read the file: no such file")
        }
        // A path through a file, and a directory where the file should be.
        for (path, reason) in [("/etc/passwd/x.toml", "no such file"), ("/tmp", "it is a directory")] {
            do {
                _ = try ProfileParser.load(path: path, name: "x")
                Issue.record("loaded \(path)")
            } catch {
                #expect(error.problems.first?.message == "cannot read the file: \(reason)")
            }
        }
    }
}
