/*
 * seccomp_probe: installs a seccomp filter read from a file (optional), then tries each
 * syscall named on the command line in a forked child, and prints one line per call:
 *
 *   NAME ok              the call returned >= 0
 *   NAME errno N         the call failed with errno N
 *   NAME signal N        the child died of signal N (31 = SIGSYS: a kill-process rule)
 *   NAME unsupported     the probe cannot make this call on this architecture
 *
 * usage: seccomp_probe [-f FILTER.bpf] CALL[:ARG]...
 *
 * Every call is made with harmless arguments: invalid ones where the kernel validates them
 * before acting (so that even as root, unfiltered, nothing is mounted, loaded or rebooted),
 * and the effects of the rest (ptrace(TRACEME), unshare, personality) stay in the child.
 * Used by Tests/MCPJailLinuxTests/SeccompTests.swift, which compiles it with cc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UNSUPPORTED 254

static void *thread_body(void *arg) { return arg; }

/* Runs in the child: returns the call's result (>= 0) or -1 with errno set. */
static long attempt(const char *name, unsigned long arg, int has_arg) {
    char buf[256];
    int dev_null;
#define IS(s) (strcmp(name, s) == 0)
    if (IS("getpid")) return syscall(SYS_getpid);
    if (IS("read")) {
        if ((dev_null = open("/dev/null", O_RDONLY)) < 0) return -1;
        return read(dev_null, buf, sizeof buf);
    }
    if (IS("write")) {
        if ((dev_null = open("/dev/null", O_WRONLY)) < 0) return -1;
        return write(dev_null, "x", 1);
    }
    if (IS("openat")) return syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
    if (IS("getcwd")) return syscall(SYS_getcwd, buf, sizeof buf);
    if (IS("fork")) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid < 0) return -1;
        return waitpid(pid, NULL, 0);
    }
    if (IS("thread")) { /* glibc tries clone3 first and falls back to clone on ENOSYS */
        pthread_t thread;
        int rc = pthread_create(&thread, NULL, thread_body, NULL);
        if (rc != 0) { errno = rc; return -1; }
        return pthread_join(thread, NULL) == 0 ? 0 : -1;
    }
    if (IS("ptrace")) return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    if (IS("process_vm_readv")) return syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0);
    if (IS("process_vm_writev")) return syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0);
    if (IS("unshare")) return unshare(has_arg ? (int)arg : CLONE_NEWUSER);
    if (IS("setns")) return setns(-1, 0);
    /* clone with the given flags plus CLONE_THREAD without CLONE_SIGHAND: the kernel
       refuses that (EINVAL) before creating anything, so only the filter answers EPERM. */
    if (IS("clone")) return syscall(SYS_clone, (has_arg ? arg : 0) | CLONE_THREAD, 0, NULL, NULL, 0);
    if (IS("clone3")) return syscall(SYS_clone3, NULL, 0); /* size 0: EINVAL unfiltered */
    if (IS("mount")) return syscall(SYS_mount, NULL, NULL, NULL, 0, NULL);
    if (IS("umount2")) return syscall(SYS_umount2, NULL, 0);
    if (IS("pivot_root")) return syscall(SYS_pivot_root, NULL, NULL);
    if (IS("chroot")) return syscall(SYS_chroot, NULL);
    if (IS("fsopen")) return syscall(SYS_fsopen, NULL, 0);
    if (IS("fsconfig")) return syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0);
    if (IS("fsmount")) return syscall(SYS_fsmount, -1, 0, 0);
    if (IS("fspick")) return syscall(SYS_fspick, -1, NULL, 0);
    if (IS("move_mount")) return syscall(SYS_move_mount, -1, NULL, -1, NULL, 0);
    if (IS("open_tree")) return syscall(SYS_open_tree, -1, NULL, 0);
    if (IS("mount_setattr")) return syscall(SYS_mount_setattr, -1, NULL, 0, NULL, 0);
    if (IS("bpf")) return syscall(SYS_bpf, 0xffff, NULL, 0);
    if (IS("perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (IS("userfaultfd")) return syscall(SYS_userfaultfd, O_CLOEXEC);
    if (IS("keyctl")) return syscall(SYS_keyctl, -1, 0, 0, 0, 0);
    if (IS("add_key")) return syscall(SYS_add_key, NULL, NULL, NULL, 0, 0);
    if (IS("request_key")) return syscall(SYS_request_key, NULL, NULL, NULL, 0);
    if (IS("io_uring_setup")) return syscall(SYS_io_uring_setup, 0, NULL);
    if (IS("io_uring_enter")) return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
    if (IS("io_uring_register")) return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
    if (IS("swapon")) return syscall(SYS_swapon, NULL, 0);
    if (IS("swapoff")) return syscall(SYS_swapoff, NULL);
    if (IS("quotactl")) return syscall(SYS_quotactl, 0, NULL, 0, NULL);
    if (IS("quotactl_fd")) return syscall(__NR_quotactl_fd, -1, 0, 0, NULL);
    /* acct with a bad pointer: EFAULT as root, never switching accounting on or off. */
    if (IS("acct")) return syscall(SYS_acct, (const char *)1);
    if (IS("syslog")) return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    if (IS("settimeofday")) return syscall(SYS_settimeofday, NULL, NULL); /* a no-op */
    if (IS("clock_settime")) return syscall(SYS_clock_settime, CLOCK_REALTIME, NULL);
    if (IS("clock_adjtime")) return syscall(SYS_clock_adjtime, CLOCK_REALTIME, NULL);
    if (IS("adjtimex")) return syscall(SYS_adjtimex, NULL);
    if (IS("name_to_handle_at")) return syscall(SYS_name_to_handle_at, -1, NULL, NULL, NULL, 0);
    if (IS("open_by_handle_at")) return syscall(SYS_open_by_handle_at, -1, NULL, 0);
    if (IS("personality")) return syscall(SYS_personality, has_arg ? arg : 0xffffffffUL);
    /* ioctl on fd -1: EBADF unfiltered, whatever the request. */
    if (IS("ioctl")) return syscall(SYS_ioctl, -1, has_arg ? arg : (unsigned long)TIOCSTI, buf);
    /* kexec with an unknown architecture in flags: EINVAL before anything is (un)loaded. */
    if (IS("kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
    if (IS("kexec_file_load")) return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xdead0000UL);
    if (IS("init_module")) return syscall(SYS_init_module, NULL, 0, "");
    if (IS("finit_module")) return syscall(SYS_finit_module, -1, "", 0);
    if (IS("delete_module")) return syscall(SYS_delete_module, NULL, 0);
    /* reboot without the magic numbers: EINVAL (EPERM unprivileged), never a reboot. */
    if (IS("reboot")) return syscall(SYS_reboot, 0, 0, 0, NULL);
#if defined(__x86_64__)
    if (IS("iopl")) return syscall(SYS_iopl, 0);        /* lowering to 0 needs no privilege */
    if (IS("ioperm")) return syscall(SYS_ioperm, 0, 0, 0); /* turning nothing off */
    /* getpid through the x32 ABI (syscall number with bit 30 set). */
    if (IS("x32")) return syscall(0x40000000L | SYS_getpid);
    if (IS("int80")) { /* getpid (20) through the 32-bit entry */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        if (ret < 0 && ret > -4096) { errno = (int)-ret; return -1; }
        return ret;
    }
#endif
#undef IS
    _exit(UNSUPPORTED);
}

static int install(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    static struct sock_filter program[4096];
    size_t n = fread(program, sizeof program[0], 4096, f);
    fclose(f);
    if (n == 0) { fprintf(stderr, "%s: empty filter\n", path); return -1; }
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = program };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("prctl(NO_NEW_PRIVS)"); return -1; }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) { perror("seccomp"); return -1; }
    return 0;
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-f") == 0) {
        if (install(argv[2]) != 0) return 2;
        first = 3;
    }
    for (int i = first; i < argc; i++) {
        char name[64];
        unsigned long arg = 0;
        int has_arg = 0;
        const char *colon = strchr(argv[i], ':');
        size_t len = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, argv[i], len);
        name[len] = 0;
        if (colon) { arg = strtoul(colon + 1, NULL, 0); has_arg = 1; }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            errno = 0;
            long ret = attempt(name, arg, has_arg);
            _exit(ret >= 0 ? 0 : (errno > 0 && errno < UNSUPPORTED ? errno : 253));
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) { perror("waitpid"); return 2; }
        }
        if (WIFSIGNALED(status)) printf("%s signal %d\n", argv[i], WTERMSIG(status));
        else if (WEXITSTATUS(status) == 0) printf("%s ok\n", argv[i]);
        else if (WEXITSTATUS(status) == UNSUPPORTED) printf("%s unsupported\n", argv[i]);
        else printf("%s errno %d\n", argv[i], WEXITSTATUS(status));
    }
    return 0;
}
