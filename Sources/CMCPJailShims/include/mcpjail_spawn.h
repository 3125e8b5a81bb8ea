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
    MCPJAIL_STAGE_CGROUP = 9,
    MCPJAIL_STAGE_RLIMITS = 10,
    MCPJAIL_STAGE_CAPABILITIES = 11,
    MCPJAIL_STAGE_NO_NEW_PRIVS = 12,
    MCPJAIL_STAGE_SECCOMP = 13,
};

/// One resource limit for setrlimit in the child.
struct mcpjail_rlimit {
    int resource;
    unsigned long long soft;
    unsigned long long hard;
};

/// What the server's process applies to itself before exec (mcpjail_spawn_child, run by the
/// jail's init): prepared by the Swift parent before the clone; the child runs only
/// async-signal-safe calls on this data (no allocation, no Swift code). In order: a new
/// session, PR_SET_PDEATHSIG(SIGKILL), default signal dispositions and an empty mask, the
/// given cgroups and rlimits, fds 0-2 from the pipes and nothing else, `workdir`, every
/// capability dropped (bounding and ambient sets included), no_new_privs, the seccomp
/// filter last, then exec.
struct mcpjail_spawn_config {
    const char *path;          ///< absolute executable path
    char *const *argv;         ///< NULL-terminated
    char *const *envp;         ///< NULL-terminated; the server's whole environment
    const char *workdir;       ///< absolute
    int stdin_fd;              ///< becomes fd 0
    int stdout_fd;             ///< becomes fd 1
    int stderr_fd;             ///< becomes fd 2
    const int *cgroup_procs_fds;   ///< open cgroup.procs files: the child writes "0" to join each
    int cgroup_procs_fd_count;
    const struct mcpjail_rlimit *rlimits;
    int rlimit_count;
    /// A compiled seccomp-BPF program (struct sock_filter array), installed last before
    /// exec after no_new_privs; NULL for none.
    const void *seccomp_filter;
    unsigned short seccomp_filter_length;  ///< in instructions
};

/// The outcome of a spawn: the child's pid, or the stage and errno that failed.
struct mcpjail_spawn_result {
    pid_t pid;
    int stage;
    int error;
};



#endif
