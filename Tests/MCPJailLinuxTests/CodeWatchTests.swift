import CMCPJailShims
import Foundation
import Glibc
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux

/// The watch `run` keeps on a pinned server's files from its check on: a change inside a
/// code tree always counts; a change in a directory on the way counts only when it moved the
/// entry on the way. Checked here through the host's root, as the jail's is used in `run`.
@Suite("Pinned code watch", .serialized)
struct CodeWatchTests {
    typealias Tree = PinVerifierTests.Tree

    /// The signals reach the test's thread (the one that arms) through the session's handler.
    static let events: EventPipe = {
        let pipe = try! EventPipe()
        try! pipe.captureSignals([CodeWatch.treeSignal, CodeWatch.pathSignal])
        return pipe
    }()

    /// Pins `profile`, then verifies it with a watch armed, through an fd of "/".
    static func watched(_ tree: Tree, profile: Profile) throws -> CodeWatch {
        _ = events
        let lock = try PinVerifier.pin(profile).lock
        let check = try PinVerifier.prepare(profile, lockPath: tree.root + "/t.lock", lockBytes: lock.encoded(), cache: PinCache())
        let root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(root) }
        let watch = CodeWatch()
        _ = try PinVerifier.verify(check, inJailRoot: root, watch: watch)
        #expect(watch.failure == nil)
        #expect(watch.changedBeforeExec() == nil)
        return watch
    }

    static func count(_ signal: Int32) -> Int32 { mcpjail_signal_count(signal) }

    @Test("a file written, added or renamed inside a code tree is a change, at any depth")
    func treeChanges() throws {
        for change in ["write", "add", "rename"] {
            let tree = try Tree()
            let watch = try Self.watched(tree, profile: tree.profile)
            let before = Self.count(CodeWatch.treeSignal)
            switch change {
            case "write":
                let fd = open(tree.code + "/lib/sub/c.txt", O_WRONLY | O_APPEND)
                #expect(Glibc.write(fd, "x", 1) == 1)
                close(fd)
            case "add": try tree.write("srv/lib/sub/new.py", "print('new')\n")
            default: #expect(rename(tree.code + "/lib/a.py", tree.code + "/lib/a2.py") == 0)
            }
            #expect(Self.count(CodeWatch.treeSignal) > before, "\(change)")
            #expect(watch.changedBeforeExec() == "a file under its code paths", "\(change)")
        }
    }

    @Test("busy directories on the way do not count; the entry on the way swapped does, named")
    func pathChanges() throws {
        let tree = try Tree()
        // The command outside the code tree, so that only the path watch covers it.
        try tree.write("bin/server", "#!/bin/sh\nexit 0\n", mode: 0o755)
        var profile = tree.profile
        profile.server.command = tree.root + "/bin/server"
        let watch = try Self.watched(tree, profile: profile)

        let before = Self.count(CodeWatch.pathSignal)
        try tree.write("bin/other", "beside the command\n")
        try tree.write("unrelated.txt", "beside the code tree\n")
        #expect(Self.count(CodeWatch.pathSignal) > before)
        #expect(watch.changedPath() == nil)
        #expect(watch.changedBeforeExec() == nil)

        try tree.write("bin/server.new", "#!/bin/sh\nexit 1\n", mode: 0o755)
        #expect(rename(tree.root + "/bin/server.new", tree.root + "/bin/server") == 0)
        #expect(watch.changedPath() == tree.root + "/bin/server")
        #expect(watch.changedBeforeExec() == tree.root + "/bin/server")
    }

    @Test("the command's links are followed: the file a link leads to is watched too")
    func linkedCommand() throws {
        let tree = try Tree()
        try tree.write("real/server", "#!/bin/sh\nexit 0\n", mode: 0o755)
        try FileManager.default.createDirectory(atPath: tree.root + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree.root + "/bin/server", withDestinationPath: "../real/server")
        var profile = tree.profile
        profile.server.command = tree.root + "/bin/server"
        let watch = try Self.watched(tree, profile: profile)

        // Written in place: same inode, new size and times.
        let fd = open(tree.root + "/real/server", O_WRONLY | O_APPEND)
        #expect(Glibc.write(fd, "#", 1) == 1)
        close(fd)
        #expect(watch.changedPath() == tree.root + "/real/server")
    }

    @Test("a stopped watch hears nothing")
    func stopped() throws {
        let tree = try Tree()
        let watch = try Self.watched(tree, profile: tree.profile)
        watch.stop()
        let before = Self.count(CodeWatch.treeSignal)
        try tree.write("srv/lib/late.py", "print('late')\n")
        #expect(Self.count(CodeWatch.treeSignal) == before)
    }
}
