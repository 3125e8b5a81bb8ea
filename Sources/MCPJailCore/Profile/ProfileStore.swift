import FoundationEssentials
import Glibc

/// The profile directories, searched in order. The profiles in them are the allowlist:
/// `mcpjail run NAME` starts nothing unless `NAME.toml` is found here and is valid.
public struct ProfileStore: Sendable, Equatable {
    public var directories: [String]

    public init(directories: [String]) {
        self.directories = directories
    }

    /// `--profiles DIR` if given, else `$MCPJAIL_PROFILES`, else `~/.config/mcpjail/profiles`
    /// then `/etc/mcpjail/profiles`. Relative directories are made absolute against the
    /// current directory, so messages and generated client configs name real places.
    public static func resolve(explicit: String?, environment: [String: String]) -> ProfileStore {
        if let explicit, !explicit.isEmpty {
            return ProfileStore(directories: [absolute(explicit)])
        }
        if let fromEnvironment = environment["MCPJAIL_PROFILES"], !fromEnvironment.isEmpty {
            return ProfileStore(directories: [absolute(fromEnvironment)])
        }
        var directories: [String] = []
        if let home = environment["HOME"], home.hasPrefix("/") {
            directories.append(PathSyntax.normalize(home + "/.config/mcpjail/profiles"))
        }
        directories.append("/etc/mcpjail/profiles")
        return ProfileStore(directories: directories)
    }

    /// The file `name` would be read from: `NAME.toml` in the first directory that has it.
    /// Nil for an invalid name or when no directory has the file.
    public func locate(_ name: String) -> String? {
        guard ProfileName.isValid(name) else { return nil }
        for directory in directories {
            let candidate = Self.join(directory, name + ".toml")
            // stat(2), as FileManager's fileExists does, without Foundation's start-up cost.
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
                return candidate
            }
        }
        return nil
    }

    /// Finds `NAME.toml` in the first directory that has it; loads and validates it fully.
    ///
    /// - Throws: ``MCPJailError`` `.noProfile` for a missing profile or an invalid name
    ///   (`no profile 'NAME' in DIR1, DIR2 (the profiles are the allowlist)`);
    ///   ``ProfileError`` with every problem for an invalid profile.
    public func load(_ name: String) throws -> Profile {
        guard let path = locate(name) else { throw noProfile(name) }
        return try ProfileParser.load(path: path, name: name)
    }

    /// The error for a name that has no profile.
    public func noProfile(_ name: String) -> MCPJailError {
        let places = directories.isEmpty ? "(no profile directory)" : directories.joined(separator: ", ")
        return MCPJailError(
            .noProfile,
            "no profile '\(ProfileName.printable(name))' in \(places) (the profiles are the allowlist)")
    }

    /// Every `NAME.toml` in the directories, by name; for a name in several directories the
    /// first directory wins. Profiles that fail to load are included with their error.
    /// Files whose name is not a valid profile name are skipped: they can never be run.
    public func list() -> [ProfileListing] {
        var seen: Set<String> = []
        var listings: [ProfileListing] = []
        for directory in directories {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for entry in entries.sorted() where entry.hasSuffix(".toml") {
                let name = String(entry.dropLast(".toml".count))
                guard ProfileName.isValid(name), !seen.contains(name) else { continue }
                let path = Self.join(directory, entry)
                var status = stat()
                guard stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFDIR else { continue }
                seen.insert(name)
                do {
                    let profile = try ProfileParser.load(path: path, name: name)
                    listings.append(ProfileListing(name: name, path: path, profile: profile, error: nil))
                } catch {
                    listings.append(ProfileListing(name: name, path: path, profile: nil, error: error))
                }
            }
        }
        return listings.sorted { $0.name < $1.name }
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return PathSyntax.normalize(path) }
        return PathSyntax.normalize(FileManager.default.currentDirectoryPath + "/" + path)
    }

    static func join(_ directory: String, _ file: String) -> String {
        directory.hasSuffix("/") ? directory + file : directory + "/" + file
    }
}

/// One entry of ``ProfileStore/list()``: a valid profile, or the reason it is not one.
public struct ProfileListing: Sendable, Equatable {
    public var name: String
    /// The profile file.
    public var path: String
    /// The loaded profile, when it is valid.
    public var profile: Profile?
    /// Every problem, when it is not.
    public var error: ProfileError?

    public init(name: String, path: String, profile: Profile?, error: ProfileError?) {
        self.name = name
        self.path = path
        self.profile = profile
        self.error = error
    }

    public var isValid: Bool { profile != nil }
}
