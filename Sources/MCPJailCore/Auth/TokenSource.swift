import FoundationEssentials
import Glibc
import Synchronization

/// Where a call's token comes from, first match wins:
/// 1. the request's `_meta["dev.mcpjail/authorization"]` string (the caller extracts it);
/// 2. the file named by `MCPJAIL_TOKEN_FILE` in the client's environment, re-read whenever
///    it changes, so a refresher can replace the token mid-session (write a new file and
///    rename it over the old one);
/// 3. `MCPJAIL_TOKEN`.
///
/// A `_meta` value that is present is authoritative, even if empty; so is a token file that
/// is named but cannot be read (no fallback to `MCPJAIL_TOKEN`, which would hide the
/// problem). Thread-safe; the file check on each call is one `stat`.
public final class TokenSource: Sendable {
    public static let metaKey = "dev.mcpjail/authorization"
    public static let fileVariable = "MCPJAIL_TOKEN_FILE"
    public static let tokenVariable = "MCPJAIL_TOKEN"
    /// A token file larger than this is refused.
    public static let maxFileBytes = 64 * 1024

    /// Which of the three places a token came from.
    public enum Origin: Sendable, Equatable {
        case meta
        case file
        case environment
    }

    /// A token and where it was found. `text` may still carry a `Bearer ` prefix.
    public struct Token: Sendable, Equatable {
        public var text: String
        public var origin: Origin
    }

    /// The token file's path, if `MCPJAIL_TOKEN_FILE` is set and not empty.
    public let filePath: String?
    private let environmentToken: String?
    private let snapshot = Mutex<FileSnapshot?>(nil)

    /// Reads `MCPJAIL_TOKEN_FILE` and `MCPJAIL_TOKEN` from `environment` (the client's).
    public init(environment: [String: String]) {
        filePath = environment[Self.fileVariable].flatMap { $0.isEmpty ? nil : $0 }
        environmentToken = environment[Self.tokenVariable].flatMap { value in
            let trimmed = value.trimmingWhitespace()
            return trimmed.isEmpty ? nil : trimmed
        }
    }

    /// The token for one call; `meta` is the request's `_meta["dev.mcpjail/authorization"]`
    /// when it is a string, else nil.
    public func token(meta: String?) -> Result<Token, AuthFailure> {
        if let meta {
            return .success(Token(text: meta, origin: .meta))
        }
        if let filePath {
            return fileToken(path: filePath).map { Token(text: $0, origin: .file) }
        }
        if let environmentToken {
            return .success(Token(text: environmentToken, origin: .environment))
        }
        return .failure(AuthFailure(
            .missing, "no token: send _meta[\"\(Self.metaKey)\"] or set \(Self.fileVariable) or \(Self.tokenVariable)"))
    }

    // MARK: - The token file

    /// The file's identity and times when it was last read, and what it held.
    struct FileSnapshot {
        var identity: FileIdentity
        var token: Result<String, AuthFailure>
    }

    /// File times tick coarsely (a few ms), so a same-size rewrite right after a read can
    /// keep the same times. A file changed in the last two seconds is re-read on every call
    /// instead of trusted (git's "racy" rule).
    private static func isRecent(_ identity: FileIdentity, now: time_t) -> Bool {
        Int64(now) - max(identity.mtimeSeconds, identity.ctimeSeconds) < 2
    }

    private func fileToken(path: String) -> Result<String, AuthFailure> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            snapshot.withLock { $0 = nil }
            return .failure(AuthFailure(.missing, "the token file named by \(Self.fileVariable) cannot be read"))
        }
        let identity = FileIdentity(info)
        if let cached = snapshot.withLock({ $0 }), cached.identity == identity, !Self.isRecent(identity, now: time(nil)) {
            return cached.token
        }
        let fresh = Self.read(path: path)
        snapshot.withLock { $0 = fresh }
        return fresh?.token ?? .failure(AuthFailure(.missing, "the token file named by \(Self.fileVariable) cannot be read"))
    }

    /// Reads the file once; the identity is the opened file's, so a replacement between the
    /// `stat` and the read is noticed on the next call.
    private static func read(path: String) -> FileSnapshot? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let identity = FileIdentity(info)
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return FileSnapshot(identity: identity, token: .failure(AuthFailure(.missing, "the token file is not a regular file")))
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= maxFileBytes {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        guard bytes.count <= maxFileBytes else {
            return FileSnapshot(
                identity: identity,
                token: .failure(AuthFailure(.malformed, "the token file is larger than \(maxFileBytes / 1024) KiB")))
        }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard !text.isEmpty else {
            return FileSnapshot(identity: identity, token: .failure(AuthFailure(.missing, "the token file is empty")))
        }
        return FileSnapshot(identity: identity, token: .success(text))
    }
}
