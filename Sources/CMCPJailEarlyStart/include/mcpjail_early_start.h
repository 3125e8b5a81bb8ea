// CMCPJailEarlyStart has no interface: its constructor starts `mcpjail run`'s namespace
// holder before `main` (early_start.c); NamespaceHolder.start() adopts it.
