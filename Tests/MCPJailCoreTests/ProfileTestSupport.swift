import Foundation
@testable import MCPJailCore

/// A temporary directory with helpers to write profiles and fake executables into it.
final class ProfileSandbox {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "mcpjail-profile-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// An executable file at `root/relative`.
    @discardableResult
    func executable(_ relative: String = "bin/server") throws -> String {
        let path = try write(relative, "#!/bin/sh\nexit 0\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    @discardableResult
    func write(_ relative: String, _ contents: String) throws -> String {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Writes `profiles/NAME.toml` and loads it.
    func load(_ contents: String, name: String = "test", directory: String = "profiles") throws -> Profile {
        try write("\(directory)/\(name).toml", contents)
        return try ProfileStore(directories: [root + "/" + directory]).load(name)
    }

    /// Writes and loads a profile that must be invalid; returns its problems.
    func problems(_ contents: String, name: String = "test") throws -> [ProfileProblem] {
        do {
            _ = try load(contents, name: name)
            return []
        } catch let error as ProfileError {
            return error.problems
        }
    }
}
