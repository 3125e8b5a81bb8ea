#ifndef MCPJAIL_SYSCALLS_H
#define MCPJAIL_SYSCALLS_H

// Calls Swift cannot make itself: variadic ones (prctl), GNU extensions Swift's Glibc
// module hides (pipe2, mremap), and a signal handler that must be async-signal-safe.
// Each is named for the call it wraps.

#include <stddef.h>
#include <sys/types.h>

/// The fd table size every mcpjail process starts with (see mcpjail_reserve_fd_table in
/// mcpjail_syscalls.c): room for a pinned server's watched directories.
#define MCPJAIL_RESERVED_FDS 4096

/// Installs an async-signal-safe handler for each signal in `signals` that writes the
/// signal number as one byte to `write_fd` (a non-blocking self-pipe). Returns 0 or -1/errno.
int mcpjail_install_signal_pipe(int write_fd, const int *signals, int count);

/// How many times that handler has caught `sig` since it was installed (a counter the
/// handler bumps, so that a caller can ask whether a signal came without reading the pipe).
int mcpjail_signal_count(int sig);

/// SIGRTMIN + offset (glibc's SIGRTMIN is a function call Swift does not import), or -1
/// past SIGRTMAX. Real-time signals queue one per event instead of merging.
int mcpjail_realtime_signal(int offset);

/// dnotify (fcntl F_NOTIFY, which glibc hides behind _GNU_SOURCE): `signal` is sent to the
/// calling thread (and no other) whenever an entry of the directory `directory_fd` is created, removed, renamed,
/// written or has its attributes changed, until the fd is closed. 0, or -1 with errno.
int mcpjail_notify_directory_changes(int directory_fd, int signal);

/// Restricts the calling thread to the CPUs of its affinity other than `cpu`, remembering
/// its mask for `mcpjail_restore_thread_affinity`: 0, or -1 (nothing changed: `cpu` < 0,
/// not in the mask, or the only CPU in it).
int mcpjail_keep_thread_off_cpu(int cpu);

/// Gives thread `tid` the mask `mcpjail_keep_thread_off_cpu` remembered. 0, or -1/errno.
int mcpjail_restore_thread_affinity(pid_t tid);

/// Makes this process a child subreaper, so orphans of the server are reparented to
/// mcpjail, which kills and reaps them at teardown.
int mcpjail_set_child_subreaper(void);

/// pipe2(fds, O_CLOEXEC): glibc's pipe2 is a GNU extension Swift's Glibc module hides.
int mcpjail_pipe_cloexec(int fds[2]);

/// memfd_create(name, MFD_CLOEXEC): another call behind _GNU_SOURCE.
int mcpjail_memfd_create(const char *name);

/// mremap(address, old, new, MREMAP_MAYMOVE): a GNU extension Swift's Glibc module hides.
void *mcpjail_mremap(void *address, size_t old_size, size_t new_size);

/// prctl(PR_SET_NAME): names the calling thread (prctl is variadic, so not callable from Swift).
int mcpjail_set_thread_name(const char *name);

/// setpriority(PRIO_PROCESS, gettid(), nice): lowers the calling thread only (Linux
/// threads have their own nice value).
int mcpjail_lower_thread_priority(int nice);

/// madvise(MADV_DONTNEED) on the read-only segments (code, constants) of the program and its
/// shared libraries: drops
/// from this process's resident set the pages only start-up needed (argument parsing, TOML,
/// profile validation); what the relay touches later faults back in from the page cache.
/// Writable segments are never touched (DONTNEED would discard their contents).
/// Returns the number of bytes advised.
long mcpjail_release_startup_pages(void);

/// openat2(dirfd, path, {flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS}): opens `path` as
/// if `dirfd` were the root directory, so that absolute symlinks and ".." stay inside it
/// (how mcpjail reads the files of a jail from outside it). Linux 5.6+; -1/errno otherwise.
/// openat2 has no glibc wrapper.
int mcpjail_openat_in_root(int dirfd, const char *path, int flags);

/// At most this many fds pass in one SCM_RIGHTS message (the kernel's limit is 253).
#define MCPJAIL_MAX_PASSED_FDS 250

/// sendmsg of the bytes in `parts` with `count` fds (at most MCPJAIL_MAX_PASSED_FDS) as
/// SCM_RIGHTS on `channel`, retried on EINTR: the bytes sent, or -1/errno. Async-signal-safe.
struct iovec;
ssize_t mcpjail_send_parts(int channel, const struct iovec *parts, int part_count, const int *fds, int count);

/// sendmsg of one byte with `count` fds (at most MCPJAIL_MAX_PASSED_FDS) as SCM_RIGHTS on
/// `channel`, retried on EINTR. 0, or -1/errno. Async-signal-safe: the jail's first process
/// hands its sockets and its root over with it.
int mcpjail_send_fds(int channel, char byte, const int *fds, int count);

/// recvmsg of one message on `channel`, waiting for it when `wait` is nonzero: up to `size`
/// bytes into `buffer`, and up to `max` (at most MCPJAIL_MAX_PASSED_FDS) SCM_RIGHTS fds
/// (close-on-exec) into `fds`, their number in *fd_count. Returns the bytes received, or
/// -1/errno: EAGAIN when not waiting and no message is there, EPIPE at EOF, EMSGSIZE when
/// the message held more bytes or fds (its fds are then closed). Async-signal-safe.
ssize_t mcpjail_receive_parts(int channel, void *buffer, size_t size, int *fds, int max, int *fd_count, int wait);

/// recvmsg of one SCM_RIGHTS message (fds close-on-exec) on `channel`, waiting for it when
/// `wait` is nonzero: stores up to `max` (at most MCPJAIL_MAX_PASSED_FDS) fds in `fds`;
/// returns their number, or -1/errno (EAGAIN when not waiting and no message is there,
/// EPIPE at EOF, EMSGSIZE when the message held more).
int mcpjail_receive_fds(int channel, int *fds, int max, int wait);

/// splice(in, NULL, out, NULL, length, SPLICE_F_MOVE [| SPLICE_F_MORE]): a GNU extension
/// Swift's Glibc module hides. One of the fds must be a pipe.
ssize_t mcpjail_splice(int in_fd, int out_fd, size_t length, int more);

/// fcntl(F_SETPIPE_SZ): a pipe's capacity in bytes (rounded up by the kernel).
int mcpjail_set_pipe_size(int fd, int size);

/// accept4(listener, NULL, NULL, SOCK_CLOEXEC), retried on EINTR (accept4 is a GNU extension).
int mcpjail_accept_cloexec(int listener);

#endif
