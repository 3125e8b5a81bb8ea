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

/// Installs an async-signal-safe handler for each signal in `signals` that writes the
/// signal number as one byte to `write_fd` (a non-blocking self-pipe). Returns 0 or -1/errno.
int mcpjail_install_signal_pipe(int write_fd, const int *signals, int count);

/// Makes this process a child subreaper, so orphans of the server are reparented to
/// mcpjail, which kills and reaps them at teardown.
int mcpjail_set_child_subreaper(void);

/// pipe2(fds, O_CLOEXEC): glibc's pipe2 is a GNU extension Swift's Glibc module hides.
int mcpjail_pipe_cloexec(int fds[2]);

/// mremap(address, old, new, MREMAP_MAYMOVE): a GNU extension Swift's Glibc module hides.
void *mcpjail_mremap(void *address, size_t old_size, size_t new_size);

/// prctl(PR_SET_NAME): names the calling thread (prctl is variadic, so not callable from Swift).
int mcpjail_set_thread_name(const char *name);

#endif
