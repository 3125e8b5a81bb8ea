import FoundationEssentials
import Glibc

/// The first way arguments break a tool's schema: where (a JSON pointer into the
/// arguments) and what, short enough for the model.
public struct ArgumentViolation: Sendable, Equatable {
    public var pointer: String
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }
}

/// A compiled argument schema: the server's `inputSchema` combined with the profile's
/// `[tools.NAME.arguments]`.
public protocol ArgumentValidator: Sendable {
    func violation(in arguments: JSONValue) -> ArgumentViolation?
    /// Validates the arguments as bytes without a copy of their long strings, where the
    /// validator can: `.some(violation or nil)`; nil where it cannot (then the caller
    /// parses them and asks ``violation(in:)``).
    func violation(inLargeArguments bytes: UnsafeRawBufferPointer) -> ArgumentViolation??
}

extension ArgumentValidator {
    public func violation(inLargeArguments bytes: UnsafeRawBufferPointer) -> ArgumentViolation?? { nil }
}

/// The tools the server offers, as the relay last read them with its own `tools/list`,
/// each with its compiled argument schema or the reason it cannot be enforced. Shared by
/// the relay's two threads: the client side waits for a load, the server side fills it.
public final class ToolCatalog: @unchecked Sendable {  // `state` only under `lock`
    public enum Entry: Sendable {
        case available(any ArgumentValidator)
        /// The schema is invalid or uses what the validator does not support: the tool is
        /// unavailable rather than unchecked.
        case unavailable(String)
        /// The tool's definition is not the reviewed one (``ToolReview``).
        case withheld(String)
    }

    public enum Status: Sendable, Equatable {
        /// Never loaded, or a load failed: the next call loads it.
        case unloaded
        case loading
        case loaded
        /// The server said `notifications/tools/list_changed`: the next call reloads it.
        case stale
    }

    /// Compiles one tool's schema under the profile's policy for it.
    public typealias Compiler = @Sendable (_ inputSchema: JSONValue, _ policy: Profile.ToolPolicy) -> Entry

    private struct State {
        var status: Status = .unloaded
        var entries: [String: Entry] = [:]
        var incoming: [String: Entry] = [:]
        var failure: String?
    }

    private var state = State()
    private let lock = Condition()
    private let profile: Profile
    private let compile: Compiler
    private let review: ToolReview?

    public init(profile: Profile, review: ToolReview? = nil, compile: @escaping Compiler) {
        self.profile = profile
        self.review = review
        self.compile = compile
    }

    private func locked<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }

    public var status: Status { locked { $0.status } }

    public var needsLoad: Bool {
        locked { $0.status == .unloaded || $0.status == .stale }
    }

    /// The entry for a visible tool, or nil when the server does not offer it.
    public func entry(for tool: String) -> Entry? { locked { $0.entries[tool] } }

    /// Marks a load as started (the relay then sends its own `tools/list`).
    public func beginLoad() {
        locked { state in
            state.status = .loading
            state.incoming = [:]
            state.failure = nil
        }
    }

    /// Adds one page of `result.tools`. Tools the profile hides are not compiled.
    public func addPage(_ tools: [JSONValue]) {
        var compiled: [(String, Entry)] = []
        for tool in tools {
            guard case .string(let name)? = tool["name"], let policy = profile.policy(forTool: name) else { continue }
            if case .withheld(let reason)? = review?.verdict(on: tool) {
                compiled.append((name, .withheld(reason)))
                continue
            }
            guard let schema = tool["inputSchema"] else {
                compiled.append((name, .unavailable("the server gave no inputSchema")))
                continue
            }
            compiled.append((name, compile(schema, policy)))
        }
        locked { state in
            for (name, entry) in compiled { state.incoming[name] = entry }
        }
    }

    /// The last page arrived: the new entries replace the old ones.
    public func finishLoad() {
        locked { state in
            state.entries = state.incoming
            state.incoming = [:]
            state.status = .loaded
        }
        lock.broadcast()
    }

    /// The load failed (an error reply, or the server went away): callers waiting get
    /// `reason`, and the next call tries again.
    public func failLoad(_ reason: String) {
        locked { state in
            state.status = .unloaded
            state.failure = reason
            state.incoming = [:]
        }
        lock.broadcast()
    }

    public func markStale() {
        locked { state in
            if state.status == .loaded { state.status = .stale }
        }
    }

    /// Waits until a load started with ``beginLoad()`` ends or the monotonic `deadline`
    /// (``monotonicNanoseconds()``) passes. nil when loaded, else why not.
    public func waitForLoad(untilMonotonic deadline: UInt64) -> String? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            switch state.status {
            case .loaded, .stale: return nil
            case .unloaded: return state.failure ?? "the tool list is not loaded"
            case .loading:
                if !lock.wait(untilMonotonic: deadline), monotonicNanoseconds() >= deadline {
                    return "the server did not answer tools/list in time"
                }
            }
        }
    }
}

/// Validate: a `tools/call`'s arguments against the catalog's compiled schema for the tool.
/// Tools the server does not offer are refused like hidden ones.
public struct ArgumentSchemaCheck: RequestCheck {
    public let name = "schema"
    let catalog: ToolCatalog
    /// Arguments longer than this are validated without copying out their long strings
    /// when the schema allows it (``ArgumentValidator/violation(inLargeArguments:)``): on a
    /// call's path, a 64 KiB string copied into the parse costs more than its validation.
    static let deferredArguments = 16 << 10
    /// In such arguments, the strings longer than this are left out of the parse.
    static let deferredString = 4 << 10

    public init(catalog: ToolCatalog) { self.catalog = catalog }

    public func check(_ request: InspectedRequest, _ state: inout CallState) -> Refusal? {
        guard request.method == "tools/call", let tool = request.toolName else { return nil }
        switch catalog.entry(for: tool) {
        case nil:
            return Refusal(SafeError(.forbidden, "tool '\(AccessCheck.shown(tool))' is not available", retryable: false), decidedBy: name)
        case .withheld(let reason)?:
            return Refusal(SafeError(.forbidden, reason + "; it needs review (mcpjail diff, mcpjail approve)", retryable: false), decidedBy: "review")
        case .unavailable(let reason)?:
            return Refusal(SafeError(.internal, "tool '\(tool)' is unavailable: its argument schema cannot be enforced (\(reason))", retryable: false), decidedBy: name)
        case .available(let validator)?:
            let found: ArgumentViolation?
            if !state.argumentsParsed, let bytes = request.argumentsBytes, bytes.count > Self.deferredArguments,
                let checked = validator.violation(inLargeArguments: bytes)
            {
                found = checked
            } else {
                guard let arguments = state.arguments(of: request) else {
                    return Refusal(SafeError(.invalidArguments, "arguments are not valid JSON", retryable: false, pointer: ""), decidedBy: name)
                }
                found = validator.violation(in: arguments)
            }
            guard let violation = found else { return nil }
            let location = violation.pointer.isEmpty ? "the arguments" : violation.pointer
            return Refusal(
                SafeError(.invalidArguments, "\(location): \(violation.message)", retryable: false, pointer: violation.pointer),
                decidedBy: name)
        }
    }
}
