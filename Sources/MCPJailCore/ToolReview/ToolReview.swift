import FoundationEssentials
import Glibc

/// The reviewed definitions of a server's tools, as `mcpjail pin` / `mcpjail approve`
/// recorded them in the lock: a fingerprint per tool and of the server's `instructions`.
public struct ToolPins: Sendable, Equatable {
    /// Tool name → ``ToolFingerprint/digest(ofTool:)``.
    public var tools: [String: String]
    /// ``ToolFingerprint/digest(ofInstructions:)``, nil when the server gave none.
    public var instructions: String?

    public init(tools: [String: String], instructions: String?) {
        self.tools = tools
        self.instructions = instructions
    }
}

/// The rug-pull defence in the relay: a tool whose definition is not the reviewed one
/// (new, or changed in any reviewed field) is withheld from `tools/list` and refused when
/// called; changed `instructions` withhold every tool. With `[tools] block_suspicious`,
/// tools whose text carries injection markers (``InjectionScanner``) are withheld too.
/// What the relay saw is kept (``observed``) so `mcpjail diff` can show it.
public final class ToolReview: @unchecked Sendable {  // `state` only under `lock`
    public enum Verdict: Sendable, Equatable {
        case reviewed
        case withheld(String)
    }

    private let pins: ToolPins?
    private let blockSuspicious: Bool
    private let lock = Condition()  // used as a plain mutex
    private var instructionsChanged = false
    private var seenInstructions: String??
    private var seenServerInfo: JSONValue?
    private var seenTools: [String: JSONValue] = [:]

    /// `pins` nil: tool definitions are not pinned (only `block_suspicious` applies).
    public init(pins: ToolPins?, blockSuspicious: Bool) {
        self.pins = pins
        self.blockSuspicious = blockSuspicious
    }

    public var isActive: Bool { pins != nil || blockSuspicious }

    /// The server's `instructions` and `serverInfo` from its `initialize` (or
    /// `server/discover`) result.
    public func observe(instructions: String?, serverInfo: JSONValue?) {
        lock.lock()
        defer { lock.unlock() }
        seenInstructions = .some(instructions)
        seenServerInfo = serverInfo
        if let pins, ToolFingerprint.digest(ofInstructions: instructions) != pins.instructions {
            instructionsChanged = true
        }
    }

    /// The verdict on one tool definition from a `tools/list` result (and remembers it).
    public func verdict(on tool: JSONValue) -> Verdict {
        let name = tool["name"]?.stringValue ?? ""
        lock.lock()
        seenTools[name] = tool
        let instructionsChanged = self.instructionsChanged
        lock.unlock()
        if let pins {
            if instructionsChanged {
                return .withheld("the server's instructions changed since they were reviewed")
            }
            guard let pinned = pins.tools[name] else {
                return .withheld("tool '\(name)' is new since the server was reviewed")
            }
            if pinned != ToolFingerprint.digest(ofTool: tool) {
                return .withheld("tool '\(name)' changed since it was reviewed")
            }
        }
        if blockSuspicious, let finding = InjectionScanner.scan(tool: tool).first {
            return .withheld("tool '\(name)' is withheld: its text looks like an injection (\(finding.kind.rawValue) in \(finding.location))")
        }
        return .reviewed
    }

    /// What the relay has seen this session, as a tool lock (for `pin`, `diff`, `approve`);
    /// nil when no tool list passed.
    public var observed: ToolLock? {
        lock.lock()
        defer { lock.unlock() }
        guard !seenTools.isEmpty || seenInstructions != nil else { return nil }
        return ToolLock(
            tools: seenTools, instructions: ToolFingerprint.digest(ofInstructions: seenInstructions ?? nil),
            serverInfo: seenServerInfo)
    }
}
