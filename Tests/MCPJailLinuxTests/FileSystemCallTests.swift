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
