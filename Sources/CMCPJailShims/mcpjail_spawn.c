// The server's last steps before exec, run in the jail by its init (mcpjail_jail.c).
// Swift is not async-signal-safe there, so this stays in C and touches only data the
// parent prepared. Failures travel to the parent as
// (stage, errno) over a CLOEXEC pipe, the swift-subprocess / bubblewrap shape.
#define _GNU_SOURCE
#include "mcpjail_spawn.h"
#include "spawn_internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

void mcpjail_report_and_exit(int error_fd, int stage) {
    int message[2] = { stage, errno };
    ssize_t ignored = write(error_fd, message, sizeof(message));
    (void)ignored;
    _exit(127);
}

/// Moves `fd` to `target`, clearing CLOEXEC, even when they are already equal.
static int install_fd(int fd, int target) {
    if (fd == target) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0) return -1;
        return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

/// Marks every fd from 3 up close-on-exec, so exec leaves only 0, 1, 2 open
/// (the error pipe, CLOEXEC already, stays usable until exec).
static int cloexec_from_3(void) {
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    for (rlim_t fd = 3; fd < limit.rlim_cur && fd < 65536; fd++) {
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

int mcpjail_bounding_set_dropped = 0;

int mcpjail_drop_bounding_set(void) {
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break;
        if (errno != EPERM) return -1;
    }
    mcpjail_bounding_set_dropped = 1;
    return 0;
}

/// Drops every capability: the bounding set (unless the jail's init did already: see
/// mcpjail_drop_bounding_set), the ambient set, and the effective, permitted and
/// inheritable sets.
static int drop_capabilities(void) {
    if (!mcpjail_bounding_set_dropped && mcpjail_drop_bounding_set() != 0) return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    return (int)syscall(SYS_capset, &header, data);
}

void mcpjail_spawn_child(const struct mcpjail_spawn_config *config, int error_fd, pid_t parent) {
    if (setsid() < 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SETSID);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_PDEATHSIG);
    // The parent may have died between fork and prctl: then nobody would kill us.
    if (getppid() != parent) _exit(127);

    sigset_t empty;
    sigemptyset(&empty);
    struct sigaction deflt;
    memset(&deflt, 0, sizeof(deflt));
    deflt.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        (void)sigaction(sig, &deflt, NULL);  // EINVAL for the libc-reserved ones is fine
    }
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SIGNALS);
    // Past [limits] file_size a write fails with EFBIG instead of killing the server.
    struct sigaction ignore;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    (void)sigaction(SIGXFSZ, &ignore, NULL);

    // Join the session's cgroups before anything else runs here, so limits hold from the start.
    for (int i = 0; i < config->cgroup_procs_fd_count; i++) {
        if (write(config->cgroup_procs_fds[i], "0", 1) != 1) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CGROUP);
    }
    for (int i = 0; i < config->rlimit_count; i++) {
        struct rlimit limit = { (rlim_t)config->rlimits[i].soft, (rlim_t)config->rlimits[i].hard };
        if (setrlimit(config->rlimits[i].resource, &limit) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_RLIMITS);
    }

    // The parent's pipe ends are >= 3 (0-2 are the client's stdio), so dup2 cannot clobber them.
    if (install_fd(config->stdin_fd, 0) != 0 || install_fd(config->stdout_fd, 1) != 0 ||
        install_fd(config->stderr_fd, 2) != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_STDIO);
    if (cloexec_from_3() != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CLOSE_FDS);
    if (chdir(config->workdir) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CHDIR);

    if (drop_capabilities() != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CAPABILITIES);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_NO_NEW_PRIVS);
    if (config->seccomp_filter != NULL) {
        struct sock_fprog program = { config->seccomp_filter_length, (struct sock_filter *)config->seccomp_filter };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SECCOMP);
    }

    execve(config->path, config->argv, config->envp);
    mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EXEC);
}
