import Crypto
import FoundationEssentials
import Glibc

/// Reads and validates one profile file into a ``Profile`` with every default filled in.
///
/// Validation never stops at the first problem: every unknown key, wrong type, bad path,
/// size or duration is collected, each with file, line and key path, and reported together
/// in one ``ProfileError``. A profile with any problem yields no ``Profile`` at all, so
/// nothing is ever started from half a policy.
public enum ProfileParser {
    /// Loads `path` as profile `name`. `${PROFILE_DIR}` expands to the directory that really
    /// holds the file (symlinks resolved), so a profile symlinked into a profile directory
    /// still finds what sits beside its original.
    public static func load(path: String, name: String) throws(ProfileError) -> Profile {
        guard let bytes = FileContents.bytes(path) else {
            let failure = errno
            throw ProfileError(problems: [
                ProfileProblem(file: path, line: nil, keyPath: "", message: "cannot read the file: \(readFailure(failure))")
            ])
        }
        // realpath(3), relative paths against the current directory.
        let real: String
        if let resolved = realpath(path, nil) {
            real = String(cString: resolved)
            free(resolved)
        } else {
            real = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        let profileDirectory = PathSyntax.directoryName(PathSyntax.normalize(real))
        return try parse(bytes: bytes, path: path, name: name, profileDirectory: profileDirectory)
    }

    /// Validates profile text. `profileDirectory` is what `${PROFILE_DIR}` expands to.
    /// `checkCommand` decides whether `server.command` must exist and be executable here.
    public static func parse(
        data: Data, path: String, name: String, profileDirectory: String, checkCommand: Bool = true
    ) throws(ProfileError) -> Profile {
        try parse(bytes: Array(data), path: path, name: name, profileDirectory: profileDirectory, checkCommand: checkCommand)
    }

    /// ``parse(data:path:name:profileDirectory:checkCommand:)`` of the bytes `load` read, with
    /// no trip through Foundation's `Data` and its UTF-8 decoding (~0.05 ms of each start).
    static func parse(
        bytes: [UInt8], path: String, name: String, profileDirectory: String, checkCommand: Bool = true
    ) throws(ProfileError) -> Profile {
        if let nul = bytes.firstIndex(of: 0) {
            let line = bytes[..<nul].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            throw ProfileError(problems: [
                ProfileProblem(file: path, line: line, keyPath: "", message: "the file contains a NUL byte")
            ])
        }
        guard let source = String(validating: bytes, as: UTF8.self) else {
            throw ProfileError(problems: [
                ProfileProblem(file: path, line: nil, keyPath: "", message: "the file is not valid UTF-8")
            ])
        }
        let document: TOMLDocument
        switch TOMLDocument.parse(source) {
        case .success(let parsed):
            document = parsed
        case .failure(let failure):
            throw ProfileError(problems: [
                ProfileProblem(file: path, line: failure.line, keyPath: "", message: failure.message)
            ])
        }
        let validator = ProfileValidator(
            file: path, locator: document.locator, profileDirectory: profileDirectory, checkCommand: checkCommand)
        let result = validator.profile(root: document.root)
        if !validator.problems.isEmpty {
            throw ProfileError(problems: validator.sortedProblems)
        }
        guard var profile = result else {
            throw ProfileError(problems: [
                ProfileProblem(file: path, line: nil, keyPath: "", message: "the profile is incomplete")
            ])
        }
        profile.name = name
        profile.path = path
        profile.setDigest(of: bytes)
        return profile
    }

    private static func readFailure(_ error: Int32) -> String {
        switch error {
        case ENOENT, ENOTDIR: "no such file"
        case EISDIR: "it is a directory"
        case EACCES: "permission denied"
        default: String(cString: strerror(error))
        }
    }
}

/// The checks, one method per table. Later issues add theirs (`[network]`, `[seccomp]`, ...)
/// as a key in ``profile(root:)`` and a method here.
final class ProfileValidator {
    let file: String
    let locator: TOMLLocator
    let profileDirectory: String
    let checkCommand: Bool
    private(set) var problems: [ProfileProblem] = []

    init(file: String, locator: TOMLLocator, profileDirectory: String, checkCommand: Bool) {
        self.file = file
        self.locator = locator
        self.profileDirectory = profileDirectory
        self.checkCommand = checkCommand
    }

    /// Problems in file order (stable for problems on the same line).
    var sortedProblems: [ProfileProblem] {
        problems.enumerated().sorted { lhs, rhs in
            let (l, r) = (lhs.element.line ?? 0, rhs.element.line ?? 0)
            return l != r ? l < r : lhs.offset < rhs.offset
        }.map(\.element)
    }

    func report(_ path: KeyPath, _ message: String, line: Int? = nil) {
        problems.append(
            ProfileProblem(
                file: file, line: line ?? locator.line(for: path), keyPath: path.description, message: message))
    }

    // MARK: tables

    func profile(root: [(key: String, value: TOMLNode)]) -> Profile? {
        var top = TableReader(path: .root, entries: root)
        let description = top.take("description").flatMap { string($0, at: .root.appending("description")) } ?? ""
        let server = top.takeTable("server", validator: self).flatMap(server)
        if !top.has("server") {
            report(KeyPath(keys: ["server"]), "missing table [server]: it names the command to run")
        }
        let filesystem = top.takeTable("filesystem", validator: self).map(filesystem) ?? Profile.Filesystem()
        let network = top.takeTable("network", validator: self).map(network) ?? Profile.Network()
        let limits = top.takeTable("limits", validator: self).map(limits) ?? Profile.Limits()
        let seccomp = top.takeTable("seccomp", validator: self).map(seccomp) ?? Profile.Seccomp()
        let (tools, toolDefault, blockSuspicious) = top.takeTable("tools", validator: self).map(self.tools) ?? ([:], .deny, false)
        let auth = top.takeTable("auth", validator: self).map(self.auth) ?? Profile.Auth()
        let resources = top.takeTable("resources", validator: self).map(exposure) ?? Profile.Exposure()
        let prompts = top.takeTable("prompts", validator: self).map(exposure) ?? Profile.Exposure()
        let secrets = top.takeTable("secrets", validator: self).map(self.secrets) ?? []
        let audit = top.takeTable("audit", validator: self).map(self.audit) ?? Profile.AuditSettings()
        top.finish(self)
        guard let server else { return nil }
        checkCodeIsReadOnly(server: server, filesystem: filesystem)
        for secret in secrets where server.env[secret.name] != nil {
            report(KeyPath(keys: ["secrets", secret.name]), "'\(secret.name)' is also set in server.env; set it in one place")
        }
        var profile = Profile(
            name: "", path: file, digest: "", description: description, server: server,
            filesystem: filesystem, network: network, limits: limits, seccomp: seccomp, tools: tools, toolDefault: toolDefault,
            auth: auth, resources: resources, prompts: prompts, secrets: secrets, audit: audit)
        profile.blockSuspicious = blockSuspicious
        return profile
    }

    func server(_ table: TableReader) -> Profile.Server? {
        var table = table
        var command: String?
        let commandPath = table.path.appending("command")
        if let node = table.take("command") {
            if let raw = string(node, at: commandPath), let expanded = path(raw, at: commandPath) {
                command = expanded
                if checkCommand { checkExecutable(expanded, at: commandPath) }
            }
        } else {
            report(commandPath, "required: the absolute path of the server's executable")
        }
        let args = table.take("args").flatMap { node in
            stringArray(node, at: table.path.appending("args"), expandingProfileDir: true)
        } ?? []
        let env = table.take("env").flatMap { environment($0, at: table.path.appending("env")) } ?? [:]
        let workdirPath = table.path.appending("workdir")
        let workdir = table.take("workdir").flatMap { node in
            string(node, at: workdirPath).flatMap { path($0, at: workdirPath) }
        } ?? "/"
        let stopPath = table.path.appending("stop_timeout")
        let stopTimeout = table.take("stop_timeout").flatMap { duration($0, at: stopPath, max: .seconds(24 * 3600)) }
            ?? .seconds(2)
        let codePath = table.path.appending("code")
        let code = table.take("code").flatMap { pathArray($0, at: codePath) } ?? []
        let pinnedPath = table.path.appending("pinned")
        let pinned = table.take("pinned").flatMap { flag($0, at: pinnedPath) } ?? true
        table.finish(self)
        guard let command else { return nil }
        return Profile.Server(
            command: command, args: args, env: env, workdir: workdir, stopTimeout: stopTimeout, code: code, pinned: pinned)
    }

    /// Pinned code must stay read-only in the jail: no `code` path may lie inside a
    /// `read_write` path, nor hold one (the server could change what was verified, and its
    /// own writes would break the pins).
    func checkCodeIsReadOnly(server: Profile.Server, filesystem: Profile.Filesystem) {
        func inside(_ path: String, _ parent: String) -> Bool {
            path == parent || parent == "/" || path.hasPrefix(parent + "/")
        }
        for (index, code) in server.code.enumerated() {
            for writable in filesystem.readWrite {
                if inside(code, writable) {
                    report(KeyPath(keys: ["server", "code"]).appending(index: index),
                        "'\(code)' is inside filesystem.read_write '\(writable)': pinned code must be read-only in the jail")
                } else if inside(writable, code) {
                    report(KeyPath(keys: ["server", "code"]).appending(index: index),
                        "'\(code)' holds filesystem.read_write '\(writable)': pinned code must be read-only in the jail")
                }
            }
        }
    }

    func filesystem(_ table: TableReader) -> Profile.Filesystem {
        var table = table
        let readOnlyPath = table.path.appending("read_only")
        let readWritePath = table.path.appending("read_write")
        let readOnly = table.take("read_only").flatMap { pathArray($0, at: readOnlyPath) } ?? []
        let readWrite = table.take("read_write").flatMap { pathArray($0, at: readWritePath) } ?? []
        for (index, entry) in readWrite.enumerated() where readOnly.contains(entry) {
            report(readWritePath.appending(index: index), "'\(entry)' is also in read_only; list it once")
        }
        var tmpfs: [String: Int] = [:]
        let tmpfsPath = table.path.appending("tmpfs")
        if let node = table.take("tmpfs") {
            if case .table(let entries) = node {
                for (mount, value) in entries {
                    let entryPath = tmpfsPath.appending(mount)
                    let expanded = path(mount, at: entryPath)
                    let bytes = size(value, at: entryPath, min: 4096)
                    if let expanded, let bytes {
                        if tmpfs[expanded] != nil {
                            report(entryPath, "'\(expanded)' is listed twice")
                        }
                        tmpfs[expanded] = bytes
                    }
                }
            } else {
                report(tmpfsPath, "expected a table of mount point = size, like { \"/tmp\" = \"64M\" }, found \(node.typeName)")
            }
        }
        table.finish(self)
        return Profile.Filesystem(readOnly: readOnly, readWrite: readWrite, tmpfs: tmpfs)
    }

    /// `[network]`: `egress` entries (``EgressRule``), `max_connections`, `idle_timeout`.
    func network(_ table: TableReader) -> Profile.Network {
        typealias N = Profile.Network
        var table = table
        var network = N()
        let egressPath = table.path.appending("egress")
        if let node = table.take("egress") {
            if case .array(let elements) = node {
                var seen: [EgressRule] = []
                for (index, element) in elements.enumerated() {
                    let elementPath = egressPath.appending(index: index)
                    guard let text = string(element, at: elementPath) else { continue }
                    switch EgressRule.parse(text) {
                    case .success(let rule):
                        if seen.contains(rule) {
                            report(elementPath, "'\(rule)' is listed twice")
                        } else {
                            seen.append(rule)
                        }
                    case .failure(let problem):
                        report(elementPath, problem.message)
                    }
                }
                network.egress = seen
            } else {
                report(egressPath, "expected an array of destinations like [\"api.github.com:443\"], found \(node.typeName)")
            }
        }
        let maxPath = table.path.appending("max_connections")
        if let node = table.take("max_connections"),
            let value = count(node, at: maxPath, min: 1, max: N.maxMaxConnections, unlimitedAllowed: false)
        {
            network.maxConnections = value
        }
        let idlePath = table.path.appending("idle_timeout")
        if let node = table.take("idle_timeout"), let value = duration(node, at: idlePath, max: .seconds(24 * 3600)) {
            if value < .seconds(1) {
                report(idlePath, "'\(DurationSyntax.format(value))' is too short (at least 1s)")
            } else {
                network.idleTimeout = value
            }
        }
        table.finish(self)
        return network
    }

    func limits(_ table: TableReader) -> Profile.Limits {
        typealias L = Profile.Limits
        var table = table
        var limits = L()
        let maxPath = table.path.appending("max_message")
        if let node = table.take("max_message"),
            let value = size(node, at: maxPath, min: L.minMaxMessageBytes, max: L.maxMaxMessageBytes)
        {
            limits.maxMessageBytes = value
        }
        let memoryPath = table.path.appending("memory")
        if let node = table.take("memory") {
            if isUnlimited(node) {
                limits.memoryBytes = nil
            } else if let value = size(node, at: memoryPath, min: L.minMemoryBytes, unlimitedAllowed: true) {
                limits.memoryBytes = value
            }
        }
        let pidsPath = table.path.appending("pids")
        if let node = table.take("pids") {
            if isUnlimited(node) {
                limits.pids = nil
            } else if let value = count(node, at: pidsPath, min: 1, max: L.maxPids, unlimitedAllowed: true) {
                limits.pids = value
            }
        }
        let cpuPath = table.path.appending("cpu")
        if let node = table.take("cpu") {
            if isUnlimited(node) {
                limits.cpuCores = nil
            } else if let value = cores(node, at: cpuPath) {
                limits.cpuCores = value
            }
        }
        let openPath = table.path.appending("open_files")
        if let node = table.take("open_files"),
            let value = count(node, at: openPath, min: L.minOpenFiles, max: L.maxOpenFiles, unlimitedAllowed: false)
        {
            limits.openFiles = value
        }
        let fileSizePath = table.path.appending("file_size")
        if let node = table.take("file_size") {
            if isUnlimited(node) {
                limits.fileSizeBytes = nil
            } else if let value = size(node, at: fileSizePath, min: L.minFileSizeBytes, unlimitedAllowed: true) {
                limits.fileSizeBytes = value
            }
        }
        let year = Duration.seconds(366 * 24 * 3600)
        let cpuTimePath = table.path.appending("cpu_time")
        if let node = table.take("cpu_time") {
            if isUnlimited(node) {
                limits.cpuTime = nil
            } else if let value = duration(node, at: cpuTimePath, max: year, unlimitedAllowed: true) {
                if value < .seconds(1) {
                    report(cpuTimePath, "'\(DurationSyntax.format(value))' is too short (at least 1s: the kernel counts CPU time in whole seconds)")
                } else {
                    limits.cpuTime = value
                }
            }
        }
        let wallPath = table.path.appending("wall_time")
        if let node = table.take("wall_time") {
            if isUnlimited(node) {
                limits.wallTime = nil
            } else if let value = duration(node, at: wallPath, max: year, unlimitedAllowed: true) {
                if value < .seconds(1) {
                    report(wallPath, "'\(DurationSyntax.format(value))' is too short (at least 1s)")
                } else {
                    limits.wallTime = value
                }
            }
        }
        if let node = table.take("call_timeout"), let value = callTimeout(node, at: table.path.appending("call_timeout")) {
            limits.callTimeout = value
        }
        if let node = table.take("relay_spin"),
            let value = duration(node, at: table.path.appending("relay_spin"), max: L.maxRelaySpin)
        {
            limits.relaySpin = value
        }
        let enforcePath = table.path.appending("enforce")
        if let node = table.take("enforce"), let text = string(node, at: enforcePath) {
            if let value = L.Enforcement(rawValue: text) {
                limits.enforce = value
            } else {
                report(enforcePath, "'\(text)' is not one of \"strict\", \"best-effort\"")
            }
        }
        table.finish(self)
        return limits
    }

    /// `"unlimited"`, accepted by the limits that may be switched off.
    func isUnlimited(_ node: TOMLNode) -> Bool {
        if case .string(let text) = node, text.trimmingSpaces() == "unlimited" { return true }
        return false
    }

    /// A whole number in `min...max` (an integer, or a string of digits).
    func count(_ node: TOMLNode, at keyPath: KeyPath, min: Int, max: Int, unlimitedAllowed: Bool) -> Int? {
        let orUnlimited = unlimitedAllowed ? " or \"unlimited\"" : ""
        let value: Int
        switch node {
        case .integer(let number):
            value = number
        case .string(let text):
            guard let number = Int(text.trimmingSpaces()) else {
                report(keyPath, "'\(text)' is not a whole number\(orUnlimited)")
                return nil
            }
            value = number
        default:
            report(keyPath, "expected a whole number\(orUnlimited), found \(node.typeName)")
            return nil
        }
        if value < min || value > max {
            report(keyPath, "\(value) is out of range (\(min) to \(max))")
            return nil
        }
        return value
    }

    /// CPU cores: a positive number like 1, 2 or 0.5.
    func cores(_ node: TOMLNode, at keyPath: KeyPath) -> Double? {
        let value: Double
        switch node {
        case .integer(let number): value = Double(number)
        case .float(let number): value = number
        case .string(let text):
            guard let number = Double(text.trimmingSpaces()), number.isFinite else {
                report(keyPath, "'\(text)' is not a number of cores like 1 or 0.5, or \"unlimited\"")
                return nil
            }
            value = number
        default:
            report(keyPath, "expected a number of cores like 1 or 0.5, or \"unlimited\", found \(node.typeName)")
            return nil
        }
        let (low, high) = (Profile.Limits.minCPUCores, Profile.Limits.maxCPUCores)
        guard value.isFinite, value >= low, value <= high else {
            report(keyPath, "\(Self.formatCores(value)) cores is out of range (\(Self.formatCores(low)) to \(Self.formatCores(high)))")
            return nil
        }
        return value
    }

    static func formatCores(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    func seccomp(_ table: TableReader) -> Profile.Seccomp {
        var table = table
        let allowPath = table.path.appending("allow")
        let denyPath = table.path.appending("deny")
        let allow = table.take("allow").flatMap { syscallArray($0, at: allowPath) } ?? []
        let deny = table.take("deny").flatMap { syscallArray($0, at: denyPath) } ?? []
        for (index, name) in deny.enumerated() where allow.contains(name) {
            report(denyPath.appending(index: index), "'\(name)' is also in allow; a syscall is either allowed or denied")
        }
        table.finish(self)
        return Profile.Seccomp(allow: allow, deny: deny)
    }

    /// Syscall names, each one known to ``SyscallNames``.
    func syscallArray(_ node: TOMLNode, at keyPath: KeyPath) -> [String]? {
        guard case .array(let elements) = node else {
            report(keyPath, "expected an array of syscall names like [\"ptrace\"], found \(node.typeName)")
            return nil
        }
        var out: [String] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            let elementPath = keyPath.appending(index: index)
            guard let name = string(element, at: elementPath) else {
                valid = false
                continue
            }
            guard SyscallNames.isKnown(name) else {
                report(elementPath, "unknown syscall '\(name)'")
                valid = false
                continue
            }
            if out.contains(name) {
                report(elementPath, "'\(name)' is listed twice")
            }
            out.append(name)
        }
        return valid ? out : nil
    }

    // MARK: values

    func string(_ node: TOMLNode, at path: KeyPath) -> String? {
        guard case .string(let value) = node else {
            report(path, "expected a string, found \(node.typeName)")
            return nil
        }
        return value
    }

    func path(_ raw: String, at keyPath: KeyPath) -> String? {
        switch PathSyntax.expand(raw, profileDirectory: profileDirectory) {
        case .success(let expanded): return expanded
        case .failure(let message):
            report(keyPath, message.message)
            return nil
        }
    }

    func pathArray(_ node: TOMLNode, at keyPath: KeyPath) -> [String]? {
        guard case .array(let elements) = node else {
            report(keyPath, "expected an array of absolute paths, found \(node.typeName)")
            return nil
        }
        var out: [String] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            let elementPath = keyPath.appending(index: index)
            guard let raw = string(element, at: elementPath), let expanded = path(raw, at: elementPath) else {
                valid = false
                continue
            }
            if out.contains(expanded) {
                report(elementPath, "'\(expanded)' is listed twice")
            }
            out.append(expanded)
        }
        return valid ? out : nil
    }

    /// Strings; one that starts with `${PROFILE_DIR}` is a path and is expanded as one.
    func stringArray(_ node: TOMLNode, at keyPath: KeyPath, expandingProfileDir: Bool) -> [String]? {
        guard case .array(let elements) = node else {
            report(keyPath, "expected an array of strings, found \(node.typeName)")
            return nil
        }
        var out: [String] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            let elementPath = keyPath.appending(index: index)
            guard let raw = string(element, at: elementPath), let value = expandValue(raw, at: elementPath) else {
                valid = false
                continue
            }
            out.append(value)
        }
        return valid ? out : nil
    }

    /// An argument or environment value: `${PROFILE_DIR}...` is expanded as a path; the
    /// variable anywhere else is refused rather than passed on unexpanded.
    func expandValue(_ raw: String, at keyPath: KeyPath) -> String? {
        if raw.utf8.contains(0) {
            report(keyPath, "contains a NUL byte")
            return nil
        }
        if raw.hasPrefix(PathSyntax.profileDirVariable) { return path(raw, at: keyPath) }
        if raw.contains(PathSyntax.profileDirVariable) {
            report(keyPath, "'\(raw)': ${PROFILE_DIR} is expanded only at the start of a value; pass the path as a separate argument")
            return nil
        }
        return raw
    }

    func environment(_ node: TOMLNode, at keyPath: KeyPath) -> [String: String]? {
        guard case .table(let entries) = node else {
            report(keyPath, "expected a table of NAME = \"value\", like { TZ = \"UTC\" }, found \(node.typeName)")
            return nil
        }
        var out: [String: String] = [:]
        for (name, value) in entries {
            let entryPath = keyPath.appending(name)
            if !Self.isVariableName(name) {
                report(entryPath, "'\(name)' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
            }
            guard let raw = string(value, at: entryPath), let expanded = expandValue(raw, at: entryPath) else {
                continue
            }
            out[name] = expanded
        }
        return out
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_")
        }
    }

    func size(
        _ node: TOMLNode, at keyPath: KeyPath, min: Int = 1, max: Int = Int.max, unlimitedAllowed: Bool = false
    ) -> Int? {
        let bytes: Int
        switch node {
        case .integer(let value):
            bytes = value
        case .string(let text):
            switch SizeSyntax.parse(text) {
            case .success(let value): bytes = value
            case .failure(let message):
                report(keyPath, message.message + (unlimitedAllowed ? " (or \"unlimited\")" : ""))
                return nil
            }
        default:
            let orUnlimited = unlimitedAllowed ? ", or \"unlimited\"" : ""
            report(keyPath, "expected a size like \"64M\" or a number of bytes\(orUnlimited), found \(node.typeName)")
            return nil
        }
        if bytes < min {
            report(keyPath, "\(bytes) bytes is too small (at least \(SizeSyntax.format(min)))")
            return nil
        }
        if bytes > max {
            report(keyPath, "\(bytes) bytes is too large (at most \(SizeSyntax.format(max)))")
            return nil
        }
        return bytes
    }

    func duration(_ node: TOMLNode, at keyPath: KeyPath, max: Duration, unlimitedAllowed: Bool = false) -> Duration? {
        let orUnlimited = unlimitedAllowed ? ", or \"unlimited\"" : ""
        guard case .string(let text) = node else {
            report(keyPath, "expected a duration like \"2s\" or \"500ms\"\(orUnlimited), found \(node.typeName)")
            return nil
        }
        switch DurationSyntax.parse(text) {
        case .success(let value):
            if value > max {
                report(keyPath, "'\(text)' is too long (at most \(DurationSyntax.format(max)))")
                return nil
            }
            return value
        case .failure(let message):
            report(keyPath, message.message + (unlimitedAllowed ? " (or \"unlimited\")" : ""))
            return nil
        }
    }

    /// stat(2) and access(2), not FileManager, whose first use costs `run` ~0.1 ms.
    func checkExecutable(_ command: String, at keyPath: KeyPath) {
        var info = stat()
        if stat(command, &info) != 0 {
            report(keyPath, "\(command) does not exist")
        } else if info.st_mode & S_IFMT == S_IFDIR {
            report(keyPath, "\(command) is a directory, not an executable")
        } else if access(command, X_OK) != 0 {
            report(keyPath, "\(command) is not executable")
        }
    }
}

/// One table being read: hands out values by key, remembers which keys it was asked
/// about, and at the end reports every key nobody asked about as unknown.
struct TableReader {
    let path: KeyPath
    let entries: [(key: String, value: TOMLNode)]
    private var known: [String] = []

    init(path: KeyPath, entries: [(key: String, value: TOMLNode)]) {
        self.path = path
        self.entries = entries
    }

    func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

    mutating func take(_ key: String) -> TOMLNode? {
        known.append(key)
        return entries.first { $0.key == key }?.value
    }

    /// A sub-table; any other type is reported and yields nil.
    mutating func takeTable(_ key: String, validator: ProfileValidator) -> TableReader? {
        guard let node = take(key) else { return nil }
        let subPath = path.appending(key)
        guard case .table(let subEntries) = node else {
            validator.report(subPath, "expected a table [\(subPath)], found \(node.typeName)")
            return nil
        }
        return TableReader(path: subPath, entries: subEntries)
    }

    func finish(_ validator: ProfileValidator) {
        for (key, _) in entries where !known.contains(key) {
            var message = "unknown key"
            if let suggestion = Self.closest(to: key, in: known) {
                message += " (did you mean '\(suggestion)'?)"
            } else if known.isEmpty {
                message += " (this table takes no keys yet)"
            } else {
                message += " (known here: \(known.joined(separator: ", ")))"
            }
            validator.report(path.appending(key), message)
        }
    }

    /// The known key within a small edit distance, if any.
    static func closest(to key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let limit = max(1, min(3, best.0.count / 3))
        return best.1 <= limit ? best.0 : nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = Swift.min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// The relay's tables: `[auth]`, `[tools]`, `[resources]`, `[prompts]`, `[secrets]`, `[audit]`.
/// (In this file, not its own: swiftc 6.3 reports a circular reference through `TOMLNode`
/// when another file iterates `TableReader.entries`.)
extension ProfileValidator {
    /// `[tools]`: `default = "deny" | "allow"` and one `[tools.NAME]` table per tool. A tool
    /// cannot be called `default`: that name is the table's own key.
    func tools(_ table: TableReader) -> ([String: Profile.ToolPolicy], Profile.ToolDefault, Bool) {
        var blockSuspicious = false
        var result: [String: Profile.ToolPolicy] = [:]
        var toolDefault = Profile.ToolDefault.deny
        for (name, node) in table.entries {
            let toolPath = table.path.appending(name)
            if name == "block_suspicious" {
                blockSuspicious = flag(node, at: toolPath) ?? false
                continue
            }
            if name == "default" {
                if let text = string(node, at: toolPath) {
                    if let value = Profile.ToolDefault(rawValue: text) {
                        toolDefault = value
                    } else {
                        report(toolPath, "'\(text)' is not one of \"deny\", \"allow\"")
                    }
                }
                continue
            }
            guard case .table(let entries) = node else {
                report(toolPath, "expected a table [tools.\(TOMLText.key(name))] (or the key default = \"deny\"), found \(node.typeName)")
                continue
            }
            if name.isEmpty {
                report(toolPath, "a tool name cannot be empty")
                continue
            }
            result[name] = tool(TableReader(path: toolPath, entries: entries))
        }
        return (result, toolDefault, blockSuspicious)
    }

    func tool(_ table: TableReader) -> Profile.ToolPolicy {
        var table = table
        var policy = Profile.ToolPolicy()
        let scopePath = table.path.appending("scope")
        if let node = table.take("scope"), let scope = string(node, at: scopePath) {
            if scope.isEmpty || scope.contains(where: { $0 == " " || $0 == "\t" }) {
                report(scopePath, "'\(scope)' is not one scope like \"repo:read\" (no spaces)")
            } else {
                policy.scope = scope
            }
        }
        let ratePath = table.path.appending("rate")
        if let node = table.take("rate") { policy.rate = rate(node, at: ratePath) }
        if let node = table.take("timeout") { policy.timeout = callTimeout(node, at: table.path.appending("timeout")) }
        let strictPath = table.path.appending("strict")
        if let node = table.take("strict") { policy.strict = flag(node, at: strictPath) ?? true }
        let writePath = table.path.appending("write")
        if let node = table.take("write") { policy.write = flag(node, at: writePath) ?? false }
        let fieldsPath = table.path.appending("idempotency_fields")
        if let node = table.take("idempotency_fields"), let fields = stringArray(node, at: fieldsPath, expandingProfileDir: false) {
            if fields.isEmpty {
                report(fieldsPath, "an empty list would make every call of the tool one operation; list the fields that identify a write, or remove the key")
            } else {
                for (index, field) in fields.enumerated() where fields[..<index].contains(field) {
                    report(fieldsPath.appending(index: index), "'\(field)' is listed twice")
                }
                policy.idempotencyFields = fields
            }
        }
        let ttlPath = table.path.appending("idempotency_ttl")
        if let node = table.take("idempotency_ttl"), let value = duration(node, at: ttlPath, max: .seconds(366 * 24 * 3600)) {
            if value < .seconds(1) {
                report(ttlPath, "'\(DurationSyntax.format(value))' is too short (at least 1s)")
            } else {
                policy.idempotencyTTL = value
            }
        }
        if !policy.write, table.has("idempotency_fields") || table.has("idempotency_ttl") {
            report(writePath, "idempotency_fields and idempotency_ttl apply to write tools only; add write = true")
        }
        let argumentsPath = table.path.appending("arguments")
        if let node = table.take("arguments") {
            if case .table(_) = node {
                policy.arguments = json(node, at: argumentsPath)
                if let fragment = policy.arguments, let problem = ToolSchemas.problem(inFragment: fragment) {
                    report(argumentsPath, "not a JSON Schema the relay can enforce: \(problem)")
                    policy.arguments = nil
                }
            } else {
                report(argumentsPath, "expected a table holding a JSON Schema fragment, like { properties = { count = { maximum = 10 } } }, found \(node.typeName)")
            }
        }
        table.finish(self)
        return policy
    }

    func auth(_ table: TableReader) -> Profile.Auth {
        var table = table
        var auth = Profile.Auth()
        let requiredPath = table.path.appending("required")
        if let node = table.take("required") { auth.required = flag(node, at: requiredPath) ?? false }
        let keysPath = table.path.appending("keys")
        if let node = table.take("keys"), let keys = pathArray(node, at: keysPath) {
            for (index, key) in keys.enumerated() where !FileManager.default.isReadableFile(atPath: key) {
                report(keysPath.appending(index: index), "\(key) is not a readable file")
            }
            auth.keys = keys
        }
        let issuerPath = table.path.appending("issuer")
        if let node = table.take("issuer") { auth.issuer = nonEmptyString(node, at: issuerPath) }
        let audiencePath = table.path.appending("audience")
        if let node = table.take("audience") { auth.audience = nonEmptyString(node, at: audiencePath) }
        let skewPath = table.path.appending("clock_skew")
        if let node = table.take("clock_skew"), let value = duration(node, at: skewPath, max: .seconds(600)) {
            auth.clockSkew = value
        }
        let ratePath = table.path.appending("rate")
        if let node = table.take("rate") { auth.rate = rate(node, at: ratePath) }
        table.finish(self)
        if auth.required {
            if auth.keys.isEmpty && !table.has("keys") { report(keysPath, "required when auth is required: the files of the keys that sign tokens") }
            if auth.issuer == nil && !table.has("issuer") { report(issuerPath, "required when auth is required: the token issuer (iss)") }
            if auth.audience == nil && !table.has("audience") { report(audiencePath, "required when auth is required: this server's audience (aud)") }
        }
        return auth
    }

    /// `[resources]` or `[prompts]`: `allow = ["glob", ...]`.
    func exposure(_ table: TableReader) -> Profile.Exposure {
        var table = table
        var exposure = Profile.Exposure()
        let allowPath = table.path.appending("allow")
        if let node = table.take("allow"), let patterns = stringArray(node, at: allowPath, expandingProfileDir: false) {
            for (index, pattern) in patterns.enumerated() where pattern.isEmpty {
                report(allowPath.appending(index: index), "an empty pattern matches nothing; remove it")
            }
            exposure.allow = patterns
        }
        table.finish(self)
        return exposure
    }

    /// `[secrets]`: `NAME = { file = "/path" }` (`~/` is the invoking user's home) or
    /// `NAME = { env = "HOST_VAR" }`.
    func secrets(_ table: TableReader) -> [Profile.Secret] {
        var out: [Profile.Secret] = []
        for (name, node) in table.entries {
            let secretPath = table.path.appending(name)
            if !Self.isVariableName(name) {
                report(secretPath, "'\(name)' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
                continue
            }
            guard case .table(let entries) = node else {
                report(secretPath, "expected { file = \"/path\" } or { env = \"HOST_VAR\" }, found \(node.typeName)")
                continue
            }
            var reader = TableReader(path: secretPath, entries: entries)
            let fileNode = reader.take("file")
            let envNode = reader.take("env")
            reader.finish(self)
            if fileNode != nil && envNode != nil {
                report(secretPath, "give either file or env, not both")
            } else if let file = fileNode {
                let filePath = secretPath.appending("file")
                guard var raw = string(file, at: filePath) else { continue }
                if raw.hasPrefix("~/") {
                    let home = ProcessInfo.processInfo.environment["HOME"] ?? ProfileParser.passwdHome()
                    raw = home + raw.dropFirst(1)
                }
                if let expanded = path(raw, at: filePath) {
                    out.append(Profile.Secret(name: name, source: .file(expanded)))
                }
            } else if let env = envNode {
                let envPath = secretPath.appending("env")
                guard let variable = string(env, at: envPath) else { continue }
                if !Self.isVariableName(variable) {
                    report(envPath, "'\(variable)' is not a valid environment variable name")
                    continue
                }
                out.append(Profile.Secret(name: name, source: .environment(variable)))
            } else {
                report(secretPath, "name where the value comes from: { file = \"/path\" } or { env = \"HOST_VAR\" }")
            }
        }
        return out.sorted { $0.name < $1.name }
    }

    func audit(_ table: TableReader) -> Profile.AuditSettings {
        var table = table
        var settings = Profile.AuditSettings()
        let logPath = table.path.appending("log_arguments")
        if let node = table.take("log_arguments") { settings.logArguments = flag(node, at: logPath) ?? false }
        table.finish(self)
        return settings
    }

    // MARK: values

    /// A request timeout: 10ms to 24h.
    func callTimeout(_ node: TOMLNode, at keyPath: KeyPath) -> Duration? {
        guard let value = duration(node, at: keyPath, max: .seconds(24 * 3600)) else { return nil }
        if value < .milliseconds(10) {
            report(keyPath, "'\(DurationSyntax.format(value))' is too short (at least 10ms)")
            return nil
        }
        return value
    }

    func flag(_ node: TOMLNode, at keyPath: KeyPath) -> Bool? {
        switch node {
        case .boolean(true): return true
        case .boolean(false): return false
        default:
            report(keyPath, "expected true or false, found \(node.typeName)")
            return nil
        }
    }

    func nonEmptyString(_ node: TOMLNode, at keyPath: KeyPath) -> String? {
        guard let text = string(node, at: keyPath) else { return nil }
        if text.isEmpty {
            report(keyPath, "cannot be empty")
            return nil
        }
        return text
    }

    /// `"10/minute"`; units `second`, `minute`, `hour`, `day` (or `s`, `min`, `h`, `d`).
    func rate(_ node: TOMLNode, at keyPath: KeyPath) -> Profile.Rate? {
        guard let text = string(node, at: keyPath) else { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
        let bad = "'\(text)' is not a rate like \"10/minute\" (units: second, minute, hour, day)"
        guard parts.count == 2, let count = Int(parts[0]) else {
            report(keyPath, bad)
            return nil
        }
        let periods: [String: Int64] = [
            "second": 1, "s": 1, "sec": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400,
        ]
        guard let seconds = periods[parts[1]] else {
            report(keyPath, bad)
            return nil
        }
        guard count >= 1, count <= 1_000_000 else {
            report(keyPath, "\(count) is out of range (1 to 1000000 calls)")
            return nil
        }
        return Profile.Rate(count: count, period: .seconds(seconds))
    }

    /// A TOML value as JSON (for JSON Schema fragments). Dates have no JSON form.
    func json(_ node: TOMLNode, at keyPath: KeyPath) -> JSONValue? {
        switch node {
        case .table(let entries):
            var members: [(String, JSONValue)] = []
            for (key, value) in entries {
                guard let converted = json(value, at: keyPath.appending(key)) else { return nil }
                members.append((key, converted))
            }
            return .object(JSONObject(members))
        case .array(let elements):
            var out: [JSONValue] = []
            for (index, element) in elements.enumerated() {
                guard let converted = json(element, at: keyPath.appending(index: index)) else { return nil }
                out.append(converted)
            }
            return .array(out)
        case .string(let text): return .string(text)
        case .integer(let value): return .number(JSONNumber(value))
        case .float(let value):
            guard let number = JSONNumber(value) else {
                report(keyPath, "\(value) has no JSON form")
                return nil
            }
            return .number(number)
        case .boolean(let value): return .bool(value)
        case .dateTime:
            report(keyPath, "a date or time has no JSON form; write it as a string")
            return nil
        }
    }
}

extension ProfileParser {
    /// The user's home directory from the password database, for `~/` when `HOME` is unset.
    static func passwdHome() -> String {
        guard let entry = getpwuid(geteuid()), let directory = entry.pointee.pw_dir else { return "/" }
        return String(cString: directory)
    }
}
