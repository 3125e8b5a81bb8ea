// Shared between mcpjail_spawn.c and mcpjail_jail.c; not part of the module's API.
#ifndef MCPJAIL_SPAWN_INTERNAL_H
#define MCPJAIL_SPAWN_INTERNAL_H

#include "mcpjail_spawn.h"

/// Writes (stage, errno) to the error pipe and exits 127.
void mcpjail_report_and_exit(int error_fd, int stage) __attribute__((noreturn));

/// The steps of mcpjail_spawn's child, from setsid to execve; never returns.
void mcpjail_spawn_child(const struct mcpjail_spawn_config *config, int error_fd, pid_t parent) __attribute__((noreturn));

#endif
