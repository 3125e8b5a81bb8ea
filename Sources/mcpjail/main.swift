// mcpjail's entry point. Everything lives in MCPJailCommands so that tests can drive it.
import MCPJailCommands

await MCPJail.main()
