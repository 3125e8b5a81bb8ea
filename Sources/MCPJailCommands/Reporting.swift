import ArgumentParser
import FoundationEssentials
import Glibc
import Logging
import MCPJailCore
import MCPJailLinux

/// Prints `error` as the user's one line(s) on stderr (`mcpjail: what: why (hint: ...)`)
/// and returns the exit code to throw. Used by every command instead of ArgumentParser's
/// generic `Error:` prefix.
func reportFailure(_ error: any Error) -> ExitCode {
    let text: String
    switch error {
    case let error as MCPJailError: text = error.description
    case let error as ProfileError: text = error.mcpjailError.description
    default: text = "mcpjail: \(error)"
    }
    writeStandardError(text + "\n")
    return ExitCode(1)
}

/// Writes `text` to stderr in full, unbuffered (Foundation's `FileHandle` is not linked).
func writeStandardError(_ text: String) {
    try? FD.writeAll(STDERR_FILENO, Array(text.utf8))
}

/// Writes `text` to stdout in full, unbuffered.
func writeStandardOutput(_ text: String) {
    try? FD.writeAll(STDOUT_FILENO, Array(text.utf8))
}

/// Diagnostics go to stderr (an MCP client shows a server's stderr in its logs); the
/// level comes from `$MCPJAIL_LOG_LEVEL` (trace, debug, info, notice, warning, error).
func makeLogger(environment: [String: String] = ProcessInfo.processInfo.environment) -> Logger {
    var logger = Logger(label: "mcpjail") { label in StreamLogHandler.standardError(label: label) }
    logger.logLevel = environment["MCPJAIL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}
