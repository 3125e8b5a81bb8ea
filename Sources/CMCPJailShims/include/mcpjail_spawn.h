#ifndef MCPJAIL_SPAWN_H
#define MCPJAIL_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/// The step of child set-up that failed, reported over the CLOEXEC error pipe
/// together with errno. Swift maps each to a name for `mcpjail: ... failed at <stage>`.
enum mcpjail_spawn_stage {
    MCPJAIL_STAGE_NONE = 0,
    MCPJAIL_STAGE_SETSID = 1,
    MCPJAIL_STAGE_PDEATHSIG = 2,
    MCPJAIL_STAGE_SIGNALS = 3,
    MCPJAIL_STAGE_STDIO = 4,
    MCPJAIL_STAGE_CLOSE_FDS = 5,
    MCPJAIL_STAGE_CHDIR = 6,
    MCPJAIL_STAGE_EXEC = 7,
    MCPJAIL_STAGE_FORK = 8,
};

/// Everything the child needs, prepared by the Swift parent before the fork: the child
/// runs only async-signal-safe calls on this data (no allocation, no Swift code).
struct mcpjail_spawn_config {
    const char *path;          ///< absolute executable path
    char *const *argv;         ///< NULL-terminated
    char *const *envp;         ///< NULL-terminated; the server's whole environment
    const char *workdir;       ///< absolute
    int stdin_fd;              ///< becomes fd 0
    int stdout_fd;             ///< becomes fd 1
    int stderr_fd;             ///< becomes fd 2
};

/// The outcome of a spawn: the child's pid, or the stage and errno that failed.
struct mcpjail_spawn_result {
    pid_t pid;
    int stage;
    int error;
};

/// Forks and execs `config->path` in a new session (so its whole process group can be
/// signalled), with PR_SET_PDEATHSIG(SIGKILL), default signal dispositions, an empty
/// signal mask, only fds 0-2 open, and `config->workdir` as its directory.
/// Returns 0 with result->pid set once exec has succeeded, or -1 with stage/error set
/// (the child, if any, has been reaped).
int mcpjail_spawn(const struct mcpjail_spawn_config *config, struct mcpjail_spawn_result *result);

#endif
