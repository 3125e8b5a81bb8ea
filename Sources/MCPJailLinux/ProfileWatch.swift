import CMCPJailShims
import FoundationEssentials
import Glibc
import MCPJailCore

/// Watches a running session's profile file and tells the supervisor when it was removed
/// or renamed (``Change/revoked``) or edited (``Change/edited``).
///
/// The kernel reports changes in the profile's directory with dnotify: ``signal`` (SIGIO),
/// sent only to the thread that made the watch (the supervisor's, whose waits expect
/// EINTR), reaches the session's ``EventPipe`` and the supervisor calls ``look(now:)``; it also
/// looks every ``idleLookInterval``, which covers what dnotify cannot see (the directory
/// itself removed or replaced). Not inotify: the kernel frees an inotify instance's watch
/// only after an SRCU grace period, which closing the instance waits for, 8-24 ms measured
/// on the test machine, added to the exit of every session (the client waits for that
/// exit). dnotify's marks belong to one kernel-wide group and are released without waiting.
///
/// Editors often replace a file by removing or renaming it and writing it again, so a
/// disappearance is confirmed after ``confirmDelay``: if the file is back by then, it was an
/// edit. Revocation is thus noticed within about a quarter of a second.
public final class ProfileWatch {
    /// What happened to the profile file.
    public enum Change: Equatable, Sendable {
        /// Removed or renamed: the server is revoked.
        case revoked
        /// Edited: the session keeps the policy it started with.
        case edited
    }

    /// The signal dnotify sends; capture it with ``EventPipe/captureSignals(_:)`` before
    /// creating a watch.
    public static let signal = SIGIO
    static let confirmDelay: UInt64 = 200_000_000
    static let idleLookInterval: UInt64 = 500_000_000

    private let path: String
    private var directory: Int32
    private var seen: FileIdentity?
    private var goneSince: UInt64?
    /// When ``look(now:)`` wants to be called next, at the latest (monotonic ns).
    public private(set) var nextLook: UInt64

    /// Starts watching `path` (the profile file as found in its profile directory); call it
    /// on the thread that will call ``look(now:)``.
    public init(path: String) throws(SystemCallError) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        self.path = absolute
        // Its directory, without NSString: a first NSString use sets up CoreFoundation, which
        // `run` otherwise never needs.
        let slash = absolute.lastIndex(of: "/") ?? absolute.startIndex
        let parent = slash == absolute.startIndex ? "/" : String(absolute[..<slash])
        directory = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory < 0 { throw SystemCallError("open(\(parent))", errno: errno) }
        if mcpjail_notify_directory_changes(directory, Self.signal) != 0 {
            let error = errno
            Glibc.close(directory)
            throw SystemCallError("fcntl(F_NOTIFY, \(parent))", errno: error)
        }
        seen = FileIdentity(path: absolute)
        nextLook = monotonicNanoseconds() + Self.idleLookInterval
    }

    deinit { stop() }

    /// Compares the profile with what it was at the last look. Returns what the session
    /// must hear of, if anything; after ``Change/revoked`` it returns nil.
    public func look(now: UInt64) -> Change? {
        guard directory >= 0 else { return nil }
        nextLook = now + Self.idleLookInterval
        guard let current = FileIdentity(path: path) else {
            guard let since = goneSince else {
                goneSince = now
                nextLook = now + Self.confirmDelay
                return nil
            }
            if now >= since + Self.confirmDelay {
                stop()
                return .revoked
            }
            nextLook = since + Self.confirmDelay
            return nil
        }
        let wasGone = goneSince != nil
        goneSince = nil
        if wasGone || current != seen {
            seen = current
            return .edited
        }
        return nil
    }

    /// Ends the watch; ``look(now:)`` reports nothing after this. Idempotent.
    public func stop() {
        if directory >= 0 { Glibc.close(directory) }
        directory = -1
        nextLook = .max
    }
}
