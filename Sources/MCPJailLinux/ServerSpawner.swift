import CMCPJailShims
import Glibc
import MCPJailCore

/// The pipe ends a spawned server uses as its stdio (the spawner's side).
public struct ServerStdio: Sendable {
    public var stdin: Int32
    public var stdout: Int32
    public var stderr: Int32

    public init(stdin: Int32, stdout: Int32, stderr: Int32) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A started server: its pid, which is also its process group and session id.
public struct SpawnedServer: Sendable, Equatable {
    public var pid: pid_t
    public init(pid: pid_t) { self.pid = pid }
}

/// The seam between the relay and how a server is started. The containment issue
/// replaces ``DirectSpawner`` with a jail behind this same protocol.
public protocol ServerSpawner: Sendable {
    /// Starts the server `profile` names with `stdio` as its fds 0-2. On failure nothing
    /// is left running, and the error says which step failed and why.
    func spawn(_ profile: Profile, stdio: ServerStdio) throws(MCPJailError) -> SpawnedServer
}

/// Starts the server as a plain child: its own session and process group, killed if
/// mcpjail dies (PR_SET_PDEATHSIG), only fds 0-2 and the profile's environment.
/// No namespaces yet: that is the containment issue's ``ServerSpawner``.
public struct DirectSpawner: ServerSpawner {
    public init() {}

    public func spawn(_ profile: Profile, stdio: ServerStdio) throws(MCPJailError) -> SpawnedServer {
        let argv = [profile.server.command] + profile.server.args
        let envp = profile.server.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var result = mcpjail_spawn_result()
        let status: Int32 = CStringArray(argv).withPointers { argvPointers in
            CStringArray(envp).withPointers { envPointers in
                profile.server.command.withCString { path in
                    profile.server.workdir.withCString { workdir in
                        var config = mcpjail_spawn_config(
                            path: path, argv: argvPointers, envp: envPointers, workdir: workdir,
                            stdin_fd: stdio.stdin, stdout_fd: stdio.stdout, stderr_fd: stdio.stderr)
                        return mcpjail_spawn(&config, &result)
                    }
                }
            }
        }
        guard status == 0 else {
            throw SpawnFailure(stage: Int(result.stage), errno: result.error).error(command: profile.server.command, workdir: profile.server.workdir)
        }
        return SpawnedServer(pid: result.pid)
    }
}

/// A (stage, errno) pair from the child, turned into the user's one line and a hint.
public struct SpawnFailure: Sendable, Equatable {
    public var stage: Int
    public var errno: Int32

    public var stageName: String {
        switch stage {
        case Int(MCPJAIL_STAGE_SETSID.rawValue): "setsid"
        case Int(MCPJAIL_STAGE_PDEATHSIG.rawValue): "parent-death signal"
        case Int(MCPJAIL_STAGE_SIGNALS.rawValue): "signal reset"
        case Int(MCPJAIL_STAGE_STDIO.rawValue): "stdio"
        case Int(MCPJAIL_STAGE_CLOSE_FDS.rawValue): "closing inherited fds"
        case Int(MCPJAIL_STAGE_CHDIR.rawValue): "chdir"
        case Int(MCPJAIL_STAGE_EXEC.rawValue): "exec"
        case Int(MCPJAIL_STAGE_FORK.rawValue): "fork"
        default: "stage \(stage)"
        }
    }

    public func error(command: String, workdir: String) -> MCPJailError {
        let reason = String(cString: strerror(errno))
        var hint: String? = nil
        switch (stage, errno) {
        case (Int(MCPJAIL_STAGE_EXEC.rawValue), ENOENT):
            hint = "\(command) or its interpreter does not exist; check server.command and the script's #! line"
        case (Int(MCPJAIL_STAGE_EXEC.rawValue), EACCES):
            hint = "\(command) is not executable by this user"
        case (Int(MCPJAIL_STAGE_CHDIR.rawValue), _):
            hint = "server.workdir \(workdir) must be an existing directory"
        default: break
        }
        return MCPJailError(.spawnFailed, "server start failed at \(stageName): \(reason)", hint: hint)
    }
}

/// NULL-terminated `char *const *` arrays built before the fork, so the child allocates nothing.
struct CStringArray {
    let strings: [String]
    init(_ strings: [String]) { self.strings = strings }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
