import FoundationEssentials
import Glibc

/// The effective policy, every default filled in, as `mcpjail check` prints it.
///
/// The TOML form is itself a valid profile (paths already expanded), so what a reviewer
/// reads is exactly what would run. Later issues add their sections to both forms here.
extension Profile {
    public func effectiveTOML() -> String {
        var lines: [String] = []
        lines.append("# mcpjail check \(name): the effective policy, every default filled in")
        lines.append("# profile: \(path)")
        lines.append("# sha256:  \(digest)")
        lines.append("description = \(TOMLText.string(description))")
        lines.append("")
        lines.append("[server]")
        lines.append("command = \(TOMLText.string(server.command))")
        lines.append("args = \(TOMLText.array(server.args))")
        lines.append("env = \(Self.inlineTable(server.env.sorted { $0.key < $1.key }.map { ($0.key, TOMLText.string($0.value)) }))")
        lines.append("workdir = \(TOMLText.string(server.workdir))")
        lines.append("stop_timeout = \(TOMLText.string(DurationSyntax.format(server.stopTimeout)))")
        lines.append("code = \(Self.multilineArray(server.code))")
        if server.pinned {
            lines.append("pinned = true  # run verifies the command and code against \(name).lock before exec")
        } else {
            lines.append("pinned = false  # UNPINNED: run starts the server without verifying its command or code; every audit record says \"pinned\": false")
        }
        lines.append("")
        lines.append("[filesystem]")
        lines.append("read_only = \(Self.multilineArray(filesystem.readOnly))")
        lines.append("read_write = \(Self.multilineArray(filesystem.readWrite))")
        lines.append("tmpfs = \(Self.inlineTable(filesystem.tmpfs.sorted { $0.key < $1.key }.map { ($0.key, TOMLText.string(SizeSyntax.format($0.value))) }))")
        lines.append("")
        lines.append("[network]  # egress proxy on the host; nothing else gets out")
        if network.egress.isEmpty {
            lines.append("egress = []  # no network: the jail's own loopback only")
        } else {
            lines.append("egress = \(Self.multilineArray(network.egress.map(\.description)))")
        }
        lines.append("max_connections = \(network.maxConnections)")
        lines.append("idle_timeout = \(TOMLText.string(DurationSyntax.format(network.idleTimeout)))")
        lines.append("")
        lines.append("[limits]")
        lines.append("max_message = \(TOMLText.string(SizeSyntax.format(limits.maxMessageBytes)))  # \(limits.maxMessageBytes) bytes")
        lines.append("memory = \(Self.sizeOrUnlimited(limits.memoryBytes))  # \(LimitMechanism.memory.rawValue)")
        lines.append("pids = \(limits.pids.map(String.init) ?? "\"unlimited\"")  # \(LimitMechanism.pids.rawValue)")
        lines.append("cpu = \(limits.cpuCores.map(ProfileValidator.formatCores) ?? "\"unlimited\"")  # \(LimitMechanism.cpu.rawValue)")
        lines.append("open_files = \(limits.openFiles)  # \(LimitMechanism.openFiles.rawValue)")
        lines.append("file_size = \(Self.sizeOrUnlimited(limits.fileSizeBytes))  # \(LimitMechanism.fileSize.rawValue)")
        lines.append("cpu_time = \(Self.durationOrUnlimited(limits.cpuTime))  # \(LimitMechanism.cpuTime.rawValue)")
        lines.append("wall_time = \(Self.durationOrUnlimited(limits.wallTime))  # \(LimitMechanism.wallTime.rawValue)")
        lines.append("enforce = \(TOMLText.string(limits.enforce.rawValue))")
        lines.append("call_timeout = \(TOMLText.string(DurationSyntax.format(limits.callTimeout)))  # relay: per request, unless [tools.NAME] timeout")
        lines.append("relay_spin = \(TOMLText.string(DurationSyntax.format(limits.relaySpin)))  # relay: poll this long for a quick peer before sleeping")
        lines.append("")
        lines.append("[seccomp]")
        lines.append("allow = \(TOMLText.array(seccomp.allow))  # taken out of the default deny list")
        lines.append("deny = \(TOMLText.array(seccomp.deny))  # added to the default deny list")
        lines.append("")
        lines.append("[auth]")
        if auth.required {
            lines.append("required = true")
        } else {
            lines.append("required = false  # OFF: calls are not authenticated (local use); every audit record says auth \"off\"")
        }
        lines.append("keys = \(Self.multilineArray(auth.keys))")
        if let issuer = auth.issuer { lines.append("issuer = \(TOMLText.string(issuer))") }
        if let audience = auth.audience { lines.append("audience = \(TOMLText.string(audience))") }
        lines.append("clock_skew = \(TOMLText.string(DurationSyntax.format(auth.clockSkew)))")
        if let rate = auth.rate { lines.append("rate = \(TOMLText.string(rate.description))") }
        lines.append("")
        lines.append("[resources]")
        lines.append(Self.exposureLine(resources, toolDefault: toolDefault))
        lines.append("")
        lines.append("[prompts]")
        lines.append(Self.exposureLine(prompts, toolDefault: toolDefault))
        lines.append("")
        lines.append("[secrets]  # values are read when a session starts; never shown")
        for secret in secrets {
            switch secret.source {
            case .file(let path): lines.append("\(TOMLText.key(secret.name)) = { file = \(TOMLText.string(path)) }")
            case .environment(let variable): lines.append("\(TOMLText.key(secret.name)) = { env = \(TOMLText.string(variable)) }")
            }
        }
        lines.append("")
        lines.append("[audit]")
        lines.append("log_arguments = \(audit.logArguments)")
        lines.append("")
        lines.append("[tools]")
        lines.append("default = \(TOMLText.string(toolDefault.rawValue))  # \(toolDefault == .deny ? "unlisted tools are hidden and refused" : "unlisted tools are open")")
        lines.append("block_suspicious = \(blockSuspicious)  # withhold tools whose text carries injection markers")
        for tool in tools.keys.sorted() {
            let policy = tools[tool]!
            lines.append("")
            lines.append("[tools.\(TOMLText.key(tool))]")
            if let scope = policy.scope { lines.append("scope = \(TOMLText.string(scope))") }
            if let rate = policy.rate { lines.append("rate = \(TOMLText.string(rate.description))") }
            if let timeout = policy.timeout {
                lines.append("timeout = \(TOMLText.string(DurationSyntax.format(timeout)))")
            } else {
                lines.append("# timeout: [limits] call_timeout (\(DurationSyntax.format(limits.callTimeout)))")
            }
            lines.append("strict = \(policy.strict)")
            if policy.write {
                lines.append("write = true  # idempotent at the relay: a retried call is never run twice")
                if let fields = policy.idempotencyFields { lines.append("idempotency_fields = \(TOMLText.array(fields))") }
                lines.append("idempotency_ttl = \(TOMLText.string(DurationSyntax.format(policy.idempotencyTTL)))")
            }
            if let arguments = policy.arguments {
                lines.append("arguments = \(TOMLText.inline(arguments))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The same policy as pretty-printed JSON with sorted keys; sizes in bytes, durations
    /// in milliseconds.
    public func effectiveJSON() -> String {
        let policy = EffectivePolicy(
            name: name, path: path, digest: digest, description: description,
            server: .init(
                command: server.command, args: server.args, env: server.env, workdir: server.workdir,
                stopTimeoutMs: DurationSyntax.milliseconds(server.stopTimeout), code: server.code, pinned: server.pinned),
            filesystem: .init(readOnly: filesystem.readOnly, readWrite: filesystem.readWrite, tmpfs: filesystem.tmpfs),
            network: .init(
                egress: network.egress.map(\.description), maxConnections: network.maxConnections,
                idleTimeoutMs: DurationSyntax.milliseconds(network.idleTimeout)),
            limits: .init(
                maxMessageBytes: limits.maxMessageBytes, memoryBytes: limits.memoryBytes, pids: limits.pids,
                cpuCores: limits.cpuCores, openFiles: limits.openFiles, fileSizeBytes: limits.fileSizeBytes,
                cpuTimeMs: limits.cpuTime.map(DurationSyntax.milliseconds),
                wallTimeMs: limits.wallTime.map(DurationSyntax.milliseconds), enforce: limits.enforce.rawValue,
                relaySpinMicros: DurationSyntax.microseconds(limits.relaySpin)),
            seccomp: .init(allow: seccomp.allow, deny: seccomp.deny),
            tools: tools.mapValues { policy in
                EffectivePolicy.Tool(
                    scope: policy.scope, rate: policy.rate?.description,
                    timeoutMs: DurationSyntax.milliseconds(policy.timeout ?? limits.callTimeout), strict: policy.strict,
                    write: policy.write, idempotencyFields: policy.idempotencyFields,
                    idempotencyTTLMs: policy.write ? DurationSyntax.milliseconds(policy.idempotencyTTL) : nil,
                    arguments: policy.arguments.map { String(decoding: JSONWriter.bytes($0), as: UTF8.self) })
            },
            toolDefault: toolDefault.rawValue,
            auth: .init(
                required: auth.required, keys: auth.keys, issuer: auth.issuer, audience: auth.audience,
                clockSkewMs: DurationSyntax.milliseconds(auth.clockSkew), rate: auth.rate?.description),
            resources: resources.allow, prompts: prompts.allow,
            secrets: Dictionary(uniqueKeysWithValues: secrets.map { secret in
                switch secret.source {
                case .file(let path): (secret.name, ["file": path])
                case .environment(let variable): (secret.name, ["env": variable])
                }
            }),
            logArguments: audit.logArguments, callTimeoutMs: DurationSyntax.milliseconds(limits.callTimeout))
        return Self.prettyJSON(policy)
    }

    /// Pretty-printed, sorted-key JSON without escaped slashes, as every command prints it.
    public static func prettyJSON<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func exposureLine(_ exposure: Exposure, toolDefault: ToolDefault) -> String {
        if let allow = exposure.allow { return "allow = \(multilineArray(allow))" }
        return "# no allow list: \(toolDefault == .deny ? "none shown (follows [tools] default = \"deny\")" : "all shown (follows [tools] default = \"allow\")")"
    }

    private static func sizeOrUnlimited(_ bytes: Int?) -> String {
        bytes.map { TOMLText.string(SizeSyntax.format($0)) } ?? "\"unlimited\""
    }

    private static func durationOrUnlimited(_ duration: Duration?) -> String {
        duration.map { TOMLText.string(DurationSyntax.format($0)) } ?? "\"unlimited\""
    }

    private static func inlineTable(_ entries: [(String, String)]) -> String {
        entries.isEmpty ? "{}" : "{ " + entries.map { "\(TOMLText.key($0.0)) = \($0.1)" }.joined(separator: ", ") + " }"
    }

    private static func multilineArray(_ values: [String]) -> String {
        if values.count <= 1 { return TOMLText.array(values) }
        return "[\n" + values.map { "  \(TOMLText.string($0)),\n" }.joined() + "]"
    }
}

private struct EffectivePolicy: Encodable {
    struct Server: Encodable {
        var command: String
        var args: [String]
        var env: [String: String]
        var workdir: String
        var stopTimeoutMs: Int64
        var code: [String]
        var pinned: Bool

        enum CodingKeys: String, CodingKey {
            case command, args, env, workdir, code, pinned
            case stopTimeoutMs = "stop_timeout_ms"
        }
    }

    struct Filesystem: Encodable {
        var readOnly: [String]
        var readWrite: [String]
        var tmpfs: [String: Int]

        enum CodingKeys: String, CodingKey {
            case readOnly = "read_only"
            case readWrite = "read_write"
            case tmpfs
        }
    }

    /// `null` is unlimited.
    struct Limits: Encodable {
        var maxMessageBytes: Int
        var memoryBytes: Int?
        var pids: Int?
        var cpuCores: Double?
        var openFiles: Int
        var fileSizeBytes: Int?
        var cpuTimeMs: Int64?
        var wallTimeMs: Int64?
        var enforce: String
        var relaySpinMicros: Int64

        enum CodingKeys: String, CodingKey {
            case maxMessageBytes = "max_message_bytes"
            case memoryBytes = "memory_bytes"
            case pids
            case cpuCores = "cpu_cores"
            case openFiles = "open_files"
            case fileSizeBytes = "file_size_bytes"
            case cpuTimeMs = "cpu_time_ms"
            case wallTimeMs = "wall_time_ms"
            case enforce
            case relaySpinMicros = "relay_spin_us"
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(maxMessageBytes, forKey: .maxMessageBytes)
            try container.encode(memoryBytes, forKey: .memoryBytes)
            try container.encode(pids, forKey: .pids)
            try container.encode(cpuCores, forKey: .cpuCores)
            try container.encode(openFiles, forKey: .openFiles)
            try container.encode(fileSizeBytes, forKey: .fileSizeBytes)
            try container.encode(cpuTimeMs, forKey: .cpuTimeMs)
            try container.encode(wallTimeMs, forKey: .wallTimeMs)
            try container.encode(enforce, forKey: .enforce)
            try container.encode(relaySpinMicros, forKey: .relaySpinMicros)
        }
    }

    struct Network: Encodable {
        var egress: [String]
        var maxConnections: Int
        var idleTimeoutMs: Int64

        enum CodingKeys: String, CodingKey {
            case egress
            case maxConnections = "max_connections"
            case idleTimeoutMs = "idle_timeout_ms"
        }
    }

    struct Seccomp: Encodable {
        var allow: [String]
        var deny: [String]
    }

    struct Tool: Encodable {
        var scope: String?
        var rate: String?
        var timeoutMs: Int64
        var strict: Bool
        var write: Bool
        var idempotencyFields: [String]?
        var idempotencyTTLMs: Int64?
        /// The `[tools.NAME.arguments]` fragment as compact JSON text.
        var arguments: String?

        enum CodingKeys: String, CodingKey {
            case scope, rate, strict, arguments, write
            case timeoutMs = "timeout_ms"
            case idempotencyFields = "idempotency_fields"
            case idempotencyTTLMs = "idempotency_ttl_ms"
        }
    }

    struct Auth: Encodable {
        var required: Bool
        var keys: [String]
        var issuer: String?
        var audience: String?
        var clockSkewMs: Int64
        var rate: String?

        enum CodingKeys: String, CodingKey {
            case required, keys, issuer, audience, rate
            case clockSkewMs = "clock_skew_ms"
        }
    }

    var name: String
    var path: String
    var digest: String
    var description: String
    var server: Server
    var filesystem: Filesystem
    var network: Network
    var limits: Limits
    var seccomp: Seccomp
    var tools: [String: Tool]
    var toolDefault: String
    var auth: Auth
    /// nil: follows `tool_default`.
    var resources: [String]?
    var prompts: [String]?
    var secrets: [String: [String: String]]
    var logArguments: Bool
    var callTimeoutMs: Int64

    enum CodingKeys: String, CodingKey {
        case name, path, digest, description, server, filesystem, network, limits, seccomp, tools, auth, resources, prompts, secrets
        case toolDefault = "tool_default"
        case logArguments = "log_arguments"
        case callTimeoutMs = "call_timeout_ms"
    }
}

extension ProfileProblem: Encodable {
    enum CodingKeys: String, CodingKey {
        case file, line, message
        case keyPath = "key_path"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(line, forKey: .line)
        try container.encode(keyPath, forKey: .keyPath)
        try container.encode(message, forKey: .message)
    }
}
