import CSQLite
import Glibc
import MCPJailCore

/// One SQLite connection and its prepared statements, with every failure turned into an
/// ``MCPJailError`` that names the database file.
///
/// Not thread-safe: ``SQLiteIdempotencyStore`` keeps it behind a mutex.
final class SQLiteConnection {
    let path: String
    let busyTimeoutMilliseconds: Int32
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    /// Opens the existing file at `path` read-write (the caller creates it with the mode it wants).
    init(path: String, busyTimeoutMilliseconds: Int32) throws(MCPJailError) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        var db: OpaquePointer?
        // NOMUTEX: the store's mutex already serialises this connection.
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw Self.failure(path: path, code: rc, message: message, doing: "open it", busyTimeout: busyTimeoutMilliseconds)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs `sql` (one or more statements, no parameters, results ignored).
    func execute(_ sql: String, doing: String) throws(MCPJailError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure(rc, doing: doing) }
    }

    /// Runs one parameterless statement through the statement cache (for the hot path's
    /// `BEGIN IMMEDIATE` and `COMMIT`, which ``execute(_:doing:)`` would compile each time).
    func run(_ sql: String, doing: String) throws(MCPJailError) {
        let statement = try prepared(sql, doing: doing)
        defer { statement.reset() }
        try statement.run()
    }

    /// The first column of the first row of `sql`, as text (nil when no row or NULL).
    func text(_ sql: String, doing: String) throws(MCPJailError) -> String? {
        let statement = try prepared(sql, doing: doing)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.text(0)
    }

    /// The first column of the first row of `sql`, as an integer (0 when no row).
    func integer(_ sql: String, doing: String) throws(MCPJailError) -> Int64 {
        let statement = try prepared(sql, doing: doing)
        defer { statement.reset() }
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    /// The prepared statement for `sql`, compiled once per connection and reused.
    func prepared(_ sql: String, doing: String) throws(MCPJailError) -> Statement {
        if let cached = statements[sql] { return Statement(handle: cached, connection: self, doing: doing) }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, doing: doing) }
        statements[sql] = statement
        return Statement(handle: statement, connection: self, doing: doing)
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Whether a transaction is open (after a failure, to know whether to roll back).
    var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// The result code of the last failure this connection reported (SQLITE_OK before any).
    private(set) var lastFailureCode: Int32 = SQLITE_OK

    /// Whether the last failure came from another connection working on the file at the
    /// same time: its lock (SQLITE_BUSY, SQLITE_LOCKED), or the rollback journal it deleted
    /// first while both switched a new file to WAL (SQLITE_IOERR_DELETE_NOENT).
    var lastFailureWasAnotherConnection: Bool {
        [SQLITE_BUSY, SQLITE_LOCKED].contains(lastFailureCode & 0xFF) || lastFailureCode == Self.ioerrDeleteNoent
    }

    /// SQLITE_IOERR_DELETE_NOENT (a macro with a shift, which Swift does not import).
    static let ioerrDeleteNoent: Int32 = SQLITE_IOERR | (23 << 8)

    func forgetLastFailure() { lastFailureCode = SQLITE_OK }

    func failure(_ code: Int32, doing: String) -> MCPJailError {
        lastFailureCode = code
        return Self.failure(
            path: path, code: code, message: String(cString: sqlite3_errmsg(handle)), doing: doing,
            busyTimeout: busyTimeoutMilliseconds)
    }

    /// The person-facing error for SQLite result `code`: what the file is, what to do.
    static func failure(path: String, code: Int32, message: String, doing: String, busyTimeout: Int32) -> MCPJailError {
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return MCPJailError(
                .idempotencyStore,
                "idempotency database \(path) is locked: another process held it for more than \(busyTimeout) ms "
                    + "(while trying to \(doing))",
                hint: "another mcpjail process may be stuck holding it")
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return MCPJailError(
                .idempotencyStore, "idempotency database \(path) is corrupted: \(message) (while trying to \(doing))",
                hint: "move it aside and mcpjail creates a new one; the outcomes recorded in it are then forgotten")
        case SQLITE_FULL:
            return MCPJailError(.idempotencyStore, "idempotency database \(path): the disk is full (while trying to \(doing))")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH:
            return MCPJailError(
                .idempotencyStore, "cannot use idempotency database \(path): \(message) (while trying to \(doing))",
                hint: "check the ownership and mode of the file and of its directory")
        default:
            return MCPJailError(
                .idempotencyStore, "idempotency database \(path): \(message) (sqlite code \(code), while trying to \(doing))")
        }
    }
}

/// A prepared statement of a ``SQLiteConnection``: bind, step, read columns, reset.
struct Statement {
    private static let emptyText: StaticString = ""
    let handle: OpaquePointer
    let connection: SQLiteConnection
    let doing: String

    func bind(_ index: Int32, _ value: String) throws(MCPJailError) {
        var text = value
        let rc = text.withUTF8 { bytes in
            // A non-null pointer even for "": SQLite binds NULL for a null pointer.
            let start = UnsafeRawPointer(bytes.baseAddress ?? Self.emptyText.utf8Start)
            return mcpjail_sqlite3_bind_text_copy(handle, index, start.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        try check(rc)
    }

    func bind(_ index: Int32, _ value: String?) throws(MCPJailError) {
        guard let value else { return try check(sqlite3_bind_null(handle, index)) }
        try bind(index, value)
    }

    func bind(_ index: Int32, _ value: Int64) throws(MCPJailError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    func bind(_ index: Int32, blob: [UInt8]) throws(MCPJailError) {
        guard blob.count <= Int(Int32.max) else { throw connection.failure(SQLITE_TOOBIG, doing: doing) }
        let rc = blob.withUnsafeBytes { bytes in
            // A zero-length blob, not NULL: a stored empty result stays a result.
            mcpjail_sqlite3_bind_blob_copy(
                handle, index, bytes.baseAddress ?? UnsafeRawPointer(Self.emptyText.utf8Start), Int32(bytes.count))
        }
        try check(rc)
    }

    /// One step: true when a row is ready, false when the statement is done.
    func step() throws(MCPJailError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.failure(rc, doing: doing)
    }

    /// Steps to the end (for statements that return no rows).
    func run() throws(MCPJailError) {
        while try step() {}
    }

    /// Makes the statement reusable and drops the bound values (and their copies).
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func text(_ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8]? {
        if isNull(column) { return nil }
        // The pointer first, then the size (SQLite's documented order).
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func check(_ rc: Int32) throws(MCPJailError) {
        guard rc == SQLITE_OK else { throw connection.failure(rc, doing: doing) }
    }
}
