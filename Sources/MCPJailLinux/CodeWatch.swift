import CMCPJailShims
import Glibc
import MCPJailCore

/// Watches a pinned server's files, as the jail sees them, from the moment its pin check
/// starts until the session ends, so that a change made on the host after the check (the
/// binds are live views of the host's files) cannot go unnoticed: before the exec it
/// refuses the start, after it stops the session.
///
/// Two kinds of directories are watched with dnotify, each with its own real-time signal
/// (which reaches the session's ``EventPipe``, and is counted for ``changedBeforeExec()``):
/// - Every directory of a `[server] code` tree, armed by the scan itself before it lists
///   the directory (``treeSignal``). Any entry created, removed, renamed, written or
///   changed in its attributes there is a change to the pinned tree, so it always counts.
/// - The directories on the way to the code trees and to the command (each link of the
///   command followed, as exec does): there only the one entry on the way matters, and a
///   signal (``pathSignal``) is judged by ``changedPath()``, which compares that entry's
///   identity (a directory's device and inode; a file's whole ``FileIdentity``) with what
///   it was when armed. So a busy directory such as /usr/bin does not stop a session.
///
/// Not inotify, for the reason ``ProfileWatch`` gives (closing an inotify instance waits for
/// an SRCU grace period; dnotify's marks go at once). A dnotify mark belongs to the open
/// file it was set on, so each directory is opened afresh and kept open (a 5,800-file venv
/// has 724 directories); every mcpjail process starts with its soft `RLIMIT_NOFILE` raised
/// to the hard one for that (`mcpjail_reserve_fd_table`).
/// All marks deliver to the thread that armed them, the supervisor's; only that thread
/// uses the watch (hence `@unchecked Sendable`: it rides in ``ChildRestrictions``).
public final class CodeWatch: @unchecked Sendable {
    /// The signal of a change inside a pinned tree.
    public static let treeSignal = mcpjail_realtime_signal(3)
    /// The signal of a change in a directory on the way to the command or a tree.
    public static let pathSignal = mcpjail_realtime_signal(4)

    /// An entry on the way, as it was when its directory was armed.
    private struct WatchedEntry {
        var directory: Int32
        var name: String
        /// Shown in messages: the entry's path in the jail.
        var path: String
        var identity: FileIdentity
        /// Directories and links are compared by device and inode only (a directory's
        /// times move with its contents, which its own watch covers).
        var wholeIdentity: Bool
    }

    private var treeDirectories: [Int32] = []
    private var entries: [WatchedEntry] = []
    private var treeCountAtStart: Int32
    /// Why arming failed (the first reason), if it did: the session must not rely on it.
    public private(set) var failure: String?

    /// Call on the thread that will supervise the session, after ``EventPipe/captureSignals(_:)``
    /// took ``treeSignal`` and ``pathSignal``.
    public init() {
        treeCountAtStart = mcpjail_signal_count(Self.treeSignal)
        // A blocked signal would wait unseen (and uncounted): this thread takes both.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, Self.treeSignal)
        sigaddset(&signals, Self.pathSignal)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }

    deinit { stop() }

    /// Arms a directory of a pinned tree (`fd` stays the caller's): called by the scan
    /// before it reads the directory's entries.
    func armTree(_ fd: Int32, path: String) {
        let own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard own >= 0 else { return fail("cannot open \(path): \(TreeScanner.reason(errno))") }
        guard mcpjail_notify_directory_changes(own, Self.treeSignal) == 0 else {
            let code = errno
            Glibc.close(own)
            return fail("cannot watch \(path): \(TreeScanner.reason(code))")
        }
        treeDirectories.append(own)
    }

    /// Arms each directory on the way to `path` inside `root` (the jail's root fd), the
    /// jail's own root excepted (a tmpfs of mcpjail's that the host cannot change), and
    /// follows the final entry while it is a symbolic link, up to 40 links, as exec does.
    func armPath(_ path: String, inRoot root: Int32) {
        var pending = path
        for _ in 0..<40 {
            // "." and ".." taken lexically (a link's target is mostly "../x/y").
            var components: [String] = []
            for part in pending.split(separator: "/") where part != "." {
                if part == ".." { _ = components.popLast() } else { components.append(String(part)) }
            }
            var directory = ""
            var final: WatchedEntry? = nil
            for (index, name) in components.enumerated() {
                if !directory.isEmpty {
                    let isLast = index == components.count - 1
                    guard let entry = arm(entry: name, of: directory, inRoot: root, whole: isLast) else { return }
                    if isLast { final = entry }
                }
                directory += "/" + name
            }
            guard let final, final.identity.mode & UInt32(S_IFMT) == UInt32(S_IFLNK),
                let target = readLink(final.name, in: final.directory)
            else { return }
            pending = target.hasPrefix("/") ? target : "/" + components.dropLast().joined(separator: "/") + "/" + target
        }
    }

    /// Whether a change came between ``init()`` and now that must refuse the start: any in
    /// a tree, or one on the way (as ``changedPath()`` judges). The path's name, or nil.
    public func changedBeforeExec() -> String? {
        if mcpjail_signal_count(Self.treeSignal) != treeCountAtStart { return "a file under its code paths" }
        return changedPath()
    }

    /// The first entry on the way whose identity moved since it was armed, or nil.
    public func changedPath() -> String? {
        for entry in entries {
            var info = stat()
            guard fstatat(entry.directory, entry.name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return entry.path }
            let now = FileIdentity(info)
            let same = entry.wholeIdentity
                ? now == entry.identity : now.device == entry.identity.device && now.inode == entry.identity.inode
            if !same { return entry.path }
        }
        return nil
    }

    /// Ends the watch (closing a directory removes its mark). Idempotent.
    public func stop() {
        for fd in treeDirectories { Glibc.close(fd) }
        for entry in entries { Glibc.close(entry.directory) }
        treeDirectories = []
        entries = []
    }

    private func arm(entry name: String, of directory: String, inRoot root: Int32, whole: Bool) -> WatchedEntry? {
        let fd = mcpjail_openat_in_root(root, directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            fail("cannot open \(directory): \(TreeScanner.reason(errno))")
            return nil
        }
        // Armed before the entry is looked at: a change after this look is signalled.
        guard mcpjail_notify_directory_changes(fd, Self.pathSignal) == 0 else {
            fail("cannot watch \(directory): \(TreeScanner.reason(errno))")
            Glibc.close(fd)
            return nil
        }
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            // Missing: the check that follows reports it.
            Glibc.close(fd)
            return nil
        }
        let identity = FileIdentity(info)
        let kind = identity.mode & UInt32(S_IFMT)
        let entry = WatchedEntry(
            directory: fd, name: name, path: directory + "/" + name, identity: identity,
            wholeIdentity: whole && kind == UInt32(S_IFREG))
        entries.append(entry)
        return entry
    }

    private func readLink(_ name: String, in directory: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func fail(_ reason: String) {
        if failure == nil { failure = reason }
    }
}
