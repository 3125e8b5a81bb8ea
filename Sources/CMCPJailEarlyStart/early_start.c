// The namespace holder of `mcpjail run`, started before the Swift runtime and `main`.
//
// Linked into the mcpjail executable only. The jail's namespaces take the holder ~0.8 ms
// (the network namespace alone ~0.45 ms), longer than `run` takes to read the profile and
// reach the spawn, so every start waited for them. A constructor runs right after the
// binary's relocation, ~0.13 ms before `main`: the holder starts that much sooner.
// `NamespaceHolder.start()` adopts it; any other command ends it unused.
#include <string.h>

#include "mcpjail_jail.h"

// Priority 102: after mcpjail_reserve_fd_table (101) has grown the fd table. The holder
// shares the table (CLONE_FILES), and a shared table grows only after an RCU grace period
// (~14 ms measured when this ran first).
__attribute__((constructor(102))) static void mcpjail_start_holder_early(int argc, char **argv, char **envp) {
    (void)envp;
    // glibc passes a constructor main's arguments: only `mcpjail run ...` needs a jail.
    if (argc >= 3 && argv != NULL && argv[1] != NULL && strcmp(argv[1], "run") == 0) {
        (void)mcpjail_namespace_holder_start_early();
    }
}
