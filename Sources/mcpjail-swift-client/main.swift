// mcpjail-swift-client: a real MCP client built on the official Swift SDK
// (modelcontextprotocol/swift-sdk), used by the integration tests to drive `mcpjail run`
// with a second, independent client implementation.
//
//   mcpjail-swift-client [--tool NAME] [--arguments JSON] -- COMMAND [ARGS...]
//
// Starts COMMAND with its stdin/stdout on pipes, connects the SDK's StdioTransport to them,
// initializes, lists the tools, optionally calls one, and prints one JSON object on stdout:
//   {"protocolVersion": ..., "serverInfo": {...}, "tools": [names], "call": {"content": [...], "isError": ...}}
// Exit status: 0 on success, 1 on any client-side failure (message on stderr).
import Foundation
import MCP

struct Options {
    var tool: String?
    var arguments: [String: Value] = [:]
    var command: [String] = []
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mcpjail-swift-client: \(message)\n".utf8))
    exit(1)
}

func parseOptions() -> Options {
    var options = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    while let first = args.first {
        args.removeFirst()
        switch first {
        case "--tool":
            guard let name = args.first else { fail("--tool needs a value") }
            args.removeFirst()
            options.tool = name
        case "--arguments":
            guard let json = args.first else { fail("--arguments needs a value") }
            args.removeFirst()
            do {
                options.arguments = try JSONDecoder().decode([String: Value].self, from: Data(json.utf8))
            } catch {
                fail("--arguments is not a JSON object: \(error)")
            }
        case "--":
            options.command = args
            args = []
        default:
            fail("unknown option \(first) (usage: mcpjail-swift-client [--tool NAME] [--arguments JSON] -- COMMAND [ARGS...])")
        }
    }
    if options.command.isEmpty { fail("no server command given after --") }
    return options
}

struct Report: Encodable {
    var protocolVersion: String
    var serverInfo: Server.Info
    var tools: [String]
    var call: CallReport?
}

struct CallReport: Encodable {
    var content: [Tool.Content]
    var isError: Bool?
}

let options = parseOptions()

let process = Process()
process.executableURL = URL(fileURLWithPath: options.command[0])
process.arguments = Array(options.command.dropFirst())
let toServer = Pipe()
let fromServer = Pipe()
process.standardInput = toServer
process.standardOutput = fromServer
// The server's stderr stays ours (the test captures it).
do {
    try process.run()
} catch {
    fail("cannot start \(options.command[0]): \(error)")
}

// The SDK's stdio transport over the child's pipes (FileDescriptor comes from swift-system).
let transport = StdioTransport(
    input: .init(rawValue: fromServer.fileHandleForReading.fileDescriptor),
    output: .init(rawValue: toServer.fileHandleForWriting.fileDescriptor)
)
let client = Client(name: "mcpjail-swift-client", version: "0.1.0")

var exitCode: Int32 = 0
do {
    let initialized = try await client.connect(transport: transport)
    let listed = try await client.listTools()
    var report = Report(
        protocolVersion: initialized.protocolVersion,
        serverInfo: initialized.serverInfo,
        tools: listed.tools.map(\.name),
        call: nil
    )
    if let tool = options.tool {
        let result: (content: [Tool.Content], isError: Bool?) = try await client.callTool(
            name: tool, arguments: options.arguments)
        report.call = CallReport(content: result.content, isError: result.isError)
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    FileHandle.standardOutput.write(try encoder.encode(report))
    FileHandle.standardOutput.write(Data("\n".utf8))
} catch {
    FileHandle.standardError.write(Data("mcpjail-swift-client: \(error)\n".utf8))
    exitCode = 1
}

await client.disconnect()
// Closing our end of the server's stdin is the stdio way of saying goodbye.
try? toServer.fileHandleForWriting.close()
process.waitUntilExit()
exit(exitCode)
