// The system SQLite (Debian: libsqlite3-dev), for the idempotency store.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast macro that Swift cannot import: these bind a copy of the bytes,
// so the caller's buffer may go away before the statement runs.
static inline int mcpjail_sqlite3_bind_blob_copy(sqlite3_stmt *statement, int index, const void *bytes, int count) {
    return sqlite3_bind_blob(statement, index, bytes, count, SQLITE_TRANSIENT);
}

static inline int mcpjail_sqlite3_bind_text_copy(sqlite3_stmt *statement, int index, const char *text, int count) {
    return sqlite3_bind_text(statement, index, text, count, SQLITE_TRANSIENT);
}
