import Foundation
import Glibc
import Testing
@testable import MCPJailLinux

@Suite("FD's directory listing and link reading")
struct FileSystemCallTests {
    @Test("directoryNames lists every entry but . and .., and is nil for what is no directory")
    func directoryNames() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mcpjail-names-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(FileManager.default.createFile(atPath: root + "/a file", contents: Data()))
        #expect(symlink("/nowhere", root + "/link") == 0)
        #expect(FD.directoryNames(root)?.sorted() == ["a file", "link", "sub"])
        #expect(FD.directoryNames(root + "/sub") == [])
        #expect(FD.directoryNames(root + "/a file") == nil)
        #expect(FD.directoryNames(root + "/missing") == nil)
    }

    @Test("symbolicLinkDestination reads a link as written, and is nil for anything else")
    func symbolicLinkDestination() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mcpjail-links-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(symlink("usr/lib", root + "/lib") == 0)
        #expect(FD.symbolicLinkDestination(root + "/lib") == "usr/lib")
        #expect(FileManager.default.createFile(atPath: root + "/plain", contents: Data()))
        #expect(FD.symbolicLinkDestination(root + "/plain") == nil)
        #expect(FD.symbolicLinkDestination(root + "/missing") == nil)
    }
}

@Suite("FD.makeDirectories (mkdir -p)")
struct MakeDirectoriesTests {
    @Test("creates the missing parents with the mode asked, whatever the umask, and leaves existing ones")
    func createsParents() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mcpjail-mkdir-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let old = umask(0o077)
        defer { umask(old) }
        try FD.makeDirectories(root + "/a/b", mode: 0o751)
        for path in [root, root + "/a", root + "/a/b"] {
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
            #expect(info.st_mode & 0o7777 == 0o751, "\(path)")
        }
        #expect(chmod(root + "/a", 0o700) == 0)
        try FD.makeDirectories(root + "/a/b", mode: 0o751)  // all there: nothing changes
        var info = stat()
        #expect(stat(root + "/a", &info) == 0 && info.st_mode & 0o7777 == 0o700)
    }

    @Test("a file in the way, or a parent that cannot be written, is an error naming the path")
    func failures() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mcpjail-mkdir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(FileManager.default.createFile(atPath: root + "/file", contents: Data()))
        #expect(throws: SystemCallError("mkdir \(root)/file", errno: ENOTDIR)) {
            try FD.makeDirectories(root + "/file", mode: 0o700)
        }
        #expect(throws: SystemCallError("mkdir \(root)/file/below", errno: ENOTDIR)) {
            try FD.makeDirectories(root + "/file/below", mode: 0o700)
        }
        #expect(throws: SystemCallError("mkdir /proc/mcpjail-no", errno: ENOENT)) {
            try FD.makeDirectories("/proc/mcpjail-no/x", mode: 0o700)
        }
    }
}
