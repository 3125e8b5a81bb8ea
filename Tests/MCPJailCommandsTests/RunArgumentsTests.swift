import ArgumentParser
import Testing
@testable import MCPJailCommands

/// `mcpjail run`'s hand-read shapes must mean exactly what ArgumentParser makes of them,
/// and everything else must be left to ArgumentParser.
@Suite("mcpjail run's quick argument reading")
struct RunArgumentsTests {
    static let taken: [[String]] = [
        ["time"],
        ["time", "--profiles", "/etc/p"],
        ["--profiles", "/etc/p", "time"],
        ["time", "--profiles=/etc/p"],
        ["my.server-1_2"],
        ["../escape"],  // read as a name; the profile store refuses it as ArgumentParser's path would
    ]

    static let leftToArgumentParser: [[String]] = [
        [],
        ["--help"],
        ["-h"],
        ["time", "--help"],
        ["time", "extra"],
        ["time", "--profiles"],
        ["time", "--profiles", "--help"],
        ["time", "--profiles", "/a", "--profiles", "/b"],
        ["time", "--verbose"],
        ["--profiles", "/etc/p"],
        ["-"],
        ["--profiles=", "git"],
    ]

    @Test("the usual shapes read as ArgumentParser reads them", arguments: taken)
    func sameAsArgumentParser(_ arguments: [String]) throws {
        let quick = try #require(Run.quickArguments(arguments))
        let parsed = try Run.parse(arguments)
        #expect(quick.name == parsed.name)
        #expect(quick.profiles == parsed.profileOptions.profiles)
    }

    @Test("anything else goes to ArgumentParser", arguments: leftToArgumentParser)
    func leftAlone(_ arguments: [String]) {
        #expect(Run.quickArguments(arguments) == nil)
    }
}
