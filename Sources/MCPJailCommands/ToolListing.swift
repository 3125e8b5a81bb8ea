import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailLinux
import SystemPackage

/// What a server offers now, read the way a client would: `mcpjail run NAME` (so the server
/// runs jailed, with its file pins verified), `initialize`, then every page of `tools/list`.
/// The relay records every tool definition that passes (``ToolReview``) in the state
/// directory when the session ends; that record is the answer. For `pin`, `diff`, `approve`.
enum ToolListing {
    static let timeoutSeconds = 60.0

    static func observe(profile: Profile, state: StateDirectory) throws(MCPJailError) -> ToolLock {
        let seenPath = state.toolsSeen(profile.name)
        unlink(seenPath)
        var environment = ProcessInfo.processInfo.environment
        environment["MCPJAIL_STATE_DIR"] = state.path
        let profiles = FilePath(profile.path).removingLastComponent().string
        let process: ChildProcess
        let input: (read: Int32, write: Int32)
        let output: (read: Int32, write: Int32)
        let errors: (read: Int32, write: Int32)
        do {
            input = try FD.pipe()
            output = try FD.pipe()
            errors = try FD.pipe()
            process = try ChildProcess(
                "/proc/self/exe", ["run", profile.name, "--profiles", profiles], environment: environment,
                stdin: input.read, stdout: output.write, stderr: errors.write)
        } catch {
            throw MCPJailError(.spawnFailed, "cannot start mcpjail run \(profile.name): \(error)")
        }
        for fd in [input.read, output.write, errors.write] { FD.close(fd) }
        defer { for fd in [output.read, errors.read] { FD.close(fd) } }
        process.terminate(after: timeoutSeconds)
        // Drained as it comes, so that a chatty stderr cannot stall the child.
        let stderrText = StreamText(errors.read)
        var reader = LineSource(fd: output.read)
        func send(_ line: String) { try? FD.writeAll(input.write, Array((line + "\n").utf8)) }
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
        FD.close(input.write)
        process.wait()
        let stderr = stderrText.wait()
        if let failure {
            throw MCPJailError(
                .spawnFailed, "cannot list the tools of \(profile.name): \(failure)",
                hint: stderr.split(separator: "\n").last.map(String.init))
        }
        guard let data = FileContents.bytes(seenPath) else {
            throw MCPJailError(.io, "the session of \(profile.name) recorded no tools in \(seenPath)")
        }
        return try ToolLock.decode(data, file: seenPath)
    }

    /// Newline-delimited lines from a pipe.
    struct LineSource {
        let fd: Int32
        var buffer: [UInt8] = []

        mutating func next() -> [UInt8]? {
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    return line
                }
                let count = (try? chunk.withUnsafeMutableBytes { bytes throws(SystemCallError) in try FD.read(fd, into: bytes) }) ?? 0
                if count <= 0 { return nil }
                buffer += chunk[..<count]
            }
        }
    }

    /// Everything a pipe carries until end of file, read on a thread of its own.
    final class StreamText: @unchecked Sendable {
        private let done = Latch()
        private var text = ""  // written before `done` opens, read after

        init(_ fd: Int32) {
            Threads.start("mcpjail-stderr") { [self] in
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 16 * 1024)
                while true {
                    let count = (try? chunk.withUnsafeMutableBytes { buffer throws(SystemCallError) in try FD.read(fd, into: buffer) }) ?? 0
                    if count <= 0 { break }
                    bytes += chunk[..<count]
                }
                text = String(decoding: bytes, as: UTF8.self)
                done.open()
            }
        }

        /// The text, once the writers closed the pipe.
        func wait() -> String {
            done.wait()
            return text
        }
    }
}
