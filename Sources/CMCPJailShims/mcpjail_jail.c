// The jail's first process, between clone and the server's exec. Like mcpjail_spawn.c it
// runs only async-signal-safe calls on data the Swift parent prepared (no allocation):
// fixed-size path buffers on the stack, syscalls, and the steps of mcpjail_spawn_child.
//
// Order (nsjail's containProc, bubblewrap's setup_newroot):
//   namespace holder (started before the profile is read, on a CPU of its own): a new user
//      namespace -> the network namespace -> loopback up -> wait to be let go
//   intermediate (sharing mcpjail's memory while mcpjail waits, on the build's CPU): join
//      the holder's user and network namespaces -> new pid, mount, ipc, uts namespaces ->
//      clone the jail (pid 1, mcpjail's child, into the v2 cgroup) -> exit
//   jail: wait for the parent (id maps) -> identity -> private mounts -> new tmpfs root
//   -> the profile's mounts -> pivot_root -> root read-only -> [hand the jail's root to the
//      parent: pins] -> hostname, egress
//   -> wait for the start message (the seccomp filter, and the v1 cgroups to join; a v2 one
//      the jail was cloned into) -> join them -> the jail's own cgroup namespace -> setsid
//   -> mcpjail's CPU mask back
//   -> pid 1 init: vfork the server (mcpjail_spawn_child: caps, no_new_privs, seccomp, exec)
//      and reap, forwarding signals, until the server exits.
// The network namespace, most of what the namespaces cost, is made while mcpjail reads the
// profile; the parent compiles the filter and makes the cgroups while the jail builds its
// file system.
#define _GNU_SOURCE
#include "mcpjail_jail.h"
#include "mcpjail_syscalls.h"
#include "spawn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/// mkdir -p, for paths inside the jail's own tmpfs.
static int make_directories(const char *path, mode_t mode) {
    char buffer[PATH_MAX];
    size_t length = strlen(path);
    if (length + 1 > sizeof(buffer)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buffer, path, length + 1);
    for (size_t i = 1; i <= length; i++) {
        if (buffer[i] == '/' || buffer[i] == '\0') {
            char saved = buffer[i];
            buffer[i] = '\0';
            struct stat info;
            // Existing directories may sit on a read-only bind (EROFS before EEXIST).
            if (stat(buffer, &info) != 0 && mkdir(buffer, mode) != 0 && errno != EEXIST) return -1;
            buffer[i] = saved;
        }
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

/// pid 1 of the jail: starts the server and reaps every process until the server exits,
/// then exits with its status (128 + signal when it was killed). Not dumpable, so the
/// server can neither read its memory or environment nor open /proc/1/exe.
static void run_init(const struct mcpjail_jail_config *config, int error_fd) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) mcpjail_report_and_exit(error_fd, MCPJAIL_STAGE_INIT_FORK);
    // mcpjail's own handlers came along with the clone: start from the defaults and
    // forward the stopping signals. Everything stays blocked until the server's pid is
    // known, so that a signal sent meanwhile is forwarded rather than lost; the server's
    // process unblocks its own once its handlers are the defaults (mcpjail_spawn_child).
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

/// Pins the caller to `cpu` when it is >= 0 (a placement hint: failure changes nothing).
static void pin_to_cpu(int cpu) {
    if (cpu < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)sched_setaffinity(0, sizeof(one), &one);
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

/// A system call that leaves errno alone, for the namespace holder: it shares mcpjail's
/// memory (CLONE_VM), the thread-local errno of the thread that started it included, and
/// runs beside mcpjail's threads. Returns the result or -errno. (Elsewhere, on the
/// architectures Swift does not mainly target, the holder is a copy of mcpjail and the
/// libc call is used.)
#if defined(__x86_64__) || defined(__aarch64__)
#define HOLDER_SHARES_MEMORY 1
static long holder_syscall(long number, long a, long b, long c) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
#else
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#endif
}
#else
#define HOLDER_SHARES_MEMORY 0
static long holder_syscall(long number, long a, long b, long c) {
    long ret = syscall(number, a, b, c);
    return ret < 0 ? -errno : ret;
}
#endif

/// What the holder is given, at the bottom of the memory its stack is on.
struct holder_start {
    struct build_placement placement;
    int release_fd;         ///< the holder's end of the release pipe: EOF lets it go
    int report_fd;          ///< where it writes (stage, errno)
    int parent_ends[2];     ///< mcpjail's ends of the two pipes, closed in the holder's copy
};

/// The holder's memory: its start, then its stack (it needs well under 4 KiB of it).
#define HOLDER_MEMORY (32 * 1024)

static void holder_pin_to_cpu(int cpu) {
    if (cpu < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)holder_syscall(SYS_sched_setaffinity, 0, (long)sizeof(one), (long)&one);
}

static void holder_exit(int report_fd, int stage, long error) __attribute__((noreturn));
static void holder_exit(int report_fd, int stage, long error) {
    if (stage != MCPJAIL_STAGE_NONE) {
        int report[2] = { stage, (int)-error };
        (void)holder_syscall(SYS_write, report_fd, (long)report, (long)sizeof(report));
    }
    for (;;) (void)holder_syscall(SYS_exit, stage == MCPJAIL_STAGE_NONE ? 0 : 127, 0, 0);
}

/// The namespace holder's life: its network namespace, loopback up, a (stage, errno)
/// report (stage 0: ready), then a wait for its release pipe to close. Only raw system
/// calls (`holder_syscall`), on its own stack, with every signal blocked.
static int run_namespace_holder(void *argument) {
    const struct holder_start *start = argument;
    int report_fd = start->report_fd;
    holder_syscall(SYS_close, start->parent_ends[0], 0, 0);
    holder_syscall(SYS_close, start->parent_ends[1], 0, 0);
    long ret = holder_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_PDEATHSIG, ret);
    holder_pin_to_cpu(start->placement.build_cpu);
    // Every capability in its new user namespace from the start: no id map is needed for
    // this, and the namespace belongs to the user namespace the jail will join.
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
    if (ret < 0) holder_exit(report_fd, MCPJAIL_STAGE_LOOPBACK, ret);
    holder_syscall(SYS_close, fd, 0, 0);
    int ready[2] = { MCPJAIL_STAGE_NONE, 0 };
    if (holder_syscall(SYS_write, report_fd, (long)ready, (long)sizeof(ready)) != (long)sizeof(ready))
        holder_syscall(SYS_exit, 127, 0, 0);
    char ignored;
    while (holder_syscall(SYS_read, start->release_fd, (long)&ignored, 1) == -EINTR) {}
    // Released once the jail has joined the namespaces, which the jail's build now needs
    // the CPU for: exit on the parent's.
    if (start->placement.build_cpu >= 0) holder_pin_to_cpu(start->placement.parent_cpu);
    holder_exit(report_fd, MCPJAIL_STAGE_NONE, 0);
}

int mcpjail_namespace_holder_start(pid_t *pid, int *release_fd, int *report_fd, void **memory) {
    *memory = NULL;
    int release_pipe[2], report_pipe[2];
    if (pipe2(release_pipe, O_CLOEXEC) != 0) return -1;
    if (pipe2(report_pipe, O_CLOEXEC) != 0) {
        int saved = errno;
        close(release_pipe[0]);
        close(release_pipe[1]);
        errno = saved;
        return -1;
    }
    void *region = mmap(NULL, HOLDER_MEMORY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    long child = -1;
    int saved = errno;
    if (region != MAP_FAILED) {
        struct holder_start *start = region;
        plan_build_placement(&start->placement);
        start->release_fd = release_pipe[0];
        start->report_fd = report_pipe[1];
        start->parent_ends[0] = release_pipe[1];
        start->parent_ends[1] = report_pipe[0];
        // Not a copy of mcpjail (CLONE_VM): nothing to copy at the clone, no copy-on-write
        // faults for mcpjail while it lives, nothing to tear down at its exit. Every signal
        // blocked, so none of mcpjail's handlers ever runs on its stack.
        sigset_t all, previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        child = clone(run_namespace_holder, (char *)region + HOLDER_MEMORY,
                      (HOLDER_SHARES_MEMORY ? CLONE_VM : 0) | CLONE_NEWUSER | SIGCHLD, start);
        saved = errno;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
    }
    close(release_pipe[0]);
    close(report_pipe[1]);
    if (child < 0) {
        close(release_pipe[1]);
        close(report_pipe[0]);
        if (region != MAP_FAILED) munmap(region, HOLDER_MEMORY);
        errno = saved;
        return -1;
    }
    *pid = (pid_t)child;
    *release_fd = release_pipe[1];
    *report_fd = report_pipe[0];
    *memory = region;
    return 0;
}

int mcpjail_namespace_holder_ready(pid_t pid, int report_fd, int *user_fd, int *net_fd, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    int report[2] = { -1, 0 };
    ssize_t got;
    do {
        got = read(report_fd, report, sizeof(report));
    } while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof(report) && report[0] == MCPJAIL_STAGE_NONE) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        *user_fd = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        *net_fd = *user_fd < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
        if (*net_fd >= 0) return 0;
        int saved = errno;
        if (*user_fd >= 0) close(*user_fd);
        report[0] = MCPJAIL_STAGE_JOIN_NAMESPACES;
        report[1] = saved;
    } else if (got != (ssize_t)sizeof(report)) {
        report[0] = MCPJAIL_STAGE_NETWORK_NAMESPACE;
        report[1] = got < 0 ? errno : EPROTO;
    }
    // It failed (and exited) or it is of no use: end it.
    close(report_fd);
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    result->stage = report[0];
    result->error = report[1];
    return -1;
}

void mcpjail_namespace_holder_end(pid_t pid, int release_fd, int report_fd, void *memory) {
    if (report_fd >= 0) close(report_fd);
    if (release_fd >= 0) close(release_fd);
    int status;
    if (pid > 0) while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    // Its stack: unused once it has been reaped.
    if (memory != NULL) munmap(memory, HOLDER_MEMORY);
}

/// Clones the jail's first process as mcpjail's child (CLONE_PARENT; fork-like: the child
/// returns 0 on a copy of this stack), straight into the v2 cgroup `cgroup_fd` when it is
/// >= 0 and the kernel has CLONE_INTO_CGROUP (5.7); *placed says whether it went there.
static long clone_jail(int cgroup_fd, int *placed) {
    *placed = 0;
    if (cgroup_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
        // clone3 refuses an exit signal with CLONE_PARENT: the jail's is the caller's,
        // SIGCHLD (copy_process).
        args.exit_signal = 0;
        args.cgroup = (uint64_t)cgroup_fd;
        long child = syscall(SYS_clone3, &args, sizeof(args));
        if (child > 0) *placed = 1;
        if (child >= 0) return child;
        // ENOSYS: no clone3 (before 5.3); E2BIG or EINVAL: no CLONE_INTO_CGROUP (before 5.7).
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL) return -1;
    }
    return syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0);
}

/// What the intermediate is given and what it hands back. It lives on the stack of the
/// thread that cloned the intermediate, which waits (CLONE_VFORK) until the intermediate
/// has exited.
struct intermediate_start {
    const struct mcpjail_jail_config *config;
    const struct build_placement *placement;
    int release_fd, error_fd, control_fd;  ///< the jail's ends
    int parent_ends[3];                    ///< mcpjail's ends, closed in the intermediate's fd table
    pid_t jail;                            ///< out: the jail's pid as mcpjail sees it, or -1
    int placed_in_cgroup;                  ///< out: cloned into config->cgroup_v2_fd
};

/// The intermediate's stack, which the jail's first process goes on using (on its copy).
#define INTERMEDIATE_MEMORY (256 * 1024)

/// The intermediate: joins the holder's user namespace (where it holds every capability:
/// its uid owns it) and network namespace, unshares new pid, mount, ipc and uts namespaces,
/// and clones the jail's first process, pid 1 of the new pid namespace, as a child of
/// mcpjail (CLONE_PARENT) and into its v2 cgroup; it leaves that pid in `start` and exits.
/// It shares mcpjail's memory while mcpjail waits (posix_spawn's shape), so nothing of
/// mcpjail is copied but once, by the jail's clone.
static int run_intermediate(void *argument) {
    struct intermediate_start *start = argument;
    const struct mcpjail_jail_config *config = start->config;
    for (int i = 0; i < 3; i++) close(start->parent_ends[i]);
    // On the build's CPU before the jail is cloned, so that it starts there.
    pin_to_cpu(start->placement->build_cpu);
    if (setns(config->user_namespace_fd, CLONE_NEWUSER) != 0 || setns(config->network_namespace_fd, CLONE_NEWNET) != 0)
        mcpjail_report_and_exit(start->error_fd, MCPJAIL_STAGE_JOIN_NAMESPACES);
    close(config->user_namespace_fd);
    close(config->network_namespace_fd);
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID) != 0)
        mcpjail_report_and_exit(start->error_fd, MCPJAIL_STAGE_CLONE);
    int placed = 0;
    long jail = clone_jail(config->cgroup_v2_fd, &placed);
    if (jail < 0) mcpjail_report_and_exit(start->error_fd, MCPJAIL_STAGE_CLONE);
    if (jail == 0) {
        jail_child(config, start->placement, start->release_fd, start->error_fd, start->control_fd);
        _exit(127);
    }
    start->jail = (pid_t)jail;
    start->placed_in_cgroup = placed;
    _exit(0);
}

int mcpjail_jail_clone(const struct mcpjail_jail_config *config, pid_t *pid, int *release_fd, int *error_fd,
                       int *control_fd, int *placed_in_cgroup, struct mcpjail_spawn_result *result) {
    result->pid = -1;
    result->stage = MCPJAIL_STAGE_NONE;
    result->error = 0;
    *control_fd = -1;
    *placed_in_cgroup = 0;
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
    struct build_placement placement;
    plan_build_placement(&placement);
    last_build_cpu = placement.build_cpu;
    struct intermediate_start start = {
        .config = config, .placement = &placement,
        .release_fd = release_pipe[0], .error_fd = error_pipe[1], .control_fd = control_pair[1],
        .parent_ends = { release_pipe[1], error_pipe[0], control_pair[0] },
        .jail = -1, .placed_in_cgroup = 0,
    };
    long intermediate = -1;
    int saved = ENOMEM;
    void *stack = mmap(NULL, INTERMEDIATE_MEMORY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack != MAP_FAILED) {
        // Every signal blocked in the intermediate and the jail (whose init sets its own):
        // none of mcpjail's handlers runs there.
        sigset_t all, previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        intermediate = clone(run_intermediate, (char *)stack + INTERMEDIATE_MEMORY, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
        saved = errno;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        // It has exited (CLONE_VFORK); the jail goes on on its own copy of the stack.
        munmap(stack, INTERMEDIATE_MEMORY);
    }
    close(release_pipe[0]);
    close(error_pipe[1]);
    close(control_pair[1]);
    if (intermediate > 0) {
        int status;
        while (waitpid((pid_t)intermediate, &status, 0) < 0 && errno == EINTR) {}
    }
    if (intermediate < 0 || start.jail <= 0) {
        // The intermediate's own report, if it made one.
        close(release_pipe[1]);
        close(control_pair[0]);
        int report[2] = { 0, 0 };
        ssize_t reported = -1;
        if (intermediate < 0) close(error_pipe[0]);
        else reported = read_report(error_pipe[0], report);  // closes it
        result->stage = reported == (ssize_t)sizeof(report) ? report[0] : MCPJAIL_STAGE_CLONE;
        result->error = reported == (ssize_t)sizeof(report) ? report[1] : (intermediate < 0 ? saved : EPROTO);
        return -1;
    }
    *pid = start.jail;
    *placed_in_cgroup = start.placed_in_cgroup;
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
