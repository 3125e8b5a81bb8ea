// Thin wrappers for calls Swift cannot make itself; see mcpjail_syscalls.h.
#define _GNU_SOURCE
#include "mcpjail_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static int signal_pipe_fd = -1;

static void signal_to_pipe(int sig) {
    int saved = errno;
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

int mcpjail_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int mcpjail_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

void *mcpjail_mremap(void *address, size_t old_size, size_t new_size) {
    return mremap(address, old_size, new_size, MREMAP_MAYMOVE);
}

int mcpjail_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}
