import Foundation
import Glibc
import MCPJailCore

/// What a server offers now, read the way a client would: `mcpjail run NAME` (so the server
/// runs jailed, with its file pins verified), `initialize`, then every page of `tools/list`.
/// The relay records every tool definition that passes (``ToolReview``) in the state
/// directory when the session ends; that record is the answer. For `pin`, `diff`, `approve`.
enum ToolListing {
    static let timeoutSeconds = 60.0

    static func observe(profile: Profile, state: StateDirectory) throws(MCPJailError) -> ToolLock {
        let seenPath = state.toolsSeen(profile.name)
        unlink(seenPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["run", profile.name, "--profiles", (profile.path as NSString).deletingLastPathComponent]
        var environment = ProcessInfo.processInfo.environment
        environment["MCPJAIL_STATE_DIR"] = state.path
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw MCPJailError(.spawnFailed, "cannot start mcpjail run \(profile.name): \(error.localizedDescription)")
        }
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds, execute: watchdog)
        defer { watchdog.cancel() }
        var reader = LineSource(handle: output.fileHandleForReading)
        func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
        func reply(to id: String) -> JSONValue? {
            while let line = reader.next() {
                if let message = try? JSONParser.parse(line), message["id"]?.stringValue == id { return message }
            }
            return nil
        }
        send(#"{"jsonrpc":"2.0","id":"pin-init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpjail-pin","version":"1"}}}"#)
        var failure: String? = nil
        if let initialized = reply(to: "pin-init"), initialized["result"] != nil {
            send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            var cursor: String? = nil
            var page = 0
            repeat {
                page += 1
                let params = cursor.map { #"{"cursor":"# + JSONWriter.quoted($0) + "}" } ?? "{}"
                send(#"{"jsonrpc":"2.0","id":"pin-list-\#(page)","method":"tools/list","params":"# + params + "}")
                guard let listed = reply(to: "pin-list-\(page)"), let result = listed["result"] else {
                    failure = "the server did not answer tools/list"
                    break
                }
                cursor = result["nextCursor"]?.stringValue
            } while cursor != nil && page < 100
        } else {
            failure = "the server did not answer initialize"
        }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if let failure {
            throw MCPJailError(
                .spawnFailed, "cannot list the tools of \(profile.name): \(failure)",
                hint: stderr.split(separator: "\n").last.map(String.init))
        }
        guard let data = FileManager.default.contents(atPath: seenPath) else {
            throw MCPJailError(.io, "the session of \(profile.name) recorded no tools in \(seenPath)")
        }
        return try ToolLock.decode(Array(data), file: seenPath)
    }

    /// Newline-delimited lines from a pipe.
    struct LineSource {
        let handle: FileHandle
        var buffer: [UInt8] = []

        mutating func next() -> [UInt8]? {
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    return line
                }
                let chunk = handle.availableData
                if chunk.isEmpty { return nil }
                buffer += chunk
            }
        }
    }
}
