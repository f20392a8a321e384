import Foundation
import GRDB
import SluiceModel
import SluiceStorage

/// The run store on a SQLite file (WAL): runs, step runs, every transition and step outputs,
/// with versioned migrations applied when it opens.
public final class SQLiteRunStore: RunStore {
    /// Shared with the stores that keep their tables here (`RunStoreDatabaseShare`).
    let database: DatabasePool
    /// The executor's many small writes (transitions, outputs), committed together.
    private let grouped: GroupedWrites

    /// Opens (creating if needed) the store at `path` and migrates it to the current version.
    public init(path: String) throws {
        // The store's folder is the project's state folder (`.sluice/`): owner-only files
        // unless it is shared with a group.
        let files = DataFiles(root: URL(fileURLWithPath: (path as NSString).deletingLastPathComponent))
        try files.createFolder(files.root)
        try files.createFile(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // Opening a new file switches it to WAL, and SQLite answers a second connection doing
        // the same at that moment "database is locked" at once, without waiting for the busy
        // timeout; and processes that open a new store together would each find the tables
        // missing and create them. So opening and migrating take turns across processes, by a
        // lock file beside the database; a store that is up to date migrates nothing.
        database = try FileLock.withExclusive(path + "-open.lock", code: "run_store_unavailable", mode: files.fileMode) {
            let database = try DatabasePool(path: path, configuration: configuration)
            if try !database.read({ try Self.migrator.hasCompletedMigrations($0) }) {
                try Self.migrator.migrate(database)
            }
            return database
        }
        grouped = GroupedWrites(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: runs, steps, transitions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE run (
                        id TEXT PRIMARY KEY,
                        pipeline TEXT NOT NULL,
                        org TEXT NOT NULL,
                        logical_date TEXT NOT NULL,
                        trigger TEXT NOT NULL,
                        trigger_key TEXT,
                        request_id TEXT,
                        params TEXT NOT NULL,
                        state TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        heartbeat_at REAL,
                        resume_of TEXT REFERENCES run(id)
                    );
                    -- One run per trigger: a unique key, not a count-then-insert.
                    CREATE UNIQUE INDEX run_trigger ON run (pipeline, org, trigger_key) WHERE trigger_key IS NOT NULL;
                    CREATE INDEX run_pipeline ON run (pipeline, org, created_at);
                    CREATE INDEX run_state ON run (state, heartbeat_at);

                    CREATE TABLE step_run (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        step_id TEXT NOT NULL,
                        processor TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        error_code TEXT,
                        started_at REAL,
                        finished_at REAL,
                        outputs TEXT NOT NULL DEFAULT '{}',
                        PRIMARY KEY (run_id, step_id)
                    );

                    CREATE TABLE transition (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        step_id TEXT,
                        attempt INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        at REAL NOT NULL
                    );
                    CREATE INDEX transition_run ON transition (run_id, seq);
                    """)
        }
        migrator.registerMigration("v2: data test results") { db in
            try db.execute(
                sql: """
                    CREATE TABLE check_result (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        step_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        table_name TEXT NOT NULL,
                        passed INTEGER NOT NULL,
                        severity TEXT NOT NULL,
                        observed TEXT NOT NULL,
                        PRIMARY KEY (run_id, step_id, name)
                    )
                    """)
        }
        migrator.registerMigration("v3: quarantined rows") { db in
            try db.execute(
                sql: """
                    CREATE TABLE quarantined_row (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        step_id TEXT NOT NULL,
                        file TEXT NOT NULL,
                        line INTEGER NOT NULL,
                        column_number INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        raw TEXT NOT NULL
                    );
                    CREATE INDEX quarantined_row_run ON quarantined_row (run_id, step_id, line);
                    """)
        }
        migrator.registerMigration("v4: credentials and their audit log") { db in
            try SQLiteCredentialStore.createTables(db)
        }
        migrator.registerMigration("v5: API tokens") { db in
            try SQLiteAPITokenStore.createTables(db)
        }
        migrator.registerMigration("v6: webhook delivery audit") { db in
            try SQLiteWebhookAuditStore.createTables(db)
        }
        migrator.registerMigration("v7: a lease per run") { db in
            try db.execute(sql: "ALTER TABLE run ADD COLUMN lease_seconds REAL")
        }
        migrator.registerMigration("v8: step records") { db in
            // What steps keep with their run, one table for every processor; the two tables
            // that held data test results and quarantined rows move into it, in their order.
            try db.execute(
                sql: """
                    CREATE TABLE step_record (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        step_id TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        record_key TEXT,
                        body TEXT NOT NULL
                    );
                    CREATE INDEX step_record_run ON step_record (run_id, kind);
                    CREATE UNIQUE INDEX step_record_key ON step_record (run_id, step_id, kind, record_key) WHERE record_key IS NOT NULL;
                    INSERT INTO step_record (run_id, step_id, kind, record_key, body)
                        SELECT run_id, step_id, 'check_result', name,
                               json_object('runID', run_id, 'stepID', step_id, 'name', name, 'table', table_name,
                                           'passed', json(CASE WHEN passed THEN 'true' ELSE 'false' END),
                                           'severity', severity, 'observed', observed)
                        FROM check_result ORDER BY rowid;
                    INSERT INTO step_record (run_id, step_id, kind, record_key, body)
                        SELECT run_id, step_id, 'quarantined_row', NULL,
                               json_object('runID', run_id, 'stepID', step_id, 'file', file, 'line', line,
                                           'column', column_number, 'reason', reason, 'raw', raw)
                        FROM quarantined_row ORDER BY rowid;
                    DROP TABLE check_result;
                    DROP TABLE quarantined_row;
                    """)
        }
        migrator.registerMigration("v9: runs left for workers, and their leases") { db in
            // `worker` names the lease's holder (kept after a release, which clears the expiry
            // instead, so the next claim can say whom it took the run from).
            try db.execute(
                sql: """
                    ALTER TABLE run ADD COLUMN for_workers INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE run ADD COLUMN worker TEXT;
                    ALTER TABLE run ADD COLUMN lease_expires_at REAL;
                    CREATE INDEX run_claimable ON run (created_at, id) WHERE for_workers AND state IN ('pending', 'running');
                    """)
        }
        migrator.registerMigration("v10: pipeline versions and plans") { db in
            // The version's hash in a column of its own (runs of one version can be found by
            // it), its files' hashes and the plan as JSON. NULL for the runs stored before.
            try db.execute(
                sql: """
                    ALTER TABLE run ADD COLUMN version TEXT;
                    ALTER TABLE run ADD COLUMN version_files TEXT;
                    ALTER TABLE run ADD COLUMN plan TEXT;
                    """)
        }
        return migrator
    }

    public func saveStepRecords(_ runID: String, step: String, kind: String, _ records: [StepRecordBody]) async throws {
        guard !records.isEmpty else { return }
        try await database.write { db in
            let keyed = try db.cachedStatement(
                sql: """
                    INSERT INTO step_record (run_id, step_id, kind, record_key, body) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (run_id, step_id, kind, record_key) WHERE record_key IS NOT NULL DO UPDATE SET body = excluded.body
                    """)
            let added = try db.cachedStatement(sql: "INSERT INTO step_record (run_id, step_id, kind, record_key, body) VALUES (?, ?, ?, NULL, ?)")
            for record in records {
                let body = String(decoding: record.json, as: UTF8.self)
                if let key = record.key {
                    try keyed.execute(arguments: [runID, step, kind, key, body])
                } else {
                    try added.execute(arguments: [runID, step, kind, body])
                }
            }
        }
    }

    public func stepRecords(of runID: String, kind: String) async throws -> [StepRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT step_id, record_key, body FROM step_record WHERE run_id = ? AND kind = ? ORDER BY rowid",
                arguments: [runID, kind]
            ).map { row in
                StepRecord(stepID: row["step_id"], key: row["record_key"], json: Data((row["body"] as String).utf8))
            }
        }
    }

    public func stepRecords(org: String, kind: String, since: Date) async throws -> [StepRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.step_id, r.record_key, r.body FROM step_record r JOIN run ON run.id = r.run_id
                    WHERE run.org = ? AND r.kind = ? AND run.created_at >= ? ORDER BY r.rowid
                    """,
                arguments: [org, kind, since.timeIntervalSince1970]
            ).map { row in
                StepRecord(stepID: row["step_id"], key: row["record_key"], json: Data((row["body"] as String).utf8))
            }
        }
    }

    // MARK: Writing

    public func createRun(_ run: RunRecord, steps: [StepRunRecord], activeLimit: Int?, orgActiveLimit: Int?) async throws -> RunCreation {
        // One write transaction (SQLite takes the write lock first), so the count and the
        // insert can't interleave with another process's.
        try await database.write { db in
            if let key = run.triggerKey,
                let existing = try Row.fetchOne(
                    db, sql: "SELECT * FROM run WHERE pipeline = ? AND org = ? AND trigger_key = ?",
                    arguments: [run.pipeline, run.org, key])
            {
                return .existing(try Self.decodeRun(existing))
            }
            if let activeLimit {
                let active =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT count(*) FROM run WHERE pipeline = ? AND org = ? AND state IN ('pending', 'running')
                            """, arguments: [run.pipeline, run.org]) ?? 0
                if active >= activeLimit { return .limited(active: active) }
            }
            if let orgActiveLimit {
                let active =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT count(*) FROM run WHERE org = ? AND state IN ('pending', 'running')
                            """, arguments: [run.org]) ?? 0
                if active >= orgActiveLimit { return .orgLimited(active: active) }
            }
            let params = String(decoding: try JSONEncoder().encode(run.params), as: UTF8.self)
            try db.execute(
                sql: """
                    INSERT INTO run (id, pipeline, org, logical_date, trigger, trigger_key, request_id, params, state, reason,
                                     created_at, updated_at, resume_of, lease_seconds, for_workers, version, version_files, plan)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """,
                arguments: [
                    run.id, run.pipeline, run.org, run.logicalDate, run.trigger.rawValue, run.triggerKey,
                    run.requestID, params, run.state.rawValue, run.reason,
                    run.createdAt.timeIntervalSince1970, run.createdAt.timeIntervalSince1970, run.resumeOf,
                    run.lease?.timeInterval, run.forWorkers, run.version?.hash, try run.version.map { try Self.encode($0.files) },
                    run.plan,
                ])
            guard db.changesCount == 1 else {
                // The unique key on the trigger holds even if the lookup above missed it.
                guard let key = run.triggerKey,
                    let existing = try Row.fetchOne(
                        db, sql: "SELECT * FROM run WHERE pipeline = ? AND org = ? AND trigger_key = ?",
                        arguments: [run.pipeline, run.org, key])
                else {
                    throw DatabaseError(resultCode: .SQLITE_CONSTRAINT, message: "run id \(run.id) exists already")
                }
                return .existing(try Self.decodeRun(existing))
            }
            for step in steps {
                try db.execute(
                    sql: """
                        INSERT INTO step_run (run_id, step_id, processor, state, attempt, reason, outputs)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        run.id, step.stepID, step.processor, step.state.rawValue, step.attempt, step.reason,
                        try Self.encode(step.outputs),
                    ])
            }
            try Self.insertTransition(db, runID: run.id, step: nil, attempt: 0, state: run.state, reason: run.reason, at: run.createdAt)
            return .created(run)
        }
    }

    public func recordRun(_ runID: String, state: RunState, reason: String, at: Date) async throws {
        try await grouped.write { db in
            try db.execute(
                sql: "UPDATE run SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                arguments: [state.rawValue, reason, at.timeIntervalSince1970, runID])
            try Self.insertTransition(db, runID: runID, step: nil, attempt: 0, state: state, reason: reason, at: at)
        }
    }

    public func recordStep(
        _ runID: String, step: String, state: RunState, attempt: Int, reason: String,
        errorCode: String?, at: Date
    ) async throws {
        try await grouped.write { db in
            let time = at.timeIntervalSince1970
            try db.cachedStatement(
                sql: """
                    UPDATE step_run SET state = ?, attempt = ?, reason = ?, error_code = ?,
                        started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,
                        finished_at = CASE WHEN ? IN ('succeeded', 'failed', 'skipped', 'cancelled', 'dead_lettered') THEN ? ELSE NULL END
                    WHERE run_id = ? AND step_id = ?
                    """
            ).execute(arguments: [state.rawValue, attempt, reason, errorCode, state.rawValue, time, state.rawValue, time, runID, step])
            try Self.insertTransition(db, runID: runID, step: step, attempt: attempt, state: state, reason: reason, at: at)
        }
    }

    public func saveOutputs(_ runID: String, step: String, outputs: [String: ExpressionValue]) async throws {
        try await grouped.write { db in
            try db.cachedStatement(sql: "UPDATE step_run SET outputs = ? WHERE run_id = ? AND step_id = ?")
                .execute(arguments: [try Self.encode(outputs), runID, step])
        }
    }

    @discardableResult
    public func heartbeat(_ runID: String, at: Date) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE run SET heartbeat_at = ? WHERE id = ? AND state IN ('pending', 'running')",
                arguments: [at.timeIntervalSince1970, runID])
            return db.changesCount > 0
        }
    }

    public func abandonRuns(heartbeatBefore cutoff: Date, reason: String, at: Date) async throws -> [RunRecord] {
        try await database.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM run WHERE state IN ('pending', 'running') AND NOT for_workers
                        AND coalesce(heartbeat_at, created_at) < ?
                    """, arguments: [cutoff.timeIntervalSince1970])
            return try Self.abandon(db, rows.map(Self.decodeRun), at: at) { _ in reason }
        }
    }

    public func abandonRuns(at now: Date, fallbackLease: Duration, reason: @escaping @Sendable (Duration) -> String) async throws -> [RunRecord] {
        try await database.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM run WHERE state IN ('pending', 'running') AND NOT for_workers
                        AND coalesce(heartbeat_at, created_at) < ? - coalesce(lease_seconds, ?)
                    """, arguments: [now.timeIntervalSince1970, fallbackLease.timeInterval])
            return try Self.abandon(db, rows.map(Self.decodeRun), at: now) { run in reason(run.lease ?? fallbackLease) }
        }
    }

    // MARK: Workers

    public func claimRun(worker: String, lease: Duration, orgs: Set<String>?, at now: Date) async throws -> RunClaim? {
        let time = now.timeIntervalSince1970
        let orgList = orgs.map { Array($0).sorted() }
        // One IMMEDIATE write transaction: SQLite's write lock makes claimers in every process
        // take turns, so the run found free is still free when it is taken.
        return try await database.write { db in
            var sql = """
                SELECT * FROM run WHERE for_workers AND state IN ('pending', 'running')
                    AND (worker IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?)
                    AND coalesce(worker, '') <> ?
                """
            // A worker never takes a run over from itself: one whose lease lapsed while it was
            // starting it is still its own.
            var arguments: StatementArguments = [time, worker]
            if let orgList {
                guard !orgList.isEmpty else { return nil }
                sql += " AND org IN (\(databaseQuestionMarks(count: orgList.count)))"
                arguments += StatementArguments(orgList)
            }
            sql += " ORDER BY created_at, id LIMIT 1"
            guard let row = try Row.fetchOne(db, sql: sql, arguments: arguments) else { return nil }
            let previous = try Self.decodeRun(row)
            let reason = RunClaim.reason(worker: worker, previous: previous, at: now)
            let expires = time + lease.timeInterval
            try db.execute(
                sql: """
                    UPDATE run SET worker = ?, lease_expires_at = ?, heartbeat_at = ?, lease_seconds = ?, reason = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [worker, expires, time, lease.timeInterval, reason, time, previous.id])
            try Self.insertTransition(db, runID: previous.id, step: nil, attempt: 0, state: previous.state, reason: reason, at: now)
            return RunClaim(claiming: previous, worker: worker, until: Date(timeIntervalSince1970: expires), lease: lease, reason: reason, at: now)
        }
    }

    @discardableResult
    public func renewLease(_ runID: String, worker: String, lease: Duration, at now: Date) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE run SET lease_expires_at = ?, heartbeat_at = ?
                    WHERE id = ? AND worker = ? AND lease_expires_at IS NOT NULL AND state IN ('pending', 'running')
                    """,
                arguments: [now.timeIntervalSince1970 + lease.timeInterval, now.timeIntervalSince1970, runID, worker])
            return db.changesCount > 0
        }
    }

    @discardableResult
    public func releaseRun(_ runID: String, worker: String, reason: String, at now: Date) async throws -> Bool {
        try await database.write { db in
            guard
                let state = try String.fetchOne(
                    db,
                    sql: """
                        SELECT state FROM run
                        WHERE id = ? AND worker = ? AND lease_expires_at IS NOT NULL AND state IN ('pending', 'running')
                        """, arguments: [runID, worker]
                ).flatMap(RunState.init(rawValue:))
            else { return false }
            let reason = RunClaim.releaseReason(worker: worker, reason)
            try db.execute(
                sql: "UPDATE run SET lease_expires_at = NULL, reason = ?, updated_at = ? WHERE id = ?",
                arguments: [reason, now.timeIntervalSince1970, runID])
            try Self.insertTransition(db, runID: runID, step: nil, attempt: 0, state: state, reason: reason, at: now)
            return true
        }
    }

    /// Marks each run failed (abandoned) with its reason, and its unfinished steps with it.
    private static func abandon(_ db: Database, _ runs: [RunRecord], at: Date, reason: (RunRecord) -> String) throws -> [RunRecord] {
        var abandoned: [RunRecord] = []
        for var run in runs {
            let reason = reason(run)
            let unfinished = try String.fetchAll(
                db,
                sql: """
                    SELECT step_id FROM step_run WHERE run_id = ? AND state IN ('pending', 'running', 'retrying', 'timed_out')
                    """, arguments: [run.id])
            for step in unfinished {
                let attempt =
                    try Int.fetchOne(
                        db, sql: "SELECT attempt FROM step_run WHERE run_id = ? AND step_id = ?",
                        arguments: [run.id, step]) ?? 0
                let stepReason = "abandoned: \(reason)"
                try db.execute(
                    sql: """
                        UPDATE step_run SET state = 'failed', reason = ?, error_code = 'abandoned', finished_at = ?
                        WHERE run_id = ? AND step_id = ?
                        """, arguments: [stepReason, at.timeIntervalSince1970, run.id, step])
                try Self.insertTransition(db, runID: run.id, step: step, attempt: attempt, state: .failed, reason: stepReason, at: at)
            }
            try db.execute(
                sql: "UPDATE run SET state = 'failed', reason = ?, updated_at = ? WHERE id = ?",
                arguments: ["abandoned: \(reason)", at.timeIntervalSince1970, run.id])
            try Self.insertTransition(db, runID: run.id, step: nil, attempt: 0, state: .failed, reason: "abandoned: \(reason)", at: at)
            run.state = .failed
            run.reason = "abandoned: \(reason)"
            abandoned.append(run)
        }
        return abandoned
    }

    // MARK: Reading

    public func run(_ id: String) async throws -> RunRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).map(Self.decodeRun)
        }
    }

    public func run(pipeline: String, org: String, triggerKey: String) async throws -> RunRecord? {
        try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM run WHERE pipeline = ? AND org = ? AND trigger_key = ?",
                arguments: [pipeline, org, triggerKey]
            ).map(Self.decodeRun)
        }
    }

    public func steps(of runID: String) async throws -> [StepRunRecord] {
        try await database.read { db in try Self.fetchSteps(db, runID: runID) }
    }

    public func runWithSteps(_ id: String, org: String?) async throws -> (run: RunRecord, steps: [StepRunRecord])? {
        try await database.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM run WHERE id = ? AND (? IS NULL OR org = ?)",
                    arguments: [id, org, org])
            else { return nil }
            return (try Self.decodeRun(row), try Self.fetchSteps(db, runID: id))
        }
    }

    private static func fetchSteps(_ db: Database, runID: String) throws -> [StepRunRecord] {
        let decoder = JSONDecoder()
        return try Row.fetchAll(db, sql: "SELECT * FROM step_run WHERE run_id = ? ORDER BY rowid", arguments: [runID]).map { row in
            StepRunRecord(
                runID: row["run_id"], stepID: row["step_id"], processor: row["processor"],
                state: RunState(rawValue: row["state"]) ?? .pending, attempt: row["attempt"], reason: row["reason"],
                errorCode: row["error_code"],
                startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                outputs: try decoder.decode([String: ExpressionValue].self, from: Data((row["outputs"] as String).utf8)))
        }
    }

    public func transitions(of runID: String) async throws -> [Transition] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM transition WHERE run_id = ? ORDER BY seq", arguments: [runID]).map { row in
                Transition(
                    stepID: row["step_id"], attempt: row["attempt"], state: RunState(rawValue: row["state"]) ?? .pending,
                    reason: row["reason"], at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }

    public func runs(pipeline: String?, org: String?, limit: Int, after cursor: RunCursor?) async throws -> [RunRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM run WHERE (?1 IS NULL OR pipeline = ?1) AND (?2 IS NULL OR org = ?2)
                        AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
                    ORDER BY created_at DESC, id DESC LIMIT ?3
                    """, arguments: [pipeline, org, limit, cursor?.createdAt.timeIntervalSince1970, cursor?.id]
            ).map(Self.decodeRun)
        }
    }

    public func activeRuns() async throws -> [RunRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run WHERE state IN ('pending', 'running') ORDER BY created_at, id")
                .map(Self.decodeRun)
        }
    }

    public func runCounts() async throws -> [RunState: Int] {
        try await database.read { db in
            var counts: [RunState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS runs FROM run GROUP BY state") {
                if let state = RunState(rawValue: row["state"]) { counts[state] = row["runs"] }
            }
            return counts
        }
    }

    // MARK: Rows

    private static func insertTransition(
        _ db: Database, runID: String, step: String?, attempt: Int, state: RunState,
        reason: String, at: Date
    ) throws {
        // Cached: the executor records thousands of these, and preparing one costs more than running it.
        try db.cachedStatement(sql: "INSERT INTO transition (run_id, step_id, attempt, state, reason, at) VALUES (?, ?, ?, ?, ?, ?)")
            .execute(arguments: [runID, step, attempt, state.rawValue, reason, at.timeIntervalSince1970])
    }

    private static func encode(_ files: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(files), as: UTF8.self)
    }

    private static func encode(_ outputs: [String: ExpressionValue]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(outputs), as: UTF8.self)
    }

    private static func decodeRun(_ row: Row) throws -> RunRecord {
        var run = RunRecord(
            id: row["id"], pipeline: row["pipeline"], org: row["org"], logicalDate: row["logical_date"],
            trigger: RunTrigger(rawValue: row["trigger"]) ?? .cli, triggerKey: row["trigger_key"], requestID: row["request_id"],
            params: try JSONDecoder().decode([String: String].self, from: Data((row["params"] as String).utf8)),
            state: RunState(rawValue: row["state"]) ?? .pending, reason: row["reason"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), resumeOf: row["resume_of"])
        run.updatedAt = Date(timeIntervalSince1970: row["updated_at"])
        run.heartbeatAt = (row["heartbeat_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        run.lease = (row["lease_seconds"] as Double?).map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        run.forWorkers = row["for_workers"]
        run.worker = row["worker"]
        run.leaseExpiresAt = (row["lease_expires_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        if let hash = row["version"] as String? {
            let files = try (row["version_files"] as String?).map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
            run.version = PipelineVersion(hash: hash, files: files ?? [:])
        }
        run.plan = row["plan"]
        return run
    }
}
