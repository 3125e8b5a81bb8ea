// Thin wrappers for calls Swift cannot make itself; see mcpjail_syscalls.h.
#define _GNU_SOURCE
#include "mcpjail_syscalls.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_IN_ROOT 0x10
#endif

int mcpjail_openat_in_root(int dirfd, const char *path, int flags) {
    struct {
        uint64_t flags;
        uint64_t mode;
        uint64_t resolve;
    } how = { (uint64_t)(unsigned)flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    } while (fd < 0 && errno == EINTR);
    return (int)fd;
}

/// Runs before main, while the process has its only thread: raises the soft RLIMIT_NOFILE
/// to the hard one (a pinned `run` keeps an fd per watched directory; the jail sets its
/// own limit) and grows the fd table to MCPJAIL_RESERVED_FDS entries (at most that limit)
/// by duplicating an fd to the top slot and closing it (a table never shrinks). Growing it
/// later, once threads share it (Swift's async main runs on a pool thread), waits for an
/// RCU grace period at each doubling (expand_fdtable): a pinned `run`, which keeps one fd
/// per watched directory, lost about 10 ms to that. The first constructor (priority 101):
/// the namespace holder started before `main` shares the table (CMCPJailEarlyStart, 102).
///
/// First of all, fds 0, 1 and 2 are made to exist (/dev/null where one is closed): the
/// relay reads the client from 0 and answers on 1, and the first pipe mcpjail made would
/// otherwise take a closed stdio number (the holder's order pipe became stdin or stdout).
__attribute__((constructor(101))) static void mcpjail_reserve_fd_table(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int null = open("/dev/null", O_RDWR);  // the lowest free number: this one
        if (null >= 0 && null != fd) close(null);
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = { limit.rlim_max, limit.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    int top = (int)(limit.rlim_cur < MCPJAIL_RESERVED_FDS ? limit.rlim_cur : MCPJAIL_RESERVED_FDS) - 1;
    if (top < 64 || fcntl(top, F_GETFD) >= 0) return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (dup3(fd, top, O_CLOEXEC) == top) close(top);
    close(fd);
}

static int signal_pipe_fd = -1;
static volatile sig_atomic_t signal_counts[_NSIG];

static void signal_to_pipe(int sig) {
    int saved = errno;
    if (sig > 0 && sig < _NSIG) signal_counts[sig] += 1;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe_fd, &byte, 1);
    (void)ignored;
    errno = saved;
}

int mcpjail_install_signal_pipe(int write_fd, const int *signals, int count) {
    signal_pipe_fd = write_fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = signal_to_pipe;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) return -1;
    }
    return 0;
}

int mcpjail_signal_count(int sig) {
    return (sig > 0 && sig < _NSIG) ? (int)signal_counts[sig] : 0;
}

int mcpjail_realtime_signal(int offset) {
    int sig = SIGRTMIN + offset;
    return sig <= SIGRTMAX ? sig : -1;
}

int mcpjail_notify_directory_changes(int directory_fd, int signal) {
    if (fcntl(directory_fd, F_SETSIG, signal) != 0) return -1;
    if (fcntl(directory_fd, F_NOTIFY, DN_CREATE | DN_DELETE | DN_RENAME | DN_MODIFY | DN_ATTRIB | DN_MULTISHOT) != 0)
        return -1;
    // F_NOTIFY made the process the owner; narrow it to this thread (after F_NOTIFY, which
    // resets it), so that no other thread's blocking call is interrupted by the signal.
    struct f_owner_ex owner = { F_OWNER_TID, gettid() };
    return fcntl(directory_fd, F_SETOWN_EX, &owner);
}

static cpu_set_t remembered_mask;

int mcpjail_keep_thread_off_cpu(int cpu) {
    cpu_set_t mask;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(mask), &mask) != 0) return -1;
    if (!CPU_ISSET(cpu, &mask) || CPU_COUNT(&mask) < 2) return -1;
    remembered_mask = mask;
    CPU_CLR(cpu, &mask);
    return sched_setaffinity(0, sizeof(mask), &mask);
}

int mcpjail_restore_thread_affinity(pid_t tid) {
    return sched_setaffinity(tid, sizeof(remembered_mask), &remembered_mask);
}

int mcpjail_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int mcpjail_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int mcpjail_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

void *mcpjail_mremap(void *address, size_t old_size, size_t new_size) {
    return mremap(address, old_size, new_size, MREMAP_MAYMOVE);
}

int mcpjail_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}

static int release_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    long *released = data;
    // The program and its shared libraries; the vDSO is the kernel's and stays as it is.
    if (info->dlpi_name != NULL && strstr(info->dlpi_name, "vdso") != NULL) return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD || (segment->p_flags & PF_W)) continue;
        // Whole pages inside the segment only: a page shared with a writable one is kept.
        uintptr_t start = (info->dlpi_addr + segment->p_vaddr + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + segment->p_vaddr + segment->p_filesz) & ~(page - 1);
        if (end <= start) continue;
        // MADV_RANDOM first: no fault-around, so what faults back in is what is used.
        (void)madvise((void *)start, end - start, MADV_RANDOM);
        if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) *released += (long)(end - start);
    }
    return 0;
}

long mcpjail_release_startup_pages(void) {
    long released = 0;
    dl_iterate_phdr(release_segments, &released);
    return released;
}

int mcpjail_lower_thread_priority(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)gettid(), nice);
}

ssize_t mcpjail_send_parts(int channel, const struct iovec *parts, int part_count, const int *fds, int count) {
    if (count < 0 || count > MCPJAIL_MAX_PASSED_FDS) {
        errno = EINVAL;
        return -1;
    }
    union {
        char buffer[CMSG_SPACE(sizeof(int) * MCPJAIL_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message;
    memset(&message, 0, sizeof(message));
    message.msg_iov = (struct iovec *)parts;
    message.msg_iovlen = (size_t)part_count;
    if (count > 0) {
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    }
    ssize_t sent;
    do {
        sent = sendmsg(channel, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
}

int mcpjail_send_fds(int channel, char byte, const int *fds, int count) {
    struct iovec part = { .iov_base = &byte, .iov_len = 1 };
    ssize_t sent = mcpjail_send_parts(channel, &part, 1, fds, count);
    if (sent == 1) return 0;
    if (sent >= 0) errno = EPIPE;
    return -1;
}

ssize_t mcpjail_receive_parts(int channel, void *buffer, size_t size, int *fds, int max, int *fd_count, int wait) {
    *fd_count = 0;
    if (max < 0 || max > MCPJAIL_MAX_PASSED_FDS) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov = { .iov_base = buffer, .iov_len = size };
    union {
        char buffer[CMSG_SPACE(sizeof(int) * MCPJAIL_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr message;
    memset(&message, 0, sizeof(message));
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)max);
    ssize_t got;
    do {
        got = recvmsg(channel, &message, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    if (got == 0) {
        errno = EPIPE;
        return -1;
    }
    int count = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + sizeof(int) * (size_t)i, sizeof(int));
            if (count < max) fds[count++] = fd;
            else close(fd);
        }
    }
    if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (int i = 0; i < count; i++) close(fds[i]);
        errno = EMSGSIZE;
        return -1;
    }
    *fd_count = count;
    return got;
}

int mcpjail_receive_fds(int channel, int *fds, int max, int wait) {
    char byte;
    int count;
    return mcpjail_receive_parts(channel, &byte, 1, fds, max, &count, wait) < 0 ? -1 : count;
}

ssize_t mcpjail_splice(int in_fd, int out_fd, size_t length, int more) {
    return splice(in_fd, NULL, out_fd, NULL, length, SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0));
}

int mcpjail_set_pipe_size(int fd, int size) {
    return fcntl(fd, F_SETPIPE_SZ, size);
}

int mcpjail_accept_cloexec(int listener) {
    int fd;
    do {
        fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}
