// The jail's first process, between clone and the server's exec. Like mcpjail_spawn.c it
// runs only async-signal-safe calls on data the Swift parent prepared (no allocation):
// fixed-size path buffers on the stack, syscalls, and the steps of mcpjail_spawn_child.
//
// Order (nsjail's containProc, bubblewrap's setup_newroot):
//   namespace holder (started first thing in `run`, on a CPU of its own, sharing mcpjail's
//      memory and fds): a new user namespace -> new mount, ipc, uts namespaces and a pid
//      namespace for its children -> the network namespace -> loopback up -> wait for
//      mcpjail's order -> clone the jail (pid 1, mcpjail's child, into the v2 cgroup) -> exit
//   jail: wait for the parent (id maps) -> identity -> private mounts -> new tmpfs root
//   -> the profile's mounts -> pivot_root -> root read-only -> [hand the jail's root to the
//      parent: pins] -> hostname, egress -> init's preparations (not dumpable, handlers,
//      bounding set)
//   -> wait for the start message (the seccomp filter, and the v1 cgroups to join; a v2 one
//      the jail was cloned into) -> join them -> the jail's own cgroup namespace -> setsid
//   -> mcpjail's CPU mask back
//   -> pid 1 init: vfork the server (mcpjail_spawn_child: caps, no_new_privs, seccomp, exec)
//      and reap, forwarding signals, until the server exits.
// The namespaces, the network one most of their cost, are made while mcpjail reads the
// profile; the parent compiles the filter and makes the cgroups while the jail builds its
// file system.
#define _GNU_SOURCE
#include "mcpjail_jail.h"
#include "mcpjail_syscalls.h"
#include "spawn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr {
    unsigned long long attr_set;
    unsigned long long attr_clr;
    unsigned long long propagation;
    unsigned long long userns_fd;
};
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/// Where the host root is seen, and where the jail's root is built, before the final pivot.
#define OLD_ROOT "/oldroot"
#define NEW_ROOT "/newroot"

/// `prefix` + `path` into `out` (PATH_MAX); 0, or -1 (ENAMETOOLONG) when it does not fit.
static int join_path(char *out, const char *prefix, const char *path) {
    size_t a = strlen(prefix), b = strlen(path);
    if (a + b + 1 > PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, prefix, a);
    memcpy(out + a, path, b + 1);
    return 0;
}

/// mkdir -p, for paths inside the jail's own tmpfs. From the deepest end: a directory
/// whose parent exists costs one mkdir, where a stat of every component cost the jail's
/// build (on its critical path) a system call per component of every mount target.
static int make_directories(const char *path, mode_t mode) {
    char buffer[PATH_MAX];
    size_t length = strlen(path);
    if (length + 1 > sizeof(buffer)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buffer, path, length + 1);
    while (length > 1 && buffer[length - 1] == '/') buffer[--length] = '\0';
    // Back up, cutting the last component, to the deepest directory that exists or could
    // be made...
    size_t made = length;
    for (;;) {
        if (mkdir(buffer, mode) == 0 || errno == EEXIST) break;
        if (errno != ENOENT) {
            // An existing directory on a read-only bind may answer EROFS before EEXIST.
            int saved = errno;
            struct stat info;
            if (stat(buffer, &info) == 0) break;
            errno = saved;
            return -1;
        }
        char *slash = strrchr(buffer, '/');
        if (slash == NULL || slash == buffer) return -1;  // ENOENT at the top
        *slash = '\0';
        made = (size_t)(slash - buffer);
    }
    // ...then make the ones below it, restoring each cut.
    while (made < length) {
        buffer[made] = '/';
        made += strlen(buffer + made);
        if (mkdir(buffer, mode) != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

/// The parent directory of `path` must exist for a file or symlink to be made there.
static int make_parent(const char *path) {
    char buffer[PATH_MAX];
    size_t length = strlen(path);
    if (length + 1 > sizeof(buffer)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buffer, path, length + 1);
    char *slash = strrchr(buffer, '/');
    if (slash == NULL || slash == buffer) return 0;
    *slash = '\0';
    return make_directories(buffer, 0755);
}

static int make_empty_file(const char *path) {
    if (make_parent(path) != 0) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0) return errno == EEXIST ? 0 : -1;
    close(fd);
    return 0;
}

/// Makes a bind mount read-only, recursively where mount_setattr exists (Linux 5.12), else
/// by remounting with the source's locked flags repeated (a bind remount that drops
/// nosuid/nodev/noexec is refused in a user namespace).
static int make_read_only(const char *target, const char *source) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof(attr)) == 0) return 0;
    if (errno != ENOSYS) return -1;
    struct statvfs info;
    if (statvfs(source, &info) != 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
    if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    return mount(NULL, target, NULL, flags, NULL);
}

/// Decimal digits of `value` after `prefix` into `out` (for tmpfs options).
static void format_tmpfs_options(char *out, size_t size, unsigned long long bytes, int mode) {
    // "size=<bytes>,mode=<octal>"
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + bytes % 10);
        bytes /= 10;
    } while (bytes > 0 && n < 23);
    size_t at = 0;
    const char *head = "size=";
    for (const char *p = head; *p && at + 1 < size; p++) out[at++] = *p;
    while (n > 0 && at + 1 < size) out[at++] = digits[--n];
    const char *mid = ",mode=";
    for (const char *p = mid; *p && at + 1 < size; p++) out[at++] = *p;
    char octal[8];
    int m = 0;
    do {
        octal[m++] = (char)('0' + (mode & 7));
        mode >>= 3;
    } while (mode > 0 && m < 7);
    while (m > 0 && at + 1 < size) out[at++] = octal[--m];
    out[at] = '\0';
}

static int apply_mount(const struct mcpjail_mount *step) {
    char target[PATH_MAX], source[PATH_MAX];
    if (join_path(target, NEW_ROOT, step->target) != 0) return -1;
    switch (step->kind) {
    case MCPJAIL_BIND:
    case MCPJAIL_DEVICE: {
        if (join_path(source, OLD_ROOT, step->source) != 0) return -1;
        if (step->is_directory) {
            if (make_directories(target, 0755) != 0) return -1;
        } else if (make_empty_file(target) != 0) {
            return -1;
        }
        unsigned long flags = MS_BIND | (step->kind == MCPJAIL_BIND ? MS_REC : 0);
        if (mount(source, target, NULL, flags, NULL) != 0) return -1;
        if (step->kind == MCPJAIL_BIND && !step->writable) return make_read_only(target, source);
        return 0;
    }
    case MCPJAIL_TMPFS: {
        if (make_directories(target, 0755) != 0) return -1;
        char options[64];
        format_tmpfs_options(options, sizeof(options), step->size, step->mode);
        return mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options);
    }
    case MCPJAIL_DIR:
        if (make_directories(target, 0755) != 0) return -1;
        return chmod(target, (mode_t)step->mode);
    case MCPJAIL_SYMLINK:
        if (make_parent(target) != 0) return -1;
        return symlink(step->source, target) == 0 || errno == EEXIST ? 0 : -1;
    case MCPJAIL_FILE: {
        if (make_parent(target) != 0) return -1;
        int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)step->mode);
        if (fd < 0) return -1;
        size_t done = 0;
        while (done < step->size) {
            ssize_t n = write(fd, step->data + done, step->size - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                close(fd);
                return -1;
            }
            done += (size_t)n;
        }
        return close(fd);
    }
    case MCPJAIL_PROC:
        if (make_directories(target, 0555) != 0) return -1;
        return mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    default:
        errno = EINVAL;
        return -1;
    }
}

/// Makes every address of `family` local to the jail ("AnyIP": `ip route add local 0.0.0.0/0
/// dev lo table local`, or ::/0), with one RTM_NEWROUTE netlink message. Then a connection
/// to any address lands on the listener for its port, if there is one (and is refused at
/// once if not): the proxy sees, judges and records every destination, IP literals
/// included, and nothing can leave the namespace by any other way.
static int add_local_route(int family) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct {
        struct nlmsghdr header;
        struct rtmsg message;
        struct rtattr attribute;
        int oif;
    } request;
    memset(&request, 0, sizeof(request));
    request.header.nlmsg_len = sizeof(request);
    request.header.nlmsg_type = RTM_NEWROUTE;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    request.header.nlmsg_seq = 1;
    request.message.rtm_family = (unsigned char)family;
    request.message.rtm_dst_len = 0;
    request.message.rtm_table = RT_TABLE_LOCAL;
    request.message.rtm_protocol = RTPROT_BOOT;
    request.message.rtm_scope = RT_SCOPE_HOST;
    request.message.rtm_type = RTN_LOCAL;
    request.attribute.rta_type = RTA_OIF;
    request.attribute.rta_len = RTA_LENGTH(sizeof(int));
    request.oif = 1;  // lo is always interface 1 in a new network namespace
    int status = -1;
    if (send(fd, &request, sizeof(request), 0) == (ssize_t)sizeof(request)) {
        struct {
            struct nlmsghdr header;
            struct nlmsgerr error;
        } reply;
        ssize_t got = recv(fd, &reply, sizeof(reply), 0);
        if (got >= (ssize_t)sizeof(reply) && reply.header.nlmsg_type == NLMSG_ERROR) {
            if (reply.error.error == 0) status = 0;
            else errno = -reply.error.error;
        } else if (got >= 0) {
            errno = EPROTO;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return status;
}

/// Which packets on the jail's loopback the refusal watch keeps (classic BPF; a SOCK_DGRAM
/// packet socket sees them from the network header on): the kernel's answers to attempts
/// nothing listens for. A TCP reset answering a SYN (RST|ACK, sequence 0: tcp_v4_send_reset
/// and tcp_v6_send_reset) and an ICMP / ICMPv6 port unreachable answering a UDP datagram.
/// Each loopback packet passes twice (outgoing, then incoming): only the incoming copy is
/// kept. mcpjail parses what it gets again (EgressRefusal.parse); this only keeps the rest
/// of the jail's traffic away from the socket.
static const struct sock_filter refusal_filter[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (__u32)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 26, 0),      // -> 28 drop
    /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (__u32)(SKF_AD_OFF + SKF_AD_PROTOCOL)),
    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 1, 0),              // -> 5 IPv4
    /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 12, 23),          // -> 17 IPv6, else drop
    /* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),                           // IPv4 protocol
    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0),           // -> 8
    /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMP, 6, 20),         // -> 14, else drop
    /* 8 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                          // X = IPv4 header length
    /* 9 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 13),                          // TCP flags
    /* 10 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x17),                      // FIN SYN RST ACK
    /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x14, 0, 16),               // RST|ACK, else drop
    /* 12 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 4),                          // sequence number
    /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 13, 14),                 // 0 -> 27 keep, else drop
    /* 14 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
    /* 15 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),                          // ICMP type, code
    /* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0303, 10, 11),            // port unreachable -> 27
    /* 17 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),                          // IPv6 next header
    /* 18 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0),          // -> 20
    /* 19 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 5, 8),       // -> 25, else drop
    /* 20 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 40 + 13),
    /* 21 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x17),
    /* 22 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x14, 0, 5),
    /* 23 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 40 + 4),
    /* 24 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 3),
    /* 25 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 40),                         // ICMPv6 type, code
    /* 26 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0104, 0, 1),              // port unreachable
    /* 27 */ BPF_STMT(BPF_RET | BPF_K, MCPJAIL_REFUSAL_SNAPLEN),
    /* 28 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

/// The refusal watch: a packet socket on the jail's network namespace (whose only
/// interface is lo), filtered before it is bound so that it never holds anything else.
static int open_refusal_watch(void) {
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // protocol 0: receives nothing yet
    if (fd < 0) return -1;
    struct sock_fprog program = {
        .len = (unsigned short)(sizeof(refusal_filter) / sizeof(refusal_filter[0])),
        .filter = (struct sock_filter *)refusal_filter,
    };
    struct sockaddr_ll address;
    memset(&address, 0, sizeof(address));
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = 0;  // every interface of the namespace: lo
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0 ||
        bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/// Creates one egress socket (close-on-exec: the server never holds it), bound and, for
/// TCP, listening; or the refusal watch (AF_PACKET). Returns the fd or -1.
static int open_egress_socket(const struct mcpjail_egress_socket *spec) {
    if (spec->family == AF_PACKET) return open_refusal_watch();
    int fd = socket(spec->family, spec->type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } address;
    memset(&address, 0, sizeof(address));
    socklen_t length;
    if (spec->family == AF_INET) {
        address.v4.sin_family = AF_INET;
        address.v4.sin_port = htons(spec->port);
        memcpy(&address.v4.sin_addr, spec->address, 4);
        length = sizeof(address.v4);
    } else {
        // IPv6 listeners take IPv6 only: IPv4 has its own.
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) goto fail;
        address.v6.sin6_family = AF_INET6;
        address.v6.sin6_port = htons(spec->port);
        memcpy(&address.v6.sin6_addr, spec->address, 16);
        length = sizeof(address.v6);
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) goto fail;
    if (bind(fd, (struct sockaddr *)&address, length) != 0) goto fail;
    if (spec->type == SOCK_STREAM && listen(fd, 128) != 0) goto fail;
    return fd;
fail: {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
}

/// The jail's half of the egress bridge: every address local (IPv4, and IPv6 when asked),
/// then every socket, sent to mcpjail in one SCM_RIGHTS message and closed here.
static void set_up_egress(const struct mcpjail_egress_config *egress, int error_fd) {
    if (egress->channel_fd < 0) return;
    if (add_local_route(AF_INET) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EGRESS_ROUTES);
    if (egress->ipv6 && add_local_route(AF_INET6) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EGRESS_ROUTES);
    int fds[MCPJAIL_EGRESS_MAX_SOCKETS];
    int count = egress->socket_count;
    if (count > MCPJAIL_EGRESS_MAX_SOCKETS) {
        errno = E2BIG;
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EGRESS_SOCKET);
    }
    for (int i = 0; i < count; i++) {
        fds[i] = open_egress_socket(&egress->sockets[i]);
        if (fds[i] < 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EGRESS_SOCKET);
    }
    if (mcpjail_send_fds(egress->channel_fd, 'E', fds, count) != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_EGRESS_HANDOFF);
    for (int i = 0; i < count; i++) close(fds[i]);
    close(egress->channel_fd);
}

static volatile pid_t init_server_pid = 0;

static void init_forward_signal(int sig) {
    if (init_server_pid > 0) kill(init_server_pid, sig);
}

/// What the server's process runs first: on `server_stack`, in init's memory, while init
/// waits (CLONE_VFORK) for its exec or its failure.
struct server_start {
    const struct mcpjail_jail_config *config;
    int error_fd;
};

static int start_server(void *argument) {
    const struct server_start *start = argument;
    mcpjail_spawn_child(&start->config->process, start->error_fd, 1);
}

/// The server's stack until its exec. mcpjail_spawn_child needs well under 4 KiB of it.
static char server_stack[64 * 1024] __attribute__((aligned(16)));

/// What init does before the start message, while the parent may still be preparing: not
/// dumpable from here on, so the server can neither read init's memory or environment nor
/// open /proc/1/exe; mcpjail's signal handlers (which came along with the clone) back to
/// the defaults and the stopping signals forwarded (every signal is still blocked: see
/// run_init); the capability bounding set emptied for the server to inherit. None of it is
/// needed by what comes before the exec (the cgroup joins, the cgroup namespace, setsid),
/// and none of it then waits on the path to the server's start.
static void prepare_init(int error_fd) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_INIT_FORK);
    sigset_t all;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, NULL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SIGNALS);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    sigemptyset(&action.sa_mask);
    action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) (void)sigaction(sig, &action, NULL);
    }
    action.sa_handler = init_forward_signal;
    int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) sigaction(forwarded[i], &action, NULL);
    if (mcpjail_drop_bounding_set() != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CAPABILITIES);
}

/// pid 1 of the jail: starts the server and reaps every process until the server exits,
/// then exits with its status (128 + signal when it was killed). Not dumpable, its
/// handlers set (prepare_init). Every signal stays blocked until the server's pid is known,
/// so that a signal sent meanwhile is forwarded rather than lost; the server's process
/// unblocks its own once its handlers are the defaults (mcpjail_spawn_child).
static void run_init(const struct mcpjail_jail_config *config, int error_fd) {
    // posix_spawn's shape: the server's process shares init's memory until its exec
    // (CLONE_VM | CLONE_VFORK), so no copy of the address space init inherited from
    // mcpjail is made, nor torn down again by the exec. glibc's clone() takes no locks.
    struct server_start start = { config, error_fd };
    pid_t server = clone(start_server, server_stack + sizeof(server_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
    if (server < 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_INIT_FORK);
    init_server_pid = server;
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SIGNALS);

    // Hold nothing of mcpjail's: the server's exec (or its failure report) ends the parent's wait.
    syscall(SYS_close_range, 0U, ~0U, 0U);

    for (;;) {
        int status;
        pid_t reaped = waitpid(-1, &status, 0);
        if (reaped < 0) {
            if (errno == EINTR) continue;
            _exit(127);
        }
        if (reaped == server) {
            if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
            _exit(WEXITSTATUS(status));
        }
    }
}

/// Sends the jail's root directory to the parent over `control_fd` (SCM_RIGHTS): the
/// parent verifies the files the server will see, from outside, with nothing of the server
/// running yet, and sends the start message only when they match.
static int hand_root_for_inspection(int control_fd) {
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return -1;
    int status = mcpjail_send_fds(control_fd, 'r', &root, 1);
    int saved = errno;
    close(root);
    errno = saved;
    return status;
}

/// The start message's filter, copied out of it: run_init hands it to the server's process.
static unsigned char received_filter[MCPJAIL_SECCOMP_MAX_BYTES] __attribute__((aligned(8)));
/// The configuration with the received filter in it.
static struct mcpjail_jail_config final_config;

/// Waits for the parent's start message on `control_fd`: a 4-byte length, then that many
/// bytes of seccomp-BPF (0: none), with the open `tasks` files of the session's v1 cgroups
/// attached (SCM_RIGHTS). The parent closing the socket instead (it gave up, or died) ends
/// the child quietly.
static const struct mcpjail_jail_config *wait_for_start(const struct mcpjail_jail_config *config, int control_fd,
                                                        int error_fd) {
    static unsigned char message[4 + MCPJAIL_SECCOMP_MAX_BYTES];
    int tasks[MCPJAIL_START_MAX_FDS];
    int task_count = 0;
    ssize_t got = mcpjail_receive_parts(control_fd, message, sizeof(message), tasks, MCPJAIL_START_MAX_FDS, &task_count, 1);
    if (got < 0 && errno != EMSGSIZE) _exit(127);  // the parent gave up or died
    close(control_fd);
    uint32_t length = 0;
    if (got >= 4) memcpy(&length, message, sizeof(length));
    if (got < 4 || (size_t)got != 4 + (size_t)length || length % 8 != 0) {
        errno = EPROTO;
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_WAIT_FOR_PARENT);
    }
    // Join the v1 cgroups: "0" moves the writer, one thread, which skips the kernel's global
    // threadgroup lock (a pid written by the parent takes it: ~11 ms here). The permission
    // check is the opener's (mcpjail's).
    for (int i = 0; i < task_count; i++) {
        if (write(tasks[i], "0", 1) != 1) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CGROUP);
        close(tasks[i]);
    }
    memcpy(received_filter, message + 4, length);
    final_config = *config;
    final_config.process.seccomp_filter = length > 0 ? received_filter : NULL;
    final_config.process.seccomp_filter_length = (unsigned short)(length / 8);
    return &final_config;
}

/// Where the jail builds: a CPU of mcpjail's affinity other than the one the parent runs on
/// at the clone, so the two work side by side. The scheduler would put the child on the
/// parent's CPU (its wake-ups come from there, and a task that ran within the last 0.5 ms
/// is too "cache hot" for an idle CPU to pull), and the build then waits for the parent's
/// preparations instead of overlapping them. The server gets the whole mask back.
struct build_placement {
    int build_cpu;        ///< -1: leave the placement to the scheduler
    int parent_cpu;       ///< where the parent ran when this was planned
    cpu_set_t run_mask;   ///< mcpjail's own affinity, restored before init starts the server
};

static void plan_build_placement(struct build_placement *placement) {
    placement->build_cpu = -1;
    placement->parent_cpu = -1;
    CPU_ZERO(&placement->run_mask);
    if (sched_getaffinity(0, sizeof(placement->run_mask), &placement->run_mask) != 0) return;
    int here = sched_getcpu();
    placement->parent_cpu = here;
    if (here < 0 || CPU_COUNT(&placement->run_mask) < 2) return;
    for (int step = 1; step < CPU_SETSIZE; step++) {
        int cpu = (here + step) % CPU_SETSIZE;
        if (CPU_ISSET(cpu, &placement->run_mask)) {
            placement->build_cpu = cpu;
            return;
        }
    }
}

/// A system call that leaves errno alone, for the namespace holder: it shares mcpjail's
/// memory (CLONE_VM), the thread-local errno of the thread that started it included, and
/// runs beside mcpjail's threads. Returns the result or -errno. A fork-like clone returns 0
/// in the child on a copy of the caller's stack, as glibc's syscall() does.
static long holder_syscall(long number, long a, long b, long c) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#else
    // Elsewhere libc's call: a failing one may overwrite the errno of mcpjail's thread.
    long ret = syscall(number, a, b, c);
    return ret < 0 ? -errno : ret;
#endif
}

/// Pins the caller to `cpu` when it is >= 0 (a placement hint: failure changes nothing).
/// A raw call (holder_syscall), so the namespace holder can use it too.
static void pin_to_cpu(int cpu) {
    if (cpu < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)holder_syscall(SYS_sched_setaffinity, 0, (long)sizeof(one), (long)&one);
}

static void jail_child(const struct mcpjail_jail_config *config, const struct build_placement *placement, int release_fd,
                       int error_fd, int control_fd) {
    // Die with mcpjail. (getppid() is 0 here: the parent is outside the pid namespace;
    // the release pipe tells whether it is still there.)
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_PDEATHSIG);
    char go = 0;
    ssize_t got;
    do {
        got = read(release_fd, &go, 1);
    } while (got < 0 && errno == EINTR);
    if (got != 1) _exit(127);  // the parent gave up or died: nothing to report to
    close(release_fd);

    if (config->switch_identity) {
        // As root: become the mapped ids before touching any file system (an unmapped uid
        // cannot create files: EOVERFLOW). Capabilities in the namespace are kept, since the
        // unmapped uid was not the namespace's root.
        // Raw syscalls: glibc's wrappers broadcast the change to every thread of the process
        // it believes it is (the parent's, copied by clone) and wait for them forever.
        if (syscall(SYS_setgroups, 0, NULL) != 0 ||
            syscall(SYS_setresgid, config->gid, config->gid, config->gid) != 0 ||
            syscall(SYS_setresuid, config->uid, config->uid, config->uid) != 0)
            mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_IDENTITY);
    }

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_MOUNT_PRIVATE);

    // A scratch tmpfs that becomes the root for a moment, holding the host root (oldroot)
    // and the jail's root (newroot) side by side.
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0 ||
        chdir("/tmp") != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0 ||
        mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0 ||
        syscall(SYS_pivot_root, ".", "oldroot") != 0 || chdir("/") != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_NEW_ROOT);

    for (int i = 0; i < config->mount_count; i++) {
        if (apply_mount(&config->mounts[i]) != 0)
            mcpjail_report_and_exit(error_fd, config->mounts[i].kind == MCPJAIL_FILE ? MCPJAIL_STAGE_FILES : MCPJAIL_STAGE_MOUNT);
    }

    // The jail's root becomes / and the host disappears (pivot_root(".", ".") then detach).
    if (chdir(NEW_ROOT) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 ||
        chdir("/") != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_PIVOT_ROOT);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_PIVOT_ROOT);
    if (config->inspect && hand_root_for_inspection(control_fd) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_INSPECT);

    if (sethostname(config->hostname, strlen(config->hostname)) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_HOSTNAME);
    set_up_egress(&config->egress, error_fd);

    prepare_init(error_fd);
    const struct mcpjail_jail_config *final = wait_for_start(config, control_fd, error_fd);
    // Now in its cgroups (joined above, or placed by the parent): make that the cgroup
    // namespace's root.
    if (unshare(CLONE_NEWCGROUP) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_CGROUP);
    if (setsid() < 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_SETSID);
    if (placement->build_cpu >= 0 && sched_setaffinity(0, sizeof(placement->run_mask), &placement->run_mask) != 0)
        mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_AFFINITY);

    run_init(final, error_fd);
}

static ssize_t read_report(int error_fd, int report[2]);

static int last_build_cpu = -1;

int mcpjail_last_build_cpu(void) { return last_build_cpu; }

/// The memory the holder and mcpjail share: its stack, and at its bottom this. The jail,
/// cloned by the holder, goes on using its copy of both.
struct holder_shared {
    pid_t parent;                             ///< mcpjail: the holder ends if it is not its parent any more
    struct build_placement holder_placement;  ///< where the holder runs (planned at its start)
    int order_fd;                             ///< the holder's end: a byte clones the jail, EOF ends it
    int report_fd;                            ///< the holder's end: (stage, value) messages
    // The order, written by mcpjail before its byte:
    const struct mcpjail_jail_config *config;
    struct build_placement placement;         ///< the jail's (planned at the clone)
    int release_fd, error_fd, control_fd;     ///< the jail's ends
    int close_in_jail[8];                     ///< every other end of these pipes, the holder's pidfd
    // Written by the holder before its report:
    int placed_in_cgroup;
};

#define HOLDER_MEMORY (256 * 1024)

static void holder_exit(int report_fd, int stage, long error) __attribute__((noreturn));
static void holder_exit(int report_fd, int stage, long error) {
    if (stage != MCPJAIL_STAGE_NONE) {
        int report[2] = { stage, (int)-error };
        (void)holder_syscall(SYS_write, report_fd, (long)report, (long)sizeof(report));
    }
    for (;;) (void)holder_syscall(SYS_exit, stage == MCPJAIL_STAGE_NONE ? 0 : 127, 0, 0);
}

/// Clones the jail's first process as mcpjail's child (CLONE_PARENT; fork-like), straight
/// into the v2 cgroup `cgroup_fd` when it is >= 0 and the kernel has CLONE_INTO_CGROUP
/// (5.7); *placed says whether it went there. 0 in the child, its pid, or -errno.
static long holder_clone_jail(int cgroup_fd, int *placed) {
    *placed = 0;
    if (cgroup_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof(args));
        // clone3 refuses an exit signal with CLONE_PARENT: the child's is the caller's,
        // SIGCHLD (copy_process).
        args.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
        long child = holder_syscall(SYS_clone3, (long)&args, (long)sizeof(args), 0);
        if (child > 0) *placed = 1;
        if (child >= 0) return child;
        // ENOSYS: no clone3 (before 5.3); E2BIG or EINVAL: no CLONE_INTO_CGROUP (before 5.7).
        if (child != -ENOSYS && child != -E2BIG && child != -EINVAL) return child;
    }
    return holder_syscall(SYS_clone, CLONE_PARENT, 0, 0);
}

/// The namespace holder's life, on its own stack in mcpjail's memory, with only raw system
/// calls and every signal blocked: the jail's namespaces (network; mount, ipc, uts and pid
/// for its children), loopback up, a (stage, errno) report (stage 0: ready), then a wait
/// for its order: a byte clones the jail (and reports its pid), EOF ends it.
static int run_namespace_holder(void *argument) {
    struct holder_shared *shared = argument;
    int report_fd = shared->report_fd;
    long ret = holder_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_PDEATHSIG, ret);
    // mcpjail may have died before the prctl: then no signal will come, and the order pipe
    // (its writer is in the fd table this process shares) would keep it waiting for good.
    if (holder_syscall(SYS_getppid, 0, 0, 0) != shared->parent) holder_exit(report_fd, MCPJAIL_STAGE_NONE, 0);
    pin_to_cpu(shared->holder_placement.build_cpu);
    // Every capability in its new user namespace from the start: no id map is needed for
    // these, and they belong to the user namespace the jail is cloned into.
    ret = holder_syscall(SYS_unshare, CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID, 0, 0);
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_CLONE, ret);
    ret = holder_syscall(SYS_unshare, CLONE_NEWNET, 0, 0);
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_NETWORK_NAMESPACE, ret);
    // Loopback up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP).
    long fd = holder_syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) holder_exit(report_fd, MCPJAIL_STAGE_LOOPBACK, fd);
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    memcpy(request.ifr_name, "lo", 3);
    ret = holder_syscall(SYS_ioctl, fd, SIOCGIFFLAGS, (long)&request);
    if (ret == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        ret = holder_syscall(SYS_ioctl, fd, SIOCSIFFLAGS, (long)&request);
    }
    holder_syscall(SYS_close, fd, 0, 0);
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_LOOPBACK, ret);
    int report[2] = { MCPJAIL_STAGE_NONE, 0 };
    if (holder_syscall(SYS_write, report_fd, (long)report, (long)sizeof(report)) != (long)sizeof(report))
        holder_exit(report_fd, MCPJAIL_STAGE_NONE, 0);

    char order;
    do {
        ret = holder_syscall(SYS_read, shared->order_fd, (long)&order, 1);
    } while (ret == -EINTR);
    if (ret != 1) holder_exit(report_fd, MCPJAIL_STAGE_NONE, 0);  // not needed after all
    const struct mcpjail_jail_config *config = shared->config;
    int placed = 0;
    long jail = holder_clone_jail(config->cgroup_v2_fd, &placed);
    if (jail == 0) {
        // The jail: a copy of mcpjail's memory of its own from here on, so libc again.
        for (int i = 0; i < 8; i++) close(shared->close_in_jail[i]);
        if (shared->placement.build_cpu != shared->holder_placement.build_cpu) pin_to_cpu(shared->placement.build_cpu);
        jail_child(config, &shared->placement, shared->release_fd, shared->error_fd, shared->control_fd);
        _exit(127);
    }
    if (jail < 0) holder_exit(report_fd, MCPJAIL_STAGE_CLONE, jail);
    shared->placed_in_cgroup = placed;
    report[1] = (int)jail;
    holder_syscall(SYS_write, report_fd, (long)report, (long)sizeof(report));
    holder_exit(report_fd, MCPJAIL_STAGE_NONE, 0);
}

int mcpjail_namespace_holder_start(struct mcpjail_namespace_holder *holder) {
    return mcpjail_namespace_holder_start_as_child_of(holder, getpid());
}

/// The holder started before `main`: 0 none, 1 started, -1 its start failed (early_errno).
/// Under a lock, so that one of several threads asking at once (the tests' jails) adopts it.
static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static int early_outcome;
static int early_errno;
static struct mcpjail_namespace_holder early_holder;

pid_t mcpjail_namespace_holder_start_early(void) {
    pthread_mutex_lock(&early_lock);
    if (early_outcome == 0) {
        early_outcome = mcpjail_namespace_holder_start(&early_holder) == 0 ? 1 : -1;
        early_errno = errno;
    }
    pid_t pid = early_outcome == 1 ? early_holder.pid : -1;
    pthread_mutex_unlock(&early_lock);
    return pid;
}

int mcpjail_namespace_holder_take_early(struct mcpjail_namespace_holder *holder) {
    pthread_mutex_lock(&early_lock);
    int outcome = early_outcome;
    early_outcome = 0;
    if (outcome == 1) *holder = early_holder;
    int error = early_errno;
    pthread_mutex_unlock(&early_lock);
    if (outcome == -1) errno = error;
    return outcome;
}

int mcpjail_namespace_holder_start_as_child_of(struct mcpjail_namespace_holder *holder, pid_t parent) {
    holder->pid = -1;
    holder->order_fd = -1;
    holder->report_fd = -1;
    holder->pid_fd = -1;
    holder->ready = 0;
    holder->memory = NULL;
    int order_pipe[2], report_pipe[2];
    if (pipe2(order_pipe, O_CLOEXEC) != 0) return -1;
    if (pipe2(report_pipe, O_CLOEXEC) != 0) {
        int saved = errno;
        close(order_pipe[0]);
        close(order_pipe[1]);
        errno = saved;
        return -1;
    }
    void *memory = mmap(NULL, HOLDER_MEMORY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    long child = -1;
    int saved = errno;
    if (memory != MAP_FAILED) {
        struct holder_shared *shared = memory;
        shared->parent = parent;
        plan_build_placement(&shared->holder_placement);
        shared->order_fd = order_pipe[0];
        shared->report_fd = report_pipe[1];
        // It shares mcpjail's memory (no copy to make at the clone, no copy-on-write faults
        // while it lives, nothing to tear down at its exit) and fd table (the jail it clones
        // takes the fds mcpjail opened meanwhile). Every signal blocked, so none of
        // mcpjail's handlers ever runs on its stack.
        sigset_t all, previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        int flags = CLONE_VM | CLONE_FILES | CLONE_NEWUSER | SIGCHLD;
        int pid_fd = -1;
        child = clone(run_namespace_holder, (char *)memory + HOLDER_MEMORY, flags | CLONE_PIDFD, shared, &pid_fd);
        if (child < 0 && errno == EINVAL) {
            // No CLONE_PIDFD (before 5.2): reports are then waited for with a timeout.
            pid_fd = -1;
            child = clone(run_namespace_holder, (char *)memory + HOLDER_MEMORY, flags, shared);
        }
        saved = errno;
        holder->pid_fd = child > 0 ? pid_fd : -1;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
    }
    if (child < 0) {
        close(order_pipe[0]);
        close(order_pipe[1]);
        close(report_pipe[0]);
        close(report_pipe[1]);
        if (memory != MAP_FAILED) munmap(memory, HOLDER_MEMORY);
        errno = saved;
        return -1;
    }
    holder->pid = (pid_t)child;
    holder->order_fd = order_pipe[1];
    holder->report_fd = report_pipe[0];
    holder->memory = memory;
    return 0;
}

/// Reads the holder's next report: 0 with `value`, or -1 with result->stage/error (what it
/// reported, or MCPJAIL_STAGE_NAMESPACE_HOLDER when it ended without a word), the holder
/// then killed and reaped.
static int read_holder_report(struct mcpjail_namespace_holder *holder, int *value, struct mcpjail_spawn_result *result) {
    int report[2] = { -1, 0 };
    ssize_t got = -1;
    // The holder shares this fd table, so the report pipe has a writer for as long as
    // mcpjail lives: the holder's end is watched through its pidfd (or, without one, every
    // 50 ms with waitpid), and a holder gone without a word is a failure, not a hang.
    for (;;) {
        struct pollfd watched[2] = { { holder->report_fd, POLLIN, 0 }, { holder->pid_fd, POLLIN, 0 } };
        int ready = poll(watched, holder->pid_fd >= 0 ? 2 : 1, holder->pid_fd >= 0 ? -1 : 50);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) break;
        if (watched[0].revents != 0) {
            do {
                got = read(holder->report_fd, report, sizeof(report));
            } while (got < 0 && errno == EINTR);
            break;
        }
        int status;
        if ((holder->pid_fd >= 0 && watched[1].revents != 0) ||
            (holder->pid_fd < 0 && waitpid(holder->pid, &status, WNOHANG) == holder->pid)) {
            // Gone: a report it wrote just before would have shown above.
            if (holder->pid_fd < 0) holder->pid = -1;
            got = 0;
            errno = ECHILD;
            break;
        }
    }
    if (got == (ssize_t)sizeof(report) && report[0] == MCPJAIL_STAGE_NONE) {
        *value = report[1];
        return 0;
    }
    if (got != (ssize_t)sizeof(report)) {
        report[0] = MCPJAIL_STAGE_NAMESPACE_HOLDER;
        report[1] = got < 0 ? errno : got == 0 ? ECHILD : EPROTO;
    }
    if (holder->pid > 0) {
        kill(holder->pid, SIGKILL);
        int status;
        while (waitpid(holder->pid, &status, 0) < 0 && errno == EINTR) {}
    }
    holder->pid = -1;
    result->stage = report[0];
    result->error = report[1];
    return -1;
}

void mcpjail_namespace_holder_end(struct mcpjail_namespace_holder *holder) {
    if (holder->order_fd >= 0) close(holder->order_fd);
    if (holder->report_fd >= 0) close(holder->report_fd);
    if (holder->pid_fd >= 0) close(holder->pid_fd);
    holder->order_fd = -1;
    holder->report_fd = -1;
    holder->pid_fd = -1;
    int status;
    if (holder->pid > 0) while (waitpid(holder->pid, &status, 0) < 0 && errno == EINTR) {}
    holder->pid = -1;
    // Its stack: unused once it has been reaped.
    if (holder->memory != NULL) munmap(holder->memory, HOLDER_MEMORY);
    holder->memory = NULL;
}

int mcpjail_jail_clone(const struct mcpjail_jail_config *config, struct mcpjail_namespace_holder *holder, pid_t *pid,
                       int *release_fd, int *error_fd, int *control_fd, int *placed_in_cgroup,
                       struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    *control_fd = -1;
    *placed_in_cgroup = 0;
    if (holder->pid <= 0 || holder->memory == NULL) {
        result->stage = MCPJAIL_STAGE_NAMESPACE_HOLDER;
        result->error = ECHILD;
        return -1;
    }
    int ignored;
    if (!holder->ready && read_holder_report(holder, &ignored, result) != 0) return -1;
    holder->ready = 1;
    int release_pipe[2], error_pipe[2], control_pair[2];
    if (pipe2(release_pipe, O_CLOEXEC) != 0) goto fail;
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        close(release_pipe[0]);
        close(release_pipe[1]);
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control_pair) != 0) {
        int saved = errno;
        close(release_pipe[0]);
        close(release_pipe[1]);
        close(error_pipe[0]);
        close(error_pipe[1]);
        errno = saved;
        goto fail;
    }
    struct holder_shared *shared = holder->memory;
    shared->config = config;
    plan_build_placement(&shared->placement);
    last_build_cpu = shared->placement.build_cpu;
    shared->release_fd = release_pipe[0];
    shared->error_fd = error_pipe[1];
    shared->control_fd = control_pair[1];
    int others[8] = { release_pipe[1], error_pipe[0], control_pair[0], shared->order_fd, shared->report_fd,
                      holder->order_fd, holder->report_fd, holder->pid_fd };
    memcpy(shared->close_in_jail, others, sizeof(others));
    shared->placed_in_cgroup = 0;
    ssize_t sent;
    do {
        sent = write(holder->order_fd, "c", 1);
    } while (sent < 0 && errno == EINTR);
    int jail = -1;
    int cloned = -1;
    if (sent == 1) {
        cloned = read_holder_report(holder, &jail, result);
    } else {
        result->stage = MCPJAIL_STAGE_NAMESPACE_HOLDER;
        result->error = errno;
    }
    // The jail has its copies of its ends (and the holder no more use for its).
    close(release_pipe[0]);
    close(error_pipe[1]);
    close(control_pair[1]);
    if (cloned != 0 || jail <= 0) {
        close(release_pipe[1]);
        close(error_pipe[0]);
        close(control_pair[0]);
        if (cloned == 0) {
            result->stage = MCPJAIL_STAGE_NAMESPACE_HOLDER;
            result->error = EPROTO;
        }
        return -1;
    }
    *pid = jail;
    *placed_in_cgroup = shared->placed_in_cgroup;
    *release_fd = release_pipe[1];
    *error_fd = error_pipe[0];
    *control_fd = control_pair[0];
    return 0;
fail:
    result->stage = MCPJAIL_STAGE_CLONE;
    result->error = errno;
    return -1;
}

/// Kills and reaps the jail's first process and records why it failed: its (stage, errno)
/// report when `got` bytes of one were read, else `fallback_error` at waiting for the parent.
static void reap_failed(pid_t pid, const int message[2], ssize_t got, int fallback_error,
                        struct mcpjail_spawn_result *result) {
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got == (ssize_t)(2 * sizeof(int))) {
        result->stage = message[0];
        result->error = message[1];
    } else {
        result->stage = MCPJAIL_STAGE_WAIT_FOR_PARENT;
        result->error = fallback_error;
    }
}

/// Reads the child's (stage, errno) report from `error_fd` and closes it: the bytes read,
/// 0 at EOF (the child exec'd, or ended without a word), -1/errno.
static ssize_t read_report(int error_fd, int report[2]) {
    ssize_t got;
    do {
        got = read(error_fd, report, 2 * sizeof(int));
    } while (got < 0 && errno == EINTR);
    int saved = errno;
    close(error_fd);
    errno = saved;
    return got;
}

/// The child's report after a failed step of the parent's: read from `error_fd` (which it
/// closes), the jail killed and reaped, `control_fd` closed; `fallback_error` when the
/// child had nothing to say.
static int fail_jail(pid_t pid, int error_fd, int control_fd, int fallback_error, struct mcpjail_spawn_result *result) {
    if (control_fd >= 0) close(control_fd);
    int report[2] = { 0, 0 };
    ssize_t reported = read_report(error_fd, report);
    reap_failed(pid, report, reported, fallback_error, result);
    return -1;
}

int mcpjail_jail_abandon(pid_t pid, int release_fd, int error_fd, int control_fd, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    // Unreleased, the jail exits by itself (EOF on its release pipe) once it is done with
    // what it does first, and reports only a failure of that.
    close(release_fd);
    fail_jail(pid, error_fd, control_fd, 0, result);
    return result->stage == MCPJAIL_STAGE_WAIT_FOR_PARENT ? 0 : 1;
}

int mcpjail_jail_build(pid_t pid, int release_fd, int error_fd, int control_fd, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    ssize_t sent;
    do {
        sent = write(release_fd, "1", 1);
    } while (sent < 0 && errno == EINTR);
    int saved = errno;
    close(release_fd);
    if (sent == 1) return 0;
    return fail_jail(pid, error_fd, control_fd, saved, result);
}

int mcpjail_jail_receive_root(pid_t pid, int control_fd, int error_fd, int *root_fd, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    *root_fd = -1;
    int got = mcpjail_receive_fds(control_fd, root_fd, 1, 1);
    if (got == 1) return 0;
    *root_fd = -1;
    // No root: the child failed before (its report is on the error pipe) or died.
    return fail_jail(pid, error_fd, control_fd, got < 0 ? errno : EPIPE, result);
}

int mcpjail_jail_start(pid_t pid, int control_fd, int error_fd, const void *filter, size_t filter_length,
                       const int *cgroup_tasks_fds, int cgroup_tasks_fd_count, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    if (filter_length > MCPJAIL_SECCOMP_MAX_BYTES || filter_length % 8 != 0 || cgroup_tasks_fd_count < 0 ||
        cgroup_tasks_fd_count > MCPJAIL_START_MAX_FDS) {
        close(control_fd);
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        close(error_fd);
        result->stage = cgroup_tasks_fd_count > MCPJAIL_START_MAX_FDS ? MCPJAIL_STAGE_CGROUP : MCPJAIL_STAGE_SECCOMP;
        result->error = E2BIG;
        return -1;
    }
    uint32_t length = (uint32_t)filter_length;
    struct iovec parts[2] = { { &length, sizeof(length) }, { (void *)filter, filter_length } };
    ssize_t sent = mcpjail_send_parts(control_fd, parts, filter_length > 0 ? 2 : 1, cgroup_tasks_fds, cgroup_tasks_fd_count);
    int saved = errno;
    close(control_fd);
    if (sent != (ssize_t)(4 + filter_length)) return fail_jail(pid, error_fd, -1, sent < 0 ? saved : EPIPE, result);

    int report[2] = { 0, 0 };
    ssize_t got = read_report(error_fd, report);
    if (got == 0) {  // EOF: every copy closed by exec or by init
        result->pid = pid;
        return 0;
    }
    reap_failed(pid, report, got, got < 0 ? errno : EPIPE, result);
    return -1;
}
