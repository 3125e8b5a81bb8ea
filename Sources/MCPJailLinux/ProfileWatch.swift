import Foundation
import Glibc
import MCPJailCore
import Synchronization

/// Watches a running session's profile file with inotify (on its directory, so that a
/// removal, a rename or the directory's own removal is seen) and posts to the session's
/// ``EventPipe``: ``SessionEvent/profileRevoked`` when the file is gone, or
/// ``SessionEvent/profileChanged`` when it was edited.
///
/// Editors often replace a file by removing or renaming it and writing it again, so a
/// disappearance is confirmed after ``confirmDelay``: if the file is back by then, it was an
/// edit. Revocation is thus noticed within about a quarter of a second.
public final class ProfileWatch: @unchecked Sendable {
    private let path: String
    private let directory: String
    private let name: String
    private let events: EventPipe
    private let inotify: Int32
    private let stopping = Atomic<Bool>(false)

    static let confirmDelay: useconds_t = 200_000

    /// Starts watching `path` (the profile file as found in its profile directory).
    public init(path: String, events: EventPipe) throws(SystemCallError) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        self.path = absolute
        directory = (absolute as NSString).deletingLastPathComponent
        name = (absolute as NSString).lastPathComponent
        self.events = events
        inotify = inotify_init1(Int32(IN_CLOEXEC))
        if inotify < 0 { throw SystemCallError("inotify_init1", errno: errno) }
        let mask = UInt32(IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
        if inotify_add_watch(inotify, directory, mask) < 0 {
            let error = errno
            Glibc.close(inotify)
            throw SystemCallError("inotify_add_watch(\(directory))", errno: error)
        }
    }

    /// Reads events on a background thread until the session ends (``stop()``).
    public func start() {
        Threads.start("mcpjail-profile-watch", background: true) { [self] in
            run()
            Glibc.close(inotify)
        }
    }

    /// Ends the watch within half a second; nothing is posted after this.
    public func stop() {
        stopping.store(true, ordering: .releasing)
    }

    private func run() {
        let size = 4096
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while !stopping.load(ordering: .acquiring) {
            var poller = pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 500)
            if ready < 0 && errno != EINTR { return }
            if ready == 0 {
                // Belt and braces: a watch can be lost (the directory replaced by another).
                if access(path, F_OK) != 0 { return confirmGone() }
                continue
            }
            if poller.revents & Int16(POLLNVAL) != 0 { return }
            let got = read(inotify, buffer, size)
            if got <= 0 { return }
            var gone = false
            var changed = false
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= got {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                let eventName = event.len > 0 ? String(cString: nameStart.assumingMemoryBound(to: CChar.self)) : ""
                let mask = Int32(bitPattern: event.mask)
                if mask & Int32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) != 0 {
                    gone = true
                } else if eventName == name {
                    if mask & Int32(IN_DELETE | IN_MOVED_FROM) != 0 { gone = true }
                    if mask & Int32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) != 0 { changed = true }
                }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
            if gone { return confirmGone() }
            if changed { events.post(.profileChanged) }
        }
    }

    private func confirmGone() {
        usleep(Self.confirmDelay)
        if stopping.load(ordering: .acquiring) { return }
        if access(path, F_OK) == 0 {
            events.post(.profileChanged)
            run()  // it was replaced: keep watching (the directory watch may be new)
            return
        }
        events.post(.profileRevoked)
    }
}
