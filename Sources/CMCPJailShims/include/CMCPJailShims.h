// The module's headers: spawning (fork/exec), the jail (clone/namespaces) and thin syscall wrappers.
#include "mcpjail_spawn.h"
#include "mcpjail_jail.h"
#include "mcpjail_syscalls.h"
