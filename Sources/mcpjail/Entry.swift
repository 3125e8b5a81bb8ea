// mcpjail's entry point. Everything lives in MCPJailCommands so that tests can drive it.
import MCPJailCommands

@main
enum Entry {
    static func main() {
        MCPJail.launch()
    }
}
