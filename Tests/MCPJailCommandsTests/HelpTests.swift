import ArgumentParser
import Testing
@testable import MCPJailCommands

/// Golden-ish help tests: every profile command explains itself and shows examples.
@Suite("Help text of the profile commands")
struct HelpTests {
    @Test("list")
    func list() {
        let help = MCPJail.helpMessage(for: List.self)
        #expect(help.contains("List the allowlisted servers"))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail list --json"))
        #expect(help.contains("--profiles <dir>"))
        #expect(help.contains("--json"))
    }

    @Test("check")
    func check() {
        let help = MCPJail.helpMessage(for: Check.self)
        #expect(help.contains("Validate a profile"))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail check time"))
        #expect(help.contains("mcpjail check time --json"))
        #expect(help.contains("--profiles <dir>"))
        #expect(help.contains("<name>"))
    }

    @Test("client-config")
    func clientConfig() {
        let help = MCPJail.helpMessage(for: ClientConfig.self)
        #expect(help.contains("USAGE: mcpjail client-config"))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail client-config claude time"))
        #expect(help.contains("mcpjail client-config vscode git"))
        for client in ["claude", "vscode", "cursor", "codex"] {
            #expect(help.contains(client))
        }
        #expect(help.contains("--profiles <dir>"))
    }
}

@Suite("Help text of pin")
struct PinHelpTests {
    @Test func pin() {
        let help = MCPJail.helpMessage(for: Pin.self)
        #expect(help.contains("USAGE: mcpjail pin [--profiles <dir>] [--check] [--no-tools] <name>"))
        #expect(help.contains("Pin a server's command and code: write NAME.lock beside NAME.toml."))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail pin time "))
        #expect(help.contains("mcpjail pin time --check"))
        #expect(help.contains("pinned = false"))
        #expect(help.contains("--check"))
    }
}

@Suite("Help text of run and the root command")
struct RunHelpTests {
    @Test func run() {
        let help = MCPJail.helpMessage(for: Run.self)
        #expect(help.contains("USAGE: mcpjail run [--profiles <dir>] <name>"))
        #expect(help.contains("Examples:"))
        #expect(help.contains("mcpjail run time"))
        #expect(help.contains("allowlist"))
    }

    @Test func root() {
        let help = MCPJail.helpMessage()
        for command in ["run", "list", "check", "pin", "logs", "client-config", "token", "idempotency", "ps", "revoke", "diff", "approve"] {
            #expect(help.contains("  \(command)"), "root help does not list \(command)")
        }
        #expect(help.contains("Examples:"))
        #expect(MCPJail.configuration.version == MCPJail.version)
    }
}
