// Shared between mcpjail_spawn.c and mcpjail_jail.c; not part of the module's API.
#ifndef MCPJAIL_SPAWN_INTERNAL_H
#define MCPJAIL_SPAWN_INTERNAL_H

#include "mcpjail_spawn.h"

/// Writes (stage, errno) to the error pipe and exits 127.
void mcpjail_report_and_exit(int error_fd, int stage) __attribute__((noreturn));

/// Drops every capability from the bounding set (EPERM where this process may not change
/// it, that is where it holds none to drop; EINVAL past the kernel's last capability, where
/// the loop ends) and notes it in mcpjail_bounding_set_dropped, which a child sharing the
/// caller's memory (the jail's server, cloned by init with CLONE_VM) reads to skip the
/// ~40 calls. 0, or -1/errno.
int mcpjail_drop_bounding_set(void);
extern int mcpjail_bounding_set_dropped;

/// The steps of mcpjail_spawn's child, from setsid to execve; never returns.
void mcpjail_spawn_child(const struct mcpjail_spawn_config *config, int error_fd, pid_t parent) __attribute__((noreturn));

#endif
