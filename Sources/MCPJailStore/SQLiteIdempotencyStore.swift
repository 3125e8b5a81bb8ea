import CSQLite
import Glibc
import MCPJailCore
import Synchronization

/// The idempotency store in one SQLite file per user (`idempotency.sqlite` in the state
/// directory, mode 0600, never visible in a jail), shared by every `mcpjail run` of the user.
///
/// Concurrency: the file is in WAL mode, so lookups never wait for writers. ``begin(_:owner:ttl:now:)``
/// decides and records inside `BEGIN IMMEDIATE`, which takes SQLite's single write lock first:
/// of all processes and threads racing on one key exactly one inserts the in-flight record and
/// gets `.execute`, and every other sees that record. A lock held longer than the busy timeout,
/// or a file that is not a sound database, is a thrown ``MCPJailError`` naming the file, never
/// a guess. Each instance has one connection behind a mutex; open one instance per process (or
/// several, they coordinate through the file like separate processes do).
///
/// Durability is chosen with ``Durability``; the default, ``Durability/powerLoss``, makes
/// every begin and result survive a power loss too, at one fsync per commit.
public final class SQLiteIdempotencyStore: IdempotencyStore {
    /// How far a commit (the in-flight record of `begin`, the result of `complete`) is
    /// guaranteed to survive once the call returns.
    ///
    /// Why the default is ``powerLoss``: only write calls reach the store, and a write call
    /// (an API request, a commit) takes milliseconds to seconds on its own; two fsyncs add
    /// about 0.15 ms to it on this project's VM (`mcpjail-idem-probe bench`: begin+complete
    /// p50 135-180 µs with FULL, 35 µs with NORMAL; one run with the disk busy gave 8 ms with
    /// FULL). Replays are reads and cost no fsync. ``processCrash`` is there for disks where
    /// fsync is too slow, for those who accept the power-loss window it leaves.
    public enum Durability: Sendable {
        /// `synchronous=FULL`: each commit fsyncs the WAL before returning, so it survives a
        /// power loss or kernel crash too: after a reboot an in-flight call is found (its
        /// owner's boot is gone, so `.outcomeUnknown`), never forgotten and re-executed. Costs
        /// one fsync per begin that executes and one per complete.
        case powerLoss
        /// `synchronous=NORMAL`: each commit is written to the WAL (the kernel's page cache)
        /// before returning, so it survives the SIGKILL or crash of any process, this one
        /// included. A power loss or kernel crash may roll back the commits the kernel had not
        /// yet written back (up to about half a minute; the file stays consistent): a call whose
        /// in-flight record was lost would run again if retried after the reboot, and a lost
        /// result makes its retry `outcome_unknown`.
        case processCrash
    }

    /// The database file.
    public let path: String
    /// The file name in the state directory.
    public static let fileName = "idempotency.sqlite"

    private let state: Mutex<State>
    private let liveness: any IdempotencyOwnerLiveness
    private let pruneInterval: Int

    private struct State {
        var connection: SQLiteConnection
        var beginsSincePrune = 0
    }

    /// The schema this code writes; a file with a newer one is refused, not misread.
    static let schemaVersion: Int64 = 1
    /// SQLite's application id field, "MJID": marks the file as this store's.
    static let applicationID: Int64 = 0x4D4A_4944

    /// Opens the database at `path`, creating it (mode 0600, missing parent directories 0700)
    /// and its schema when needed, and prunes expired records.
    ///
    /// - Parameters:
    ///   - busyTimeoutMilliseconds: how long to wait for another process's write lock before
    ///     failing with a "locked" error. Transactions here last well under a millisecond, so
    ///     waiting longer means a process is stuck.
    ///   - liveness: how to tell whether an in-flight call's owner still runs.
    ///   - pruneInterval: prune expired records every this many `begin`s (and at open).
    public init(
        path: String, durability: Durability = .powerLoss, busyTimeoutMilliseconds: Int32 = 2000,
        liveness: any IdempotencyOwnerLiveness = ProcessLiveness(), pruneInterval: Int = 256,
        now: Double = IdempotencyDefaults.now()
    ) throws(MCPJailError) {
        self.path = path
        self.liveness = liveness
        self.pruneInterval = max(1, pruneInterval)
        try Self.createFile(path)
        let connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try Self.configureWaitingForOthers(connection, durability: durability)
        state = Mutex(State(connection: connection))
        try prune(now: now)
    }

    /// The store in `directory` (``StateDirectory/idempotencyDatabase``).
    public convenience init(stateDirectory directory: StateDirectory, durability: Durability = .powerLoss)
        throws(MCPJailError)
    {
        try self.init(path: directory.idempotencyDatabase, durability: durability)
    }

    // MARK: - IdempotencyStore

    public func begin(_ call: IdempotentCall, owner: IdempotencyOwner, ttl: Double, now: Double) throws(MCPJailError)
        -> IdempotencyDecision
    {
        let nowMS = Self.milliseconds(now)
        return try state.withLock { (st: inout State) throws(MCPJailError) -> IdempotencyDecision in
            let db = st.connection
            st.beginsSincePrune += 1
            if st.beginsSincePrune >= pruneInterval {
                st.beginsSincePrune = 0
                try Self.deleteExpired(db, nowMS: nowMS)
            }
            // Without the write lock first: a completed, unknown or mismatching record never
            // changes back by itself, so those answers need no lock (a replay stays a read).
            let seen = try Self.fetch(db, key: call.key)
            let quick = decide(seen, fingerprint: call.fingerprint, nowMS: nowMS)
            switch quick {
            case .replay, .mismatch: return quick
            case .outcomeUnknown where seen?.record.state == .unknown: return quick
            default: break
            }

            try db.run("BEGIN IMMEDIATE", doing: "begin a call")
            do throws(MCPJailError) {
                let existing = try Self.fetch(db, key: call.key)
                let decision = decide(existing, fingerprint: call.fingerprint, nowMS: nowMS)
                switch decision {
                case .execute:
                    try Self.insertInFlight(db, call: call, owner: owner, nowMS: nowMS, ttlMS: Self.milliseconds(ttl))
                case .outcomeUnknown where existing?.record.state == .inFlight:
                    // The owner died mid-call: record it, so that it no longer depends on /proc.
                    let update = try db.prepared(
                        "UPDATE idempotency SET state = 'unknown', updated_ms = ?2 WHERE key = ?1 AND state = 'in_flight'",
                        doing: "mark a dead owner's call unknown")
                    defer { update.reset() }
                    try update.bind(1, call.key)
                    try update.bind(2, nowMS)
                    try update.run()
                default:
                    break
                }
                try db.run("COMMIT", doing: "record the start of a call")
                return decision
            } catch {
                if db.inTransaction { try? db.execute("ROLLBACK", doing: "roll back") }
                throw error
            }
        }
    }

    public func peek(key: String, fingerprint: String, now: Double) throws(MCPJailError) -> IdempotencyDecision {
        let nowMS = Self.milliseconds(now)
        return try state.withLock { (st: inout State) throws(MCPJailError) -> IdempotencyDecision in
            decide(try Self.fetch(st.connection, key: key), fingerprint: fingerprint, nowMS: nowMS)
        }
    }

    @discardableResult
    public func complete(key: String, owner: IdempotencyOwner, result: [UInt8], now: Double) throws(MCPJailError) -> Bool {
        try update(
            """
            UPDATE idempotency SET state = 'completed', result = ?2, updated_ms = ?3, expires_ms = ?3 + ttl_ms
            WHERE key = ?1 AND state IN ('in_flight', 'unknown') AND resolved = 0
              AND owner_boot = ?4 AND owner_pid = ?5 AND owner_start = ?6
            """, doing: "store a result"
        ) { (statement) throws(MCPJailError) in
            try statement.bind(1, key)
            try statement.bind(2, blob: result)
            try statement.bind(3, Self.milliseconds(now))
            try Self.bind(owner, to: statement, at: 4)
        }
    }

    @discardableResult
    public func markUnknown(key: String, owner: IdempotencyOwner, now: Double) throws(MCPJailError) -> Bool {
        try update(
            """
            UPDATE idempotency SET state = 'unknown', updated_ms = ?2
            WHERE key = ?1 AND state = 'in_flight' AND owner_boot = ?3 AND owner_pid = ?4 AND owner_start = ?5
            """, doing: "mark a call unknown"
        ) { (statement) throws(MCPJailError) in
            try statement.bind(1, key)
            try statement.bind(2, Self.milliseconds(now))
            try Self.bind(owner, to: statement, at: 3)
        }
    }

    public func record(key: String, now: Double) throws(MCPJailError) -> IdempotencyRecord? {
        let nowMS = Self.milliseconds(now)
        return try state.withLock { (st: inout State) throws(MCPJailError) -> IdempotencyRecord? in
            guard let found = try Self.fetch(st.connection, key: key),
                !found.record.isExpired(now: Double(nowMS) / 1000)
            else { return nil }
            return found.record
        }
    }

    public func list(now: Double) throws(MCPJailError) -> [IdempotencyRecord] {
        let nowMS = Self.milliseconds(now)
        return try state.withLock { (st: inout State) throws(MCPJailError) -> [IdempotencyRecord] in
            let statement = try st.connection.prepared(Self.selectUnexpired, doing: "list records")
            defer { statement.reset() }
            try statement.bind(1, nowMS)
            var records: [IdempotencyRecord] = []
            while try statement.step() { records.append(Self.row(statement).record) }
            return records
        }
    }

    @discardableResult
    public func resolve(key: String, result: [UInt8]?, now: Double) throws(MCPJailError) -> Bool {
        try update(
            """
            UPDATE idempotency SET state = 'completed', result = ?2, resolved = 1, updated_ms = ?3,
              expires_ms = ?3 + ttl_ms
            WHERE key = ?1 AND (expires_ms > ?3 OR state <> 'completed')
            """, doing: "resolve a call"
        ) { (statement) throws(MCPJailError) in
            try statement.bind(1, key)
            try statement.bind(2, blob: result ?? IdempotencyErrors.operatorResolvedResult)
            try statement.bind(3, Self.milliseconds(now))
        }
    }

    @discardableResult
    public func forget(key: String) throws(MCPJailError) -> Bool {
        try update("DELETE FROM idempotency WHERE key = ?1", doing: "forget a call") { (statement) throws(MCPJailError) in
            try statement.bind(1, key)
        }
    }

    @discardableResult
    public func prune(now: Double) throws(MCPJailError) -> Int {
        try state.withLock { (st: inout State) throws(MCPJailError) -> Int in
            st.beginsSincePrune = 0
            return try Self.deleteExpired(st.connection, nowMS: Self.milliseconds(now))
        }
    }

    // MARK: - Decisions

    private func decide(_ found: Row?, fingerprint: String, nowMS: Int64) -> IdempotencyDecision {
        // Times in whole milliseconds, as stored, so this agrees with the SQL comparisons.
        IdempotencyDecision.decide(
            existing: found?.record, fingerprint: fingerprint, now: Double(nowMS) / 1000,
            isAlive: liveness.isAlive)
    }

    // MARK: - SQL

    /// One UPDATE or DELETE in its own (autocommit) transaction; whether it changed a row.
    private func update(
        _ sql: String, doing: String, bind: (Statement) throws(MCPJailError) -> Void
    ) throws(MCPJailError) -> Bool {
        try state.withLock { (st: inout State) throws(MCPJailError) -> Bool in
            let statement = try st.connection.prepared(sql, doing: doing)
            defer { statement.reset() }
            try bind(statement)
            try statement.run()
            return st.connection.changes > 0
        }
    }

    private static func bind(_ owner: IdempotencyOwner, to statement: Statement, at index: Int32) throws(MCPJailError) {
        try statement.bind(index, owner.bootID)
        try statement.bind(index + 1, Int64(owner.pid))
        try statement.bind(index + 2, Int64(bitPattern: owner.startTime))
    }

    private static func insertInFlight(
        _ db: SQLiteConnection, call: IdempotentCall, owner: IdempotencyOwner, nowMS: Int64, ttlMS: Int64
    ) throws(MCPJailError) {
        let statement = try db.prepared(
            """
            INSERT OR REPLACE INTO idempotency
              (key, fingerprint, state, owner_boot, owner_pid, owner_start, subject, server, tool, supplied_key,
               created_ms, updated_ms, expires_ms, ttl_ms, resolved, result)
            VALUES (?1, ?2, 'in_flight', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10 + ?11, ?11, 0, NULL)
            """, doing: "record a call in flight")
        defer { statement.reset() }
        try statement.bind(1, call.key)
        try statement.bind(2, call.fingerprint)
        try bind(owner, to: statement, at: 3)
        try statement.bind(6, call.subject)
        try statement.bind(7, call.server)
        try statement.bind(8, call.tool)
        try statement.bind(9, call.suppliedKey)
        try statement.bind(10, nowMS)
        try statement.bind(11, ttlMS)
        try statement.run()
    }

    @discardableResult
    private static func deleteExpired(_ db: SQLiteConnection, nowMS: Int64) throws(MCPJailError) -> Int {
        let statement = try db.prepared("DELETE FROM idempotency WHERE expires_ms <= ?1 AND state = 'completed'", doing: "prune expired records")
        defer { statement.reset() }
        try statement.bind(1, nowMS)
        try statement.run()
        return db.changes
    }

    /// The columns of ``row(_:)``, in order; the result (or NULL) follows them.
    private static let columns = """
        key, fingerprint, state, owner_boot, owner_pid, owner_start, subject, server, tool, supplied_key,
        created_ms, updated_ms, expires_ms, resolved, length(result)
        """

    private static let selectKey = "SELECT \(columns), result FROM idempotency WHERE key = ?1"
    private static let selectUnexpired =
        "SELECT \(columns), NULL FROM idempotency WHERE expires_ms > ?1 OR state <> 'completed' ORDER BY created_ms, rowid"

    /// A stored row: the record and its expiry in milliseconds (for exact comparisons).
    private struct Row {
        var record: IdempotencyRecord
        var expiresMS: Int64
    }

    private static func fetch(_ db: SQLiteConnection, key: String) throws(MCPJailError) -> Row? {
        let statement = try db.prepared(selectKey, doing: "look up a key")
        defer { statement.reset() }
        try statement.bind(1, key)
        guard try statement.step() else { return nil }
        return row(statement)
    }

    private static func row(_ s: Statement) -> Row {
        let expiresMS = s.int64(12)
        let record = IdempotencyRecord(
            key: s.text(0) ?? "", fingerprint: s.text(1) ?? "",
            // An unrecognised state (a newer writer) is treated as unknown: never re-executed.
            state: s.text(2).flatMap(IdempotencyState.init(rawValue:)) ?? .unknown,
            owner: IdempotencyOwner(
                bootID: s.text(3) ?? "", pid: Int32(truncatingIfNeeded: s.int64(4)),
                startTime: UInt64(bitPattern: s.int64(5))),
            subject: s.text(6) ?? "", server: s.text(7) ?? "", tool: s.text(8) ?? "", suppliedKey: s.text(9),
            createdAt: Double(s.int64(10)) / 1000, updatedAt: Double(s.int64(11)) / 1000,
            expiresAt: Double(expiresMS) / 1000, resolvedByOperator: s.int64(13) != 0,
            resultSize: Int(s.int64(14)), result: s.blob(15))
        return Row(record: record, expiresMS: expiresMS)
    }

    static func milliseconds(_ seconds: Double) -> Int64 {
        guard seconds.isFinite else { return seconds > 0 ? Int64.max / 2 : 0 }
        return Int64(max(min((seconds * 1000).rounded(.down), 9e15), -9e15))
    }

    // MARK: - Opening

    /// Creates the file 0600 (SQLite would use 0644) before SQLite opens it; its `-wal` and
    /// `-shm` files take the same mode. Missing parent directories are made 0700.
    private static func createFile(_ path: String) throws(MCPJailError) {
        func fail(_ code: Int32) -> MCPJailError {
            MCPJailError(
                .idempotencyStore, "cannot create idempotency database \(path): \(String(cString: strerror(code)))")
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]), fail: fail)
        }
        var fd: Int32
        repeat { fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw fail(errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail(errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw fail(EINVAL) }
    }

    private static func makeDirectories(_ directory: String, fail: (Int32) -> MCPJailError) throws(MCPJailError) {
        var info = stat()
        if stat(directory, &info) == 0 { return }
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            try makeDirectories(String(directory[..<slash]), fail: fail)
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw fail(errno) }
    }

    /// ``configure(_:durability:)``, retried while other processes hold the file, up to the
    /// busy timeout. SQLite's busy handler does not cover all of opening: when two connections
    /// switch a new file to WAL together, SQLite fails one at once with SQLITE_BUSY rather than
    /// wait (deadlock avoidance), or with SQLITE_IOERR_DELETE_NOENT when the other deleted the
    /// rollback journal first, so two `mcpjail run` started together would otherwise fail.
    /// SQLITE_CANTOPEN is retried a few times only: once in a CI run the race test saw it
    /// from a file another opener was switching, but it is also what a state directory that
    /// cannot be written gives, which must fail at once, not after the busy timeout.
    private static func configureWaitingForOthers(_ db: SQLiteConnection, durability: Durability)
        throws(MCPJailError)
    {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(db.busyTimeoutMilliseconds))
        var pause: UInt32 = 1_000  // µs, doubled up to 32 ms
        var cannotOpenRetries = 3
        while true {
            db.forgetLastFailure()
            do {
                try configure(db, durability: durability)
                return
            } catch {
                let transientCannotOpen = db.lastFailureCode & 0xFF == SQLITE_CANTOPEN && cannotOpenRetries > 0
                if transientCannotOpen { cannotOpenRetries -= 1 }
                guard db.lastFailureWasAnotherConnection || transientCannotOpen, clock.now < deadline else { throw error }
                usleep(pause + UInt32.random(in: 0..<pause))  // jitter: racing openers drift apart
                pause = min(pause * 2, 32_000)
            }
        }
    }

    /// WAL, the durability level, and the schema (created once, under the write lock, so
    /// processes opening a new file together create it once).
    private static func configure(_ db: SQLiteConnection, durability: Durability) throws(MCPJailError) {
        // The first statement reads the header: a file that is not a database fails here.
        let mode = try db.text("PRAGMA journal_mode = WAL", doing: "switch to WAL mode")
        guard mode?.lowercased() == "wal" else {
            throw MCPJailError(
                .idempotencyStore,
                "idempotency database \(db.path): cannot use WAL mode (journal mode is \(mode ?? "unknown"))",
                hint: "the state directory must be on a local file system")
        }
        switch durability {
        case .powerLoss: try db.execute("PRAGMA synchronous = FULL", doing: "set durability")
        case .processCrash: try db.execute("PRAGMA synchronous = NORMAL", doing: "set durability")
        }
        // A corrupted file can still have a readable header: read the schema to find out.
        var version = try db.integer("PRAGMA user_version", doing: "read the schema version")
        if version == 0 {
            try db.execute("BEGIN IMMEDIATE", doing: "create the schema")
            do throws(MCPJailError) {
                version = try db.integer("PRAGMA user_version", doing: "read the schema version")
                if version == 0 {
                    let tables = try db.integer("SELECT count(*) FROM sqlite_master", doing: "read the schema")
                    guard tables == 0 else { throw notOurs(db.path) }
                    try db.execute(schema, doing: "create the schema")
                    version = schemaVersion
                }
                try db.execute("COMMIT", doing: "create the schema")
            } catch {
                if db.inTransaction { try? db.execute("ROLLBACK", doing: "roll back") }
                throw error
            }
        }
        guard try db.integer("PRAGMA application_id", doing: "read the application id") == applicationID else {
            throw notOurs(db.path)
        }
        guard version == schemaVersion else {
            throw MCPJailError(
                .idempotencyStore,
                "idempotency database \(db.path) has schema version \(version); this mcpjail knows \(schemaVersion)",
                hint: "a newer mcpjail wrote it: use that version")
        }
        // No integrity check here: it reads the whole file at every start. A damaged page is
        // reported (SQLITE_CORRUPT) by the first statement that reads it.
    }

    private static func notOurs(_ path: String) -> MCPJailError {
        MCPJailError(
            .idempotencyStore, "\(path) is an SQLite database, but not mcpjail's idempotency database",
            hint: "move it aside and mcpjail creates its own")
    }

    /// Version 1. `key` is the 64-hex-digit key of ``IdempotentCall``; times are milliseconds
    /// since the epoch; `result` is the tools/call result as one line of JSON.
    private static let schema = """
        CREATE TABLE idempotency (
          key          TEXT PRIMARY KEY NOT NULL,
          fingerprint  TEXT NOT NULL,
          state        TEXT NOT NULL CHECK (state IN ('in_flight', 'completed', 'unknown')),
          owner_boot   TEXT NOT NULL,
          owner_pid    INTEGER NOT NULL,
          owner_start  INTEGER NOT NULL,
          subject      TEXT NOT NULL,
          server       TEXT NOT NULL,
          tool         TEXT NOT NULL,
          supplied_key TEXT,
          created_ms   INTEGER NOT NULL,
          updated_ms   INTEGER NOT NULL,
          expires_ms   INTEGER NOT NULL,
          ttl_ms       INTEGER NOT NULL,
          resolved     INTEGER NOT NULL DEFAULT 0,
          result       BLOB
        );
        CREATE INDEX idempotency_expiry ON idempotency (expires_ms);
        PRAGMA application_id = \(applicationID);
        PRAGMA user_version = \(schemaVersion);
        """
}
