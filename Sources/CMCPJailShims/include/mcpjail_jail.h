#ifndef MCPJAIL_JAIL_H
#define MCPJAIL_JAIL_H

#include <stddef.h>
#include <sys/types.h>

#include "mcpjail_spawn.h"

/// Stages of jail set-up after the ones of mcpjail_spawn.h, reported as (stage, errno).
enum mcpjail_jail_stage {
    MCPJAIL_STAGE_CLONE = 20,
    MCPJAIL_STAGE_WAIT_FOR_PARENT = 21,
    MCPJAIL_STAGE_IDENTITY = 22,
    MCPJAIL_STAGE_MOUNT_PRIVATE = 23,
    MCPJAIL_STAGE_NEW_ROOT = 24,
    MCPJAIL_STAGE_MOUNT = 25,
    MCPJAIL_STAGE_FILES = 26,
    MCPJAIL_STAGE_PIVOT_ROOT = 27,
    MCPJAIL_STAGE_HOSTNAME = 28,
    MCPJAIL_STAGE_LOOPBACK = 29,
    MCPJAIL_STAGE_INIT_FORK = 30,
    /// Handing the jail's root to the parent for inspection (see `inspect`).
    MCPJAIL_STAGE_INSPECT = 31,
    MCPJAIL_STAGE_EGRESS_ROUTES = 32,
    MCPJAIL_STAGE_EGRESS_SOCKET = 33,
    MCPJAIL_STAGE_EGRESS_HANDOFF = 34,
    /// Giving the server mcpjail's CPU affinity back after the build's placement.
    MCPJAIL_STAGE_AFFINITY = 35,
    /// The jail's network namespace (made by the namespace holder, not by the clone).
    MCPJAIL_STAGE_NETWORK_NAMESPACE = 36,
    /// Talking to the namespace holder (it ended without a word, say).
    MCPJAIL_STAGE_NAMESPACE_HOLDER = 37,
};

/// At most this many egress sockets (one SCM_RIGHTS message holds up to 253 fds).
#define MCPJAIL_EGRESS_MAX_SOCKETS 240

/// How many bytes of each packet the refusal watch keeps: an ICMP port unreachable with
/// the largest IPv4 headers quoted is 136 bytes.
#define MCPJAIL_REFUSAL_SNAPLEN 256

/// A socket the jail's first process creates inside the new network namespace, before the
/// server exists, and hands to mcpjail (the egress proxy's ends inside the jail).
struct mcpjail_egress_socket {
    /// AF_INET or AF_INET6; or AF_PACKET for the refusal watch: a packet socket on the
    /// namespace's loopback that receives the kernel's TCP resets and ICMP port unreachables
    /// answering attempts nothing listens for (address and port unused).
    int family;
    int type;                 ///< SOCK_STREAM (listens) or SOCK_DGRAM
    unsigned char address[16];  ///< network order: 4 bytes for AF_INET, 16 for AF_INET6
    unsigned short port;      ///< host order
};

/// The jail's half of the egress bridge (see Sources/MCPJailLinux/Egress). With
/// `channel_fd` < 0 the jail has its loopback only.
struct mcpjail_egress_config {
    /// A unix socket to mcpjail: the sockets below are sent over it with SCM_RIGHTS, in order.
    int channel_fd;
    const struct mcpjail_egress_socket *sockets;
    int socket_count;
    /// Whether to make every IPv6 address local too (IPv4 always is, with a channel).
    int ipv6;
};

/// What one step of building the jail's file system does.
enum mcpjail_mount_kind {
    /// Bind `source` (a host path) at `target`, read-only unless `writable`, keeping the
    /// source's locked nosuid/nodev/noexec flags.
    MCPJAIL_BIND = 1,
    /// A tmpfs of `size` bytes at `target`, mode 1777 (or 0755 when not `writable`... see mode).
    MCPJAIL_TMPFS = 2,
    /// A directory at `target`.
    MCPJAIL_DIR = 3,
    /// A symlink at `target` pointing to `source`.
    MCPJAIL_SYMLINK = 4,
    /// A file at `target` holding `data` (`size` bytes), mode `mode`.
    MCPJAIL_FILE = 5,
    /// A fresh proc at `target` (for the jail's pid namespace).
    MCPJAIL_PROC = 6,
    /// Bind a host device node `source` at `target` (a file is created to bind on).
    MCPJAIL_DEVICE = 7,
};

/// One step; paths are absolute inside the jail (`target`) or on the host (`source`).
struct mcpjail_mount {
    int kind;
    const char *source;
    const char *target;
    const char *data;
    unsigned long long size;
    int writable;
    int mode;
    /// For binds of a directory vs a file: 1 when the source is a directory.
    int is_directory;
};

/// A jailed start: a new user, pid, mount, network, ipc, uts and cgroup namespace; the
/// file system built from `mounts` on a fresh tmpfs root, pivot_root, root read-only;
/// hostname, loopback up; then a tiny init as pid 1 that starts the server and reaps.
struct mcpjail_jail_config {
    struct mcpjail_spawn_config process;  ///< what mcpjail_spawn does, applied to the server
    const struct mcpjail_mount *mounts;
    int mount_count;
    const char *hostname;
    /// The ids the server runs as inside the jail (and that are mapped to the host).
    uid_t uid;
    gid_t gid;
    /// As root: the child switches to uid/gid (mapped) before touching the file system.
    int switch_identity;
    /// 1: once the jail's file system is complete (every mount, pivot_root, root read-only)
    /// and before anything of the server runs, the child hands the parent an fd of the
    /// jail's root over the control socket (mcpjail verifies pins there, before it sends
    /// the start message).
    int inspect;
    struct mcpjail_egress_config egress;
    /// An open (O_RDONLY | O_DIRECTORY) fd of the session's cgroup v2 directory, or -1. The
    /// child is cloned into it (clone3 CLONE_INTO_CGROUP), which spares the parent a write
    /// to cgroup.procs that waits for an RCU grace period (8-13 ms measured); on kernels
    /// before 5.7 `mcpjail_jail_clone` says it did not, and the parent writes the pid.
    int cgroup_v2_fd;
};

/// The namespace holder: a process that makes the jail's namespaces ahead of the jail and
/// then clones the jail into them (`mcpjail_namespace_holder_start`). What mcpjail keeps.
struct mcpjail_namespace_holder {
    pid_t pid;       ///< > 0 until it is reaped
    int order_fd;    ///< mcpjail's end of the order pipe: a byte clones the jail, EOF ends it
    int report_fd;   ///< mcpjail's end of its (stage, value) reports
    /// A pidfd of the holder (CLONE_PIDFD), or -1 where the kernel has none (before 5.2):
    /// the report pipe's write end is in the fd table the two share, so the holder's death
    /// is no EOF there; a wait for a report watches this too.
    int pid_fd;
    int ready;       ///< 1 once its first report (namespaces made) has been read
    void *memory;    ///< its stack and the order, shared with mcpjail; unmapped by _end
};

/// Starts the namespace holder: a process cloned into a new user namespace that makes the
/// jail's network namespace (loopback up), new mount, ipc and uts namespaces and a new pid
/// namespace for its children, on a CPU other than the caller's, then waits for
/// `mcpjail_jail_clone`'s order. Started before the profile is read, it does that (~0.6 ms,
/// most of what a jail's namespaces cost) while mcpjail reads the profile and prepares the
/// session. It shares mcpjail's memory and fd table (CLONE_VM | CLONE_FILES: nothing of
/// mcpjail is copied for it, and the jail it clones takes the fds mcpjail opened
/// meanwhile), makes only raw system calls on a stack of its own, and keeps every signal
/// blocked. 0, or -1/errno.
int mcpjail_namespace_holder_start(struct mcpjail_namespace_holder *holder);

/// mcpjail_namespace_holder_start for a caller that is not the `parent` the holder expects:
/// the holder ends at once, without a report, when its parent is not `parent` (as when
/// mcpjail died before the holder could ask for the parent-death signal). For tests.
int mcpjail_namespace_holder_start_as_child_of(struct mcpjail_namespace_holder *holder, pid_t parent);

/// Ends the holder (closes the order pipe: if it is still waiting, it exits), reaps it and
/// unmaps its memory. The namespaces live on in the jail it cloned. Idempotent.
void mcpjail_namespace_holder_end(struct mcpjail_namespace_holder *holder);

/// Starts the holder from mcpjail's earliest code, a constructor that runs before the Swift
/// runtime and `main` (CMCPJailEarlyStart), for `mcpjail run`: its namespaces are then
/// ready ~0.13 ms sooner. Kept until `mcpjail_namespace_holder_take_early`. Its pid, or -1.
pid_t mcpjail_namespace_holder_start_early(void);

/// The holder `mcpjail_namespace_holder_start_early` started: 1 with `holder` filled in,
/// -1 with errno when its start failed, 0 when none was started (or it was taken already).
int mcpjail_namespace_holder_take_early(struct mcpjail_namespace_holder *holder);

/// The largest seccomp filter: the kernel's BPF_MAXINSNS (4096) instructions of 8 bytes.
#define MCPJAIL_SECCOMP_MAX_BYTES (4096 * 8)

/// Has the holder clone the jail's first process into its namespaces (pid 1 of the new pid
/// namespace, mcpjail's child all the same: CLONE_PARENT); the holder exits then. It waits
/// until `mcpjail_jail_build` so the parent can write the id maps (to the holder's user
/// namespace) (and, when `placed_in_cgroup` comes back 0 with config->cgroup_v2_fd
/// >= 0, its v2 cgroup placement). Returns 0 and sets `pid`, `release_fd`, `error_fd` and
/// `control_fd` (a SOCK_SEQPACKET socket to the child), or -1 with result->stage/error set.
/// config->process.seccomp_filter is not used: the filter comes with the start message.
/// A holder that failed is reported here (its stage: e.g. no network namespace left).
int mcpjail_jail_clone(const struct mcpjail_jail_config *config, struct mcpjail_namespace_holder *holder, pid_t *pid,
                       int *release_fd, int *error_fd, int *control_fd, int *placed_in_cgroup,
                       struct mcpjail_spawn_result *result);

/// The CPU the last jail of this process was built on, or -1 (the scheduler placed it):
/// its init starts the server there.
int mcpjail_last_build_cpu(void);

/// Lets the cloned process build the jail (file system, hostname, loopback, egress) and
/// returns at once, so the parent can compile the seccomp filter and make the cgroups
/// meanwhile; the child then waits for `mcpjail_jail_start`. Closes `release_fd`. 0, or -1
/// with result->stage/error when the child is gone (it is reaped, every fd closed).
int mcpjail_jail_build(pid_t pid, int release_fd, int error_fd, int control_fd, struct mcpjail_spawn_result *result);

/// Ends a cloned jail that was never released (a failure on the parent's side before
/// `mcpjail_jail_build`): closes `release_fd`, `error_fd` and `control_fd` and reaps it.
/// Returns 1 with result->stage/error when the jail had reported a failure of its own (which
/// is then the cause, the parent's failure only its symptom), else 0.
int mcpjail_jail_abandon(pid_t pid, int release_fd, int error_fd, int control_fd, struct mcpjail_spawn_result *result);

/// With config->inspect, after `mcpjail_jail_build`: waits until the jail's file system is
/// complete and returns 0 with `root_fd`, an O_PATH fd of the jail's root directory in the
/// jail's own mount namespace; the server has not started. -1 with result->stage/error on
/// failure (the jail is reaped, `error_fd` and `control_fd` closed).
int mcpjail_jail_receive_root(pid_t pid, int control_fd, int error_fd, int *root_fd, struct mcpjail_spawn_result *result);

/// At most this many v1 `tasks` files travel with the start message.
#define MCPJAIL_START_MAX_FDS 8

/// Once the cgroups exist: sends the start message, with the seccomp filter (`filter_length`
/// bytes, a multiple of 8, at most MCPJAIL_SECCOMP_MAX_BYTES; 0 for none) and the open v1
/// `tasks` files the jail joins by writing "0" into each (one thread moving itself skips the
/// kernel's global threadgroup lock, which a pid written by mcpjail takes), and waits for the
/// outcome: 0 once the server's exec succeeded, or -1 with result->stage/error (the jail is
/// reaped). Closes `control_fd` and `error_fd`, not the `tasks` fds. Closing `control_fd`
/// without calling this ends the jail before anything of the server runs.
int mcpjail_jail_start(pid_t pid, int control_fd, int error_fd, const void *filter, size_t filter_length,
                       const int *cgroup_tasks_fds, int cgroup_tasks_fd_count, struct mcpjail_spawn_result *result);

#endif
