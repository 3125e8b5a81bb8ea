import MCPJailCore

/// Builds a session's ``RelayPolicy`` from its profile: loads the auth keys (an error
/// before the server starts, naming the file) and wires the JSON Schema compiler.
enum SessionPolicy {
    static func make(
        profile: Profile, secretValues: [String], clientEnvironment: [String: String]
    ) throws(MCPJailError) -> RelayPolicy {
        let authenticate: (any RequestCheck)? =
            profile.auth.required ? try AuthCheck(auth: profile.auth, clientEnvironment: clientEnvironment) : nil
        // A pinned profile's reviewed tool definitions, when `mcpjail pin` recorded them.
        let toolPins = profile.server.pinned ? try ToolLock.load(forProfileAt: profile.path, name: profile.name)?.pins : nil
        return RelayPolicy(
            profile: profile, authenticate: authenticate, secretValues: secretValues, compile: ToolSchemas.compile,
            toolPins: toolPins)
    }
}
