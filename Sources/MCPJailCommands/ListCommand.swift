import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore

/// `mcpjail list`: the allowlisted servers.
struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the allowlisted servers: every profile in the profile directories.",
        discussion: """
            One line per profile: its name, the command it runs, and the profile file. A \
            profile that does not validate is still listed, marked (invalid: ...) with its \
            first problem; `mcpjail check NAME` shows them all. When several directories hold \
            the same NAME.toml, the first one wins, as for `mcpjail run`.

            Examples:
              mcpjail list                            # the servers this machine allows
              mcpjail list --json                     # the same, for scripts
              mcpjail list --profiles ./profiles      # the profiles shipped in a checkout
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Flag(help: "Print a JSON array of {name, command, path, valid, error}.")
    var json = false

    func run() async throws {
        try output(store: profileOptions.store()).emit()
    }

    func output(store: ProfileStore) -> ProfileCommandOutput {
        let listings = store.list()
        if json {
            return ProfileCommandOutput(stdout: Profile.prettyJSON(listings.map(Entry.init)) + "\n")
        }
        if listings.isEmpty {
            return ProfileCommandOutput(
                stderr: "mcpjail: no profiles in \(store.directories.joined(separator: ", ")); no server is allowed\n")
        }
        let rows = listings.map { listing in
            [listing.name, listing.profile?.server.command ?? "(invalid: \(Self.firstProblem(listing)))", listing.path]
        }
        return ProfileCommandOutput(stdout: Self.columns(rows))
    }

    static func firstProblem(_ listing: ProfileListing) -> String {
        guard let problem = listing.error?.problems.first else { return "unknown error" }
        var text = problem.line.map { "line \($0): " } ?? ""
        if !problem.keyPath.isEmpty { text += problem.keyPath + ": " }
        return text + problem.message
    }

    /// Left-aligned columns separated by two spaces; the last column is not padded.
    static func columns(_ rows: [[String]]) -> String {
        guard let width = rows.first?.count else { return "" }
        let widths = (0..<width).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == width - 1 ? cell : cell.padded(to: widths[column])
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    private struct Entry: Encodable {
        var name: String
        var command: String?
        var path: String
        var valid: Bool
        var error: String?

        init(_ listing: ProfileListing) {
            name = listing.name
            command = listing.profile?.server.command
            path = listing.path
            valid = listing.isValid
            error = listing.error?.problems.first?.description
        }

        enum CodingKeys: String, CodingKey { case name, command, path, valid, error }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(command, forKey: .command)  // null when invalid
            try container.encode(path, forKey: .path)
            try container.encode(valid, forKey: .valid)
            try container.encodeIfPresent(error, forKey: .error)
        }
    }
}
