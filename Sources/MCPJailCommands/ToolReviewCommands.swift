import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore
import MCPJailLinux

/// `mcpjail diff NAME`: what the server offers now against its reviewed tool definitions.
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show how a server's tools differ from their reviewed definitions (NAME.tools.lock).",
        discussion: """
            Starts the server jailed (as `mcpjail run` would), lists its tools and compares each \
            with NAME.tools.lock, field by field: new tools, removed tools, changed names, \
            descriptions, schemas and annotations, and changed instructions. Texts that look like \
            prompt injections (hidden Unicode, bidi controls, ANSI escapes, directives aimed at \
            the model) are listed as findings. Exit 0 when nothing differs, 1 otherwise.

            Examples:
              mcpjail diff git
              mcpjail diff time --profiles ./profiles
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Argument(help: "The profile name.")
    var name: String

    func run() throws {
        do {
            let (profile, pinned, current) = try ToolReviewSession.load(name, options: profileOptions)
            let report = Self.report(pinned: pinned, current: current)
            print(report.isEmpty ? "\(name): the tools match their reviewed definitions" : report.joined(separator: "\n"))
            if !report.isEmpty { throw ExitCode(1) }
            _ = profile
        } catch let error as ExitCode {
            throw error
        } catch {
            throw reportFailure(error)
        }
    }

    static func report(pinned: ToolLock?, current: ToolLock) -> [String] {
        var lines: [String] = []
        let before = pinned?.tools ?? [:]
        if pinned?.instructions != current.instructions {
            lines.append("instructions: changed (every tool is withheld until approved)")
        }
        for name in Set(before.keys).union(current.tools.keys).sorted() {
            switch (before[name], current.tools[name]) {
            case (nil, let now?):
                lines.append("+ \(name): new")
                for field in ToolFingerprint.fields { if let value = now[field] { lines.append("    \(field): \(brief(value))") } }
            case (_?, nil):
                lines.append("- \(name): no longer offered")
            case (let old?, let now?):
                let differences = ToolFingerprint.differences(pinned: old, current: now)
                guard !differences.isEmpty else { continue }
                lines.append("~ \(name): changed")
                for difference in differences {
                    lines.append("    \(difference.field):")
                    lines.append("      - \(difference.pinned.map(brief) ?? "(absent)")")
                    lines.append("      + \(difference.current.map(brief) ?? "(absent)")")
                }
            case (nil, nil):
                break
            }
            if let now = current.tools[name] {
                for finding in InjectionScanner.scan(tool: now) { lines.append("    finding: \(finding)") }
            }
        }
        return lines
    }

    static func brief(_ value: JSONValue) -> String {
        let text = String(decoding: CanonicalJSON.serialize(value), as: UTF8.self)
        let visible = text.unicodeScalars.map { scalar -> String in
            scalar.properties.isWhitespace && scalar != " " || scalar.value < 0x20 || (0xE0000...0xE007F).contains(scalar.value)
                || (0x200B...0x200F).contains(scalar.value) || (0x202A...0x202E).contains(scalar.value)
                ? "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}" : String(scalar)
        }.joined()
        return visible.count > 300 ? String(visible.prefix(300)) + "…" : visible
    }
}

/// `mcpjail approve NAME [TOOL...]`: accept the current definitions after review.
struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Re-pin a server's tool definitions after review: update NAME.tools.lock.",
        discussion: """
            Starts the server jailed, lists its tools and records the current definitions of \
            the named tools in NAME.tools.lock (without names: every tool, the instructions and \
            the serverInfo). Review `mcpjail diff NAME` first. Running sessions keep their \
            policy; the next start uses the new pins.

            Examples:
              mcpjail diff git && mcpjail approve git           # nothing changed: a no-op
              mcpjail approve git git_status                    # accept one changed tool
            """)

    @OptionGroup var profileOptions: ProfileOptions

    @Argument(help: "The profile name.")
    var name: String

    @Argument(help: "The tools to approve (default: all, and the instructions).")
    var tools: [String] = []

    func run() throws {
        do {
            let (profile, pinned, current) = try ToolReviewSession.load(name, options: profileOptions)
            var lock: ToolLock
            if tools.isEmpty {
                lock = current
            } else {
                guard let pinned else {
                    throw MCPJailError(.notPinned, "\(name) has no NAME.tools.lock yet", hint: "run `mcpjail approve \(name)` without tool names, or `mcpjail pin \(name)`")
                }
                lock = pinned
                for tool in tools {
                    if let definition = current.tools[tool] {
                        lock.tools[tool] = definition
                    } else if lock.tools[tool] != nil {
                        lock.tools[tool] = nil  // no longer offered: approving its removal
                    } else {
                        throw MCPJailError(.invalidArgument, "\(name) offers no tool '\(tool)'")
                    }
                }
            }
            for line in try Pin.writeToolLock(lock, for: profile) { print(line) }
        } catch {
            throw reportFailure(error)
        }
    }
}

/// The profile, its tool lock, and what the server offers now.
enum ToolReviewSession {
    static func load(_ name: String, options: ProfileOptions) throws -> (Profile, ToolLock?, ToolLock) {
        let environment = ProcessInfo.processInfo.environment
        let profile = try options.store().load(name)
        let state = StateDirectory.resolve(environment: environment, isRoot: geteuid() == 0)
        let pinned = try ToolLock.load(forProfileAt: profile.path, name: profile.name)
        let current = try ToolListing.observe(profile: profile, state: state)
        return (profile, pinned, current)
    }
}
