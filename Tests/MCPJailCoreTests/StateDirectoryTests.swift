import Testing
@testable import MCPJailCore

@Suite struct StateDirectoryTests {
    @Test func rootUsesVarLib() {
        #expect(StateDirectory.resolve(environment: ["HOME": "/root"], isRoot: true).path == "/var/lib/mcpjail")
    }

    @Test func userUsesXDGStateHomeThenHome() {
        #expect(StateDirectory.resolve(environment: ["HOME": "/home/a", "XDG_STATE_HOME": "/x/state"], isRoot: false).path == "/x/state/mcpjail")
        #expect(StateDirectory.resolve(environment: ["HOME": "/home/a"], isRoot: false).path == "/home/a/.local/state/mcpjail")
        // A relative XDG_STATE_HOME is invalid by the XDG spec and ignored.
        #expect(StateDirectory.resolve(environment: ["HOME": "/home/a", "XDG_STATE_HOME": "rel"], isRoot: false).path == "/home/a/.local/state/mcpjail")
    }

    @Test func explicitOverrideWins() {
        let state = StateDirectory.resolve(environment: ["MCPJAIL_STATE_DIR": "/t/s", "HOME": "/home/a"], isRoot: true)
        #expect(state.path == "/t/s")
        #expect(state.auditLog == "/t/s/audit.jsonl")
        #expect(state.serverLog("time") == "/t/s/logs/time.stderr.log")
    }
}
