import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailLinux

/// `mcpjail doctor`: which protections this kernel can give this user, and per profile
/// which would be active.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show which protections this kernel gives this user, and per profile which would be active.",
        discussion: """
            Checks, without changing anything: user namespaces (including Debian's \
            unprivileged_userns_clone and the AppArmor restriction of Ubuntu 24.04), the seccomp \
            actions the kernel offers, the cgroup version and whether this user can create a \
            cgroup for each limit (memory, pids, cpu) and where, and Landlock. One line per \
            check: ok, limited (not for this user, or only partly), missing, or unknown, with a \
            hint where the fix is known.

            Then, for every profile in the profile directory: each [limits] key and the \
            mechanism that enforces it here (cgroup v2 or v1, rlimit, supervisor timer), the \
            seccomp filter, what the server can reach on the network, whether it is pinned, and \
            whether `mcpjail run` would start it (a profile with enforce = "strict" is refused \
            when a memory, pids or cpu limit cannot be enforced; a pinned one without its lock).

            Examples:
              mcpjail doctor                          # this host, every profile
              mcpjail doctor --json                   # the same, as JSON
              mcpjail doctor --profiles ./profiles    # profiles from a given directory
              sudo -u alice mcpjail doctor            # what an ordinary user would get
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Flag(help: "Print the findings as JSON.")
    var json = false

    func run() async throws {
        try output(features: HostFeatures(), store: profileOptions.store()).emit()
    }

    func output(features: HostFeatures, store: ProfileStore) -> ProfileCommandOutput {
        let findings = features.findings()
        let listings = store.list()
        if json {
            let report = Report(
                uid: features.euid, findings: findings,
                profileDirectories: store.directories,
                profiles: listings.map { listing in
                    if let profile = listing.profile {
                        return ProfileEntry(name: listing.name, path: listing.path, valid: true, protections: features.protections(for: profile))
                    }
                    return ProfileEntry(
                        name: listing.name, path: listing.path, valid: false, problems: listing.error?.problems.map(\.description) ?? [])
                })
            return ProfileCommandOutput(stdout: Profile.prettyJSON(report) + "\n")
        }
        var lines: [String] = []
        lines.append("mcpjail doctor: what this kernel gives uid \(features.euid)\(features.euid == 0 ? " (root)" : "")")
        let width = findings.map(\.check.count).max() ?? 0
        for finding in findings {
            let status = finding.status.rawValue.padded(to: 8)
            lines.append("  \(status) \(finding.check.padded(to: width))  \(finding.detail)")
            if let hint = finding.hint {
                lines.append("  \(String(repeating: " ", count: 8)) \(String(repeating: " ", count: width))  hint: \(hint)")
            }
        }
        lines.append("")
        if listings.isEmpty {
            lines.append("profiles: none in \(store.directories.joined(separator: ", "))")
        } else {
            lines.append("profiles (\(store.directories.joined(separator: ", "))):")
        }
        for listing in listings {
            guard let profile = listing.profile else {
                lines.append("  \(listing.name): invalid profile, `mcpjail check \(listing.name)` says why")
                continue
            }
            let protections = features.protections(for: profile)
            let verdict = protections.startable ? "would start" : "would NOT start"
            lines.append("  \(listing.name): \(verdict), enforce = \"\(protections.enforce)\"")
            let keyWidth = protections.limits.map(\.key.count).max() ?? 0
            let valueWidth = protections.limits.map(\.value.count).max() ?? 0
            for limit in protections.limits {
                let mark = limit.enforced ? "" : "  (NOT ENFORCED)"
                lines.append(
                    "    \(limit.key.padded(to: keyWidth))  "
                        + "\(limit.value.padded(to: valueWidth))  \(limit.mechanism)\(mark)")
            }
            lines.append("    seccomp: \(protections.seccomp)")
            lines.append("    network: \(protections.network)")
            lines.append("    pins: \(protections.pins)")
            if let note = protections.note { lines.append("    \(note)") }
        }
        return ProfileCommandOutput(stdout: lines.joined(separator: "\n") + "\n")
    }

    private struct Report: Encodable {
        var uid: UInt32
        var findings: [HostFinding]
        var profileDirectories: [String]
        var profiles: [ProfileEntry]

        enum CodingKeys: String, CodingKey {
            case uid, findings, profiles
            case profileDirectories = "profile_directories"
        }
    }

    private struct ProfileEntry: Encodable {
        var name: String
        var path: String
        var valid: Bool
        var protections: ProfileProtections?
        var problems: [String]?
    }
}
