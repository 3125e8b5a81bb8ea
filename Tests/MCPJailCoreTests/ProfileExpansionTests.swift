import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile values: ${PROFILE_DIR}, paths, sizes, durations, locations")
struct ProfileExpansionTests {
    @Test("${PROFILE_DIR} expands to the profile's directory, with leading '..' allowed")
    func profileDir() throws {
        let sandbox = try ProfileSandbox()
        try sandbox.executable("project/.venv/bin/server")
        let profile = try sandbox.load("""
            [server]
            command = "${PROFILE_DIR}/../.venv/bin/server"
            args = ["--repository", "${PROFILE_DIR}/..", "--plain=..", "${NOT_EXPANDED}"]
            env = { DATA = "${PROFILE_DIR}/data" }
            workdir = "${PROFILE_DIR}"
            [filesystem]
            read_only = ["${PROFILE_DIR}/../.venv", "${PROFILE_DIR}/../../"]
            """, directory: "project/profiles")
        let project = sandbox.root + "/project"
        #expect(profile.server.command == project + "/.venv/bin/server")
        #expect(profile.server.args == ["--repository", project, "--plain=..", "${NOT_EXPANDED}"])
        #expect(profile.server.env == ["DATA": project + "/profiles/data"])
        #expect(profile.server.workdir == project + "/profiles")
        #expect(profile.filesystem.readOnly == [project + "/.venv", sandbox.root])
    }

    @Test("${PROFILE_DIR} follows a symlinked profile file to its real directory")
    func symlinkedProfile() throws {
        let sandbox = try ProfileSandbox()
        try sandbox.executable("checkout/.venv/bin/server")
        let real = try sandbox.write("checkout/profiles/time.toml", """
            [server]
            command = "${PROFILE_DIR}/../.venv/bin/server"
            """)
        try FileManager.default.createDirectory(atPath: sandbox.root + "/config", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: sandbox.root + "/config/time.toml", withDestinationPath: real)
        let profile = try ProfileStore(directories: [sandbox.root + "/config"]).load("time")
        #expect(profile.path == sandbox.root + "/config/time.toml")
        #expect(profile.server.command.hasSuffix("/checkout/.venv/bin/server"))
    }

    @Test("${PROFILE_DIR} in the wrong place is an error")
    func misplacedVariable() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        let problems = try sandbox.problems("""
            [server]
            command = "\(command)"
            args = ["--repository=${PROFILE_DIR}/.."]
            [filesystem]
            read_only = ["/srv/${PROFILE_DIR}", "${PROFILE_DIR}x", "${HOME}/x", "${PROFILE_DIR}/a$/${HOME}"]
            """)
        #expect(problems.map(\.keyPath) == [
            "server.args[0]", "filesystem.read_only[0]", "filesystem.read_only[1]", "filesystem.read_only[2]",
            "filesystem.read_only[3]",
        ])
    }

    @Test("paths are normalized lexically")
    func normalization() throws {
        #expect(try PathSyntax.expand("/a//b/./c/", profileDirectory: "/p").get() == "/a/b/c")
        #expect(try PathSyntax.expand("/", profileDirectory: "/p").get() == "/")
        #expect(try PathSyntax.expand("${PROFILE_DIR}/../../..", profileDirectory: "/p/q").get() == "/")
        #expect(try PathSyntax.expand("${PROFILE_DIR}/./../x/", profileDirectory: "/p/q").get() == "/p/x")
        #expect((try? PathSyntax.expand("/a/..", profileDirectory: "/p").get()) == nil)
        #expect((try? PathSyntax.expand("", profileDirectory: "/p").get()) == nil)
    }

    static let sizeCases: [(String, Int)] = [
        ("64M", 64 << 20), ("16MiB", 16 << 20), ("512K", 512 << 10), ("1G", 1 << 30), ("1g", 1 << 30),
        ("2TiB", 2 << 40), ("100B", 100), ("65536", 65536), (" 8 k ", 8 << 10),
    ]

    @Test("sizes", arguments: sizeCases)
    func sizes(text: String, bytes: Int) throws {
        #expect(try SizeSyntax.parse(text).get() == bytes)
    }

    @Test("size formatting is exact and short")
    func sizeFormat() {
        #expect(SizeSyntax.format(16 << 20) == "16M")
        #expect(SizeSyntax.format(1536) == "1536")
        #expect(SizeSyntax.format(3 << 10) == "3K")
        #expect(SizeSyntax.format(1 << 40) == "1T")
    }

    static let durationCases: [(String, Duration)] = [
        ("500ms", .milliseconds(500)), ("2s", .seconds(2)), ("15m", .seconds(900)),
        ("24h", .seconds(86400)), ("0s", .zero),
    ]

    @Test("durations", arguments: durationCases)
    func durations(text: String, duration: Duration) throws {
        #expect(try DurationSyntax.parse(text).get() == duration)
        #expect(try DurationSyntax.parse(DurationSyntax.format(duration)).get() == duration)
    }

    @Test("the locator finds keys in headers, dotted keys, inline tables and multi-line arrays")
    func locator() {
        let source = """
            # comment [not.a.table]
            a.b = "x"   # a.b
            "quoted key" = 'lit'
            [t1]
            s = \"\"\"
            multi [x] = 1
            line\"\"\"
            arr = [
              1,   # one
              { k = "v",
                j = [2, 3] },
              "three",
            ]
            [t1.sub]
            inline = { "/tmp" = "64M", n.m = 1 }
            [[aot]]
            x = 1
            [[aot]]
            x = 2
            """
        let locator = TOMLLocator(source: source)
        func line(_ components: [KeyPath.Component]) -> Int? { locator.line(for: KeyPath(components)) }
        #expect(line([.key("a"), .key("b")]) == 2)
        #expect(line([.key("quoted key")]) == 3)
        #expect(line([.key("t1")]) == 4)
        #expect(line([.key("t1"), .key("s")]) == 5)
        #expect(line([.key("multi")]) == nil)
        #expect(line([.key("t1"), .key("arr")]) == 8)
        #expect(line([.key("t1"), .key("arr"), .index(0)]) == 9)
        #expect(line([.key("t1"), .key("arr"), .index(1), .key("j")]) == 11)
        #expect(line([.key("t1"), .key("arr"), .index(1), .key("j"), .index(1)]) == 11)
        #expect(line([.key("t1"), .key("arr"), .index(2)]) == 12)
        #expect(line([.key("t1"), .key("sub"), .key("inline"), .key("/tmp")]) == 15)
        #expect(line([.key("t1"), .key("sub"), .key("inline"), .key("n"), .key("m")]) == 15)
        #expect(line([.key("aot"), .index(1), .key("x")]) == 19)
        #expect(line([.key("t1"), .key("nothing")]) == 4)  // nearest ancestor
    }

    @Test("key paths quote what is not a bare key")
    func keyPathRendering() {
        let path = KeyPath([.key("filesystem"), .key("tmpfs"), .key("/tmp")])
        #expect(path.description == "filesystem.tmpfs.\"/tmp\"")
        #expect(KeyPath([.key("a"), .key("b"), .index(3)]).description == "a.b[3]")
    }
}
