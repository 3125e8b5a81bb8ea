import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile names and the profile store")
struct ProfileStoreTests {
    @Test("valid names", arguments: ["time", "git", "a", "A.b_c-9", ".hidden", "..x", String(repeating: "a", count: 64)])
    func validNames(name: String) {
        #expect(ProfileName.isValid(name))
    }

    @Test("invalid names are refused", arguments: [
        "", ".", "..", "../etc", "a/b", "/etc/passwd", String(repeating: "a", count: 65), "a b", "tïme", "a\n", "a\0b",
    ])
    func invalidNames(name: String) {
        #expect(!ProfileName.isValid(name))
    }

    @Test("an invalid name is refused with the no-profile error, even if such a file exists")
    func invalidNameRefused() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        try sandbox.write("etc/passwd.toml", "[server]\ncommand = \"\(command)\"\n")
        let store = ProfileStore(directories: [sandbox.root + "/profiles"])
        for name in ["../etc/passwd", "", "a/b", String(repeating: "x", count: 65)] {
            do {
                _ = try store.load(name)
                Issue.record("loaded \(name)")
            } catch let error as MCPJailError {
                #expect(error.code == .noProfile)
            }
        }
    }

    @Test("a missing profile names every directory searched")
    func missingProfile() throws {
        let store = ProfileStore(directories: ["/nonexistent/one", "/nonexistent/two"])
        do {
            _ = try store.load("time")
            Issue.record("loaded a missing profile")
        } catch let error as MCPJailError {
            #expect(error.code == .noProfile)
            #expect(
                error.description
                    == "mcpjail: no profile 'time' in /nonexistent/one, /nonexistent/two (the profiles are the allowlist)")
        }
    }

    @Test("control characters in a refused name do not reach the terminal")
    func printableName() {
        let error = ProfileStore(directories: ["/x"]).noProfile("a\nb\u{1B}[31m")
        #expect(!error.message.contains("\n"))
        #expect(!error.message.contains("\u{1B}"))
    }

    @Test("the first directory holding NAME.toml wins")
    func precedence() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        try sandbox.write("first/time.toml", "description = \"first\"\n[server]\ncommand = \"\(command)\"\n")
        try sandbox.write("second/time.toml", "description = \"second\"\n[server]\ncommand = \"\(command)\"\n")
        try sandbox.write("second/git.toml", "description = \"second git\"\n[server]\ncommand = \"\(command)\"\n")
        let store = ProfileStore(directories: [sandbox.root + "/first", sandbox.root + "/second"])
        #expect(try store.load("time").description == "first")
        #expect(try store.load("git").description == "second git")
        #expect(try store.load("git").path == sandbox.root + "/second/git.toml")
        let listing = store.list()
        #expect(listing.map(\.name) == ["git", "time"])
        #expect(listing.map(\.path) == [sandbox.root + "/second/git.toml", sandbox.root + "/first/time.toml"])
    }

    @Test("a directory named NAME.toml is not a profile")
    func directoryIsNotProfile() throws {
        let sandbox = try ProfileSandbox()
        try FileManager.default.createDirectory(
            atPath: sandbox.root + "/profiles/time.toml", withIntermediateDirectories: true)
        let store = ProfileStore(directories: [sandbox.root + "/profiles"])
        #expect(throws: MCPJailError.self) { try store.load("time") }
        #expect(store.list().isEmpty)
    }

    @Test("list includes invalid profiles with their error and skips unusable names")
    func listIncludesInvalid() throws {
        let sandbox = try ProfileSandbox()
        let command = try sandbox.executable()
        try sandbox.write("profiles/good.toml", "[server]\ncommand = \"\(command)\"\n")
        try sandbox.write("profiles/bad.toml", "[server]\ncomand = \"\(command)\"\n")
        try sandbox.write("profiles/not a name.toml", "[server]\ncommand = \"\(command)\"\n")
        try sandbox.write("profiles/README.md", "not a profile")
        let listing = ProfileStore(directories: [sandbox.root + "/profiles", sandbox.root + "/missing"]).list()
        #expect(listing.map(\.name) == ["bad", "good"])
        #expect(listing[0].profile == nil)
        #expect(listing[0].error?.problems.map(\.keyPath) == ["server.command", "server.comand"])
        #expect(listing[1].isValid)
        #expect(listing[1].error == nil)
    }

    @Test("resolve: --profiles, then $MCPJAIL_PROFILES, then the user's and the system's")
    func resolve() {
        let env = ["HOME": "/home/u", "MCPJAIL_PROFILES": "/env/profiles"]
        #expect(ProfileStore.resolve(explicit: "/flag", environment: env).directories == ["/flag"])
        #expect(ProfileStore.resolve(explicit: nil, environment: env).directories == ["/env/profiles"])
        #expect(
            ProfileStore.resolve(explicit: nil, environment: ["HOME": "/home/u"]).directories
                == ["/home/u/.config/mcpjail/profiles", "/etc/mcpjail/profiles"])
        #expect(
            ProfileStore.resolve(explicit: nil, environment: ["HOME": "/home/u", "MCPJAIL_PROFILES": ""]).directories
                == ["/home/u/.config/mcpjail/profiles", "/etc/mcpjail/profiles"])
        #expect(ProfileStore.resolve(explicit: nil, environment: [:]).directories == ["/etc/mcpjail/profiles"])
        let relative = ProfileStore.resolve(explicit: "some/dir", environment: [:]).directories
        #expect(relative == [FileManager.default.currentDirectoryPath + "/some/dir"])
    }
}
