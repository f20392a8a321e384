import Foundation
import Logging
import PostgresNIO
import SluiceModel
import SluiceStorage

/// The run store on PostgreSQL: runs, step runs, every transition, step outputs and records,
/// heartbeats and leases, in a schema of their own (`sluice` unless told otherwise), with the
/// same behaviour as `SQLiteRunStore` so that any number of processes on any number of
/// machines can share it. Migrated when it opens (`PostgresMigrations`).
public final class PostgresRunStore: RunStore {
    let pool: PostgresPool
    /// The schema, as a quoted identifier.
    let schema: String
    /// The schema's name as given (the advisory locks' key).
    let schemaName: String
    private let logger: Logger
    /// How many schema versions opening this store applied (0 when another process had).
    public let migrationsApplied: Int

    /// The advisory lock class of run creation with a limit (see `createRun`).
    static let creationLockClass: Int32 = PostgresMigrations.lockClass + 1

    /// Opens the store in `schema` on the pool's server, creating and migrating the schema if
    /// needed.
    public init(pool: PostgresPool, schema: String = "sluice") async throws {
        self.pool = pool
        self.schemaName = schema
        self.schema = PostgresMigrations.quote(schema)
        self.logger = pool.logger
        self.migrationsApplied = try await PostgresMigrations.migrate(pool, schema: schema)
    }

    /// `table` qualified by the store's schema.
    private func table(_ name: String) -> String { "\(schema).\(name)" }

    private static let runColumns =
        "id, pipeline, org, logical_date, trigger, trigger_key, request_id, params, state, reason, created_at, updated_at, heartbeat_at, resume_of, lease_seconds, for_workers, worker, lease_expires_at, version, version_files, plan"
    private static let stepColumns = "run_id, step_id, processor, state, attempt, reason, error_code, started_at, finished_at, outputs"
    private static let activeStates = "('pending', 'running')"

    // MARK: Writing

    public func createRun(_ run: RunRecord, steps: [StepRunRecord], activeLimit: Int?, orgActiveLimit: Int?) async throws -> RunCreation {
        let params = String(decoding: try JSONEncoder().encode(run.params), as: UTF8.self)
        let outputs = try steps.map { try Self.encode($0.outputs) }
        let versionFiles = try run.version.map { try Self.encode($0.files) }
        let logger = logger
        let runTable = table("run")
        return try await pool.transaction { connection in
            // With a limit, the count and the insert must not interleave with another
            // process's: a transaction-scoped advisory lock on the org makes creators of the
            // org's runs with a limit take turns (held until commit, so the next one counts
            // this one's run; READ COMMITTED gives each statement a fresh snapshot). Cheaper
            // than SERIALIZABLE, which would fail and retry under exactly this contention.
            if activeLimit != nil || orgActiveLimit != nil {
                try await connection.execute(
                    "SELECT pg_advisory_xact_lock(\(Self.creationLockClass), hashtext(\(self.schemaName + "/" + run.org)))",
                    logger: logger)
            }
            if let key = run.triggerKey, let existing = try await self.run(connection, pipeline: run.pipeline, org: run.org, triggerKey: key) {
                return .existing(existing)
            }
            if let activeLimit {
                let active = try await connection.rows(
                    """
                    SELECT count(*) FROM \(unescaped: runTable)
                    WHERE pipeline = \(run.pipeline) AND org = \(run.org) AND state IN \(unescaped: Self.activeStates)
                    """, logger: logger)[0].decode(Int.self)
                if active >= activeLimit { return .limited(active: active) }
            }
            if let orgActiveLimit {
                let active = try await connection.rows(
                    "SELECT count(*) FROM \(unescaped: runTable) WHERE org = \(run.org) AND state IN \(unescaped: Self.activeStates)",
                    logger: logger)[0].decode(Int.self)
                if active >= orgActiveLimit { return .orgLimited(active: active) }
            }
            // The unique key on the trigger decides between two creators at once: the second
            // insert waits for the first to commit, then does nothing.
            let inserted = try await connection.rows(
                """
                INSERT INTO \(unescaped: runTable) (id, pipeline, org, logical_date, trigger, trigger_key, request_id, params, state,
                                 reason, created_at, updated_at, resume_of, lease_seconds, for_workers, version, version_files, plan)
                VALUES (\(run.id), \(run.pipeline), \(run.org), \(run.logicalDate), \(run.trigger.rawValue), \(run.triggerKey),
                        \(run.requestID), \(params), \(run.state.rawValue), \(run.reason), \(run.createdAt.timeIntervalSince1970),
                        \(run.createdAt.timeIntervalSince1970), \(run.resumeOf), \(run.lease?.timeInterval), \(run.forWorkers),
                        \(run.version?.hash), \(versionFiles), \(run.plan))
                ON CONFLICT DO NOTHING
                RETURNING id
                """, logger: logger)
            guard !inserted.isEmpty else {
                guard let key = run.triggerKey,
                    let existing = try await self.run(connection, pipeline: run.pipeline, org: run.org, triggerKey: key)
                else {
                    throw PostgresError(
                        .server(sqlState: "23505", message: "run id \(run.id) exists already"), server: self.pool.settings.server)
                }
                return .existing(existing)
            }
            if !steps.isEmpty {
                try await connection.execute(
                    """
                    INSERT INTO \(unescaped: self.table("step_run")) (run_id, step_id, processor, state, attempt, reason, outputs)
                    SELECT \(run.id), step_id, processor, state, attempt, reason, outputs
                    FROM unnest(\(steps.map(\.stepID))::text[], \(steps.map(\.processor))::text[], \(steps.map(\.state.rawValue))::text[],
                                \(steps.map(\.attempt))::int8[], \(steps.map(\.reason))::text[], \(outputs)::text[])
                         WITH ORDINALITY AS step (step_id, processor, state, attempt, reason, outputs, position)
                    ORDER BY position
                    """, logger: logger)
            }
            try await self.insertTransition(connection, runID: run.id, step: nil, attempt: 0, state: run.state, reason: run.reason, at: run.createdAt)
            return .created(run)
        }
    }

    public func recordRun(_ runID: String, state: RunState, reason: String, at: Date) async throws {
        let logger = logger
        try await pool.transaction { connection in
            try await connection.execute(
                """
                UPDATE \(unescaped: self.table("run")) SET state = \(state.rawValue), reason = \(reason), updated_at = \(at.timeIntervalSince1970)
                WHERE id = \(runID)
                """, logger: logger)
            try await self.insertTransition(connection, runID: runID, step: nil, attempt: 0, state: state, reason: reason, at: at)
        }
    }

    public func recordStep(
        _ runID: String, step: String, state: RunState, attempt: Int, reason: String,
        errorCode: String?, at: Date
    ) async throws {
        let logger = logger
        let time = at.timeIntervalSince1970
        let finished = state.isFinal
        try await pool.transaction { connection in
            try await connection.execute(
                """
                UPDATE \(unescaped: self.table("step_run")) SET state = \(state.rawValue), attempt = \(attempt), reason = \(reason),
                    error_code = \(errorCode),
                    started_at = CASE WHEN \(state == .running) AND started_at IS NULL THEN \(time) ELSE started_at END,
                    finished_at = CASE WHEN \(finished) THEN \(time)::float8 ELSE NULL END
                WHERE run_id = \(runID) AND step_id = \(step)
                """, logger: logger)
            try await self.insertTransition(connection, runID: runID, step: step, attempt: attempt, state: state, reason: reason, at: at)
        }
    }

    public func saveOutputs(_ runID: String, step: String, outputs: [String: ExpressionValue]) async throws {
        let logger = logger
        let encoded = try Self.encode(outputs)
        try await pool.withConnection { connection in
            try await connection.execute(
                "UPDATE \(unescaped: self.table("step_run")) SET outputs = \(encoded) WHERE run_id = \(runID) AND step_id = \(step)",
                logger: logger)
        }
    }

    @discardableResult
    public func heartbeat(_ runID: String, at: Date) async throws -> Bool {
        let logger = logger
        // A heartbeat racing an abandonment waits for the abandoning transaction's row lock,
        // then finds the run failed and changes nothing.
        return try await pool.withConnection { connection in
            try await !connection.rows(
                """
                UPDATE \(unescaped: self.table("run")) SET heartbeat_at = \(at.timeIntervalSince1970)
                WHERE id = \(runID) AND state IN \(unescaped: Self.activeStates)
                RETURNING id
                """, logger: logger
            ).isEmpty
        }
    }

    public func abandonRuns(heartbeatBefore cutoff: Date, reason: String, at: Date) async throws -> [RunRecord] {
        let logger = logger
        return try await pool.transaction { connection in
            let runs = try await connection.rows(
                """
                SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                WHERE state IN \(unescaped: Self.activeStates) AND NOT for_workers
                    AND coalesce(heartbeat_at, created_at) < \(cutoff.timeIntervalSince1970)
                ORDER BY created_at, id
                FOR UPDATE
                """, logger: logger
            ).map(Self.decodeRun)
            return try await self.abandon(connection, runs, at: at) { _ in reason }
        }
    }

    public func abandonRuns(at now: Date, fallbackLease: Duration, reason: @escaping @Sendable (Duration) -> String) async throws -> [RunRecord] {
        let logger = logger
        return try await pool.transaction { connection in
            // FOR UPDATE: two processes abandoning at once take turns per run, and the second
            // re-checks the run (now failed, or with a fresh heartbeat) and leaves it out.
            let runs = try await connection.rows(
                """
                SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                WHERE state IN \(unescaped: Self.activeStates) AND NOT for_workers
                    AND coalesce(heartbeat_at, created_at) < \(now.timeIntervalSince1970) - coalesce(lease_seconds, \(fallbackLease.timeInterval))
                ORDER BY created_at, id
                FOR UPDATE
                """, logger: logger
            ).map(Self.decodeRun)
            return try await self.abandon(connection, runs, at: now) { run in reason(run.lease ?? fallbackLease) }
        }
    }

    // MARK: Workers

    public func claimRun(worker: String, lease: Duration, orgs: Set<String>?, at now: Date) async throws -> RunClaim? {
        let logger = logger
        let time = now.timeIntervalSince1970
        let expires = time + lease.timeInterval
        let orgList = orgs.map { Array($0).sorted() }
        if orgList?.isEmpty == true { return nil }
        return try await pool.transaction { connection in
            // SKIP LOCKED: claimers at once each lock a different run instead of queueing on
            // the oldest; a run another claimer took meanwhile no longer matches once it is
            // locked and read again, so it is never claimed twice.
            let found = try await connection.rows(
                """
                SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                WHERE for_workers AND state IN \(unescaped: Self.activeStates)
                    AND (worker IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= \(time))
                    -- A worker never takes a run over from itself: one whose lease lapsed while it
                    -- was starting it is still its own.
                    AND coalesce(worker, '') <> \(worker)
                    AND (\(orgList == nil) OR org = ANY(\(orgList ?? [])::text[]))
                ORDER BY created_at, id
                LIMIT 1
                FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).first.map(Self.decodeRun)
            guard let previous = found else { return nil }
            let reason = RunClaim.reason(worker: worker, previous: previous, at: now)
            try await connection.execute(
                """
                UPDATE \(unescaped: self.table("run")) SET worker = \(worker), lease_expires_at = \(expires), heartbeat_at = \(time),
                    lease_seconds = \(lease.timeInterval), reason = \(reason), updated_at = \(time)
                WHERE id = \(previous.id)
                """, logger: logger)
            try await self.insertTransition(connection, runID: previous.id, step: nil, attempt: 0, state: previous.state, reason: reason, at: now)
            return RunClaim(claiming: previous, worker: worker, until: Date(timeIntervalSince1970: expires), lease: lease, reason: reason, at: now)
        }
    }

    @discardableResult
    public func renewLease(_ runID: String, worker: String, lease: Duration, at now: Date) async throws -> Bool {
        let logger = logger
        let time = now.timeIntervalSince1970
        // A renewal racing a takeover waits for the claimer's row lock, then finds another
        // worker's name and changes nothing.
        return try await pool.withConnection { connection in
            try await !connection.rows(
                """
                UPDATE \(unescaped: self.table("run")) SET lease_expires_at = \(time + lease.timeInterval), heartbeat_at = \(time)
                WHERE id = \(runID) AND worker = \(worker) AND lease_expires_at IS NOT NULL AND state IN \(unescaped: Self.activeStates)
                RETURNING id
                """, logger: logger
            ).isEmpty
        }
    }

    @discardableResult
    public func releaseRun(_ runID: String, worker: String, reason: String, at now: Date) async throws -> Bool {
        let logger = logger
        let time = now.timeIntervalSince1970
        let reason = RunClaim.releaseReason(worker: worker, reason)
        return try await pool.transaction { connection in
            let released = try await connection.rows(
                """
                UPDATE \(unescaped: self.table("run")) SET lease_expires_at = NULL, reason = \(reason), updated_at = \(time)
                WHERE id = \(runID) AND worker = \(worker) AND lease_expires_at IS NOT NULL AND state IN \(unescaped: Self.activeStates)
                RETURNING state
                """, logger: logger)
            guard let row = released.first else { return false }
            let state = RunState(rawValue: try row.decode(String.self)) ?? .running
            try await self.insertTransition(connection, runID: runID, step: nil, attempt: 0, state: state, reason: reason, at: now)
            return true
        }
    }

    /// Marks each run failed (abandoned) with its reason, and its unfinished steps with it.
    private func abandon(
        _ connection: PostgresConnection, _ runs: [RunRecord], at: Date, reason: (RunRecord) -> String
    ) async throws -> [RunRecord] {
        var abandoned: [RunRecord] = []
        let time = at.timeIntervalSince1970
        for var run in runs {
            let reason = "abandoned: \(reason(run))"
            try await connection.execute(
                """
                WITH failed AS (
                    UPDATE \(unescaped: table("step_run")) SET state = 'failed', reason = \(reason), error_code = 'abandoned', finished_at = \(time)
                    WHERE run_id = \(run.id) AND state IN ('pending', 'running', 'retrying', 'timed_out')
                    RETURNING seq, step_id, attempt
                )
                INSERT INTO \(unescaped: table("transition")) (run_id, step_id, attempt, state, reason, at)
                SELECT \(run.id), step_id, attempt, 'failed', \(reason), \(time) FROM failed ORDER BY seq
                """, logger: logger)
            try await connection.execute(
                "UPDATE \(unescaped: table("run")) SET state = 'failed', reason = \(reason), updated_at = \(time) WHERE id = \(run.id)",
                logger: logger)
            try await insertTransition(connection, runID: run.id, step: nil, attempt: 0, state: .failed, reason: reason, at: at)
            run.state = .failed
            run.reason = reason
            abandoned.append(run)
        }
        return abandoned
    }

    public func saveStepRecords(_ runID: String, step: String, kind: String, _ records: [StepRecordBody]) async throws {
        guard !records.isEmpty else { return }
        let logger = logger
        let recordTable = table("step_record")
        try await pool.transaction { connection in
            for record in records {
                let body = String(decoding: record.json, as: UTF8.self)
                if let key = record.key {
                    // An update keeps the record's `seq`, so it stays in its place.
                    try await connection.execute(
                        """
                        INSERT INTO \(unescaped: recordTable) (run_id, step_id, kind, record_key, body)
                        VALUES (\(runID), \(step), \(kind), \(key), \(body))
                        ON CONFLICT (run_id, step_id, kind, record_key) WHERE record_key IS NOT NULL DO UPDATE SET body = excluded.body
                        """, logger: logger)
                } else {
                    try await connection.execute(
                        """
                        INSERT INTO \(unescaped: recordTable) (run_id, step_id, kind, record_key, body)
                        VALUES (\(runID), \(step), \(kind), NULL, \(body))
                        """, logger: logger)
                }
            }
        }
    }

    public func stepRecords(of runID: String, kind: String) async throws -> [StepRecord] {
        let logger = logger
        return try await pool.withConnection { connection in
            try await connection.rows(
                "SELECT step_id, record_key, body FROM \(unescaped: self.table("step_record")) WHERE run_id = \(runID) AND kind = \(kind) ORDER BY seq",
                logger: logger
            ).map { row in
                let (step, key, body) = try row.decode((String, String?, String).self)
                return StepRecord(stepID: step, key: key, json: Data(body.utf8))
            }
        }
    }

    public func stepRecords(org: String, kind: String, since: Date) async throws -> [StepRecord] {
        let logger = logger
        let since = since.timeIntervalSince1970
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT r.step_id, r.record_key, r.body FROM \(unescaped: self.table("step_record")) r
                JOIN \(unescaped: self.table("run")) run ON run.id = r.run_id
                WHERE run.org = \(org) AND r.kind = \(kind) AND run.created_at >= \(since) ORDER BY r.seq
                """,
                logger: logger
            ).map { row in
                let (step, key, body) = try row.decode((String, String?, String).self)
                return StepRecord(stepID: step, key: key, json: Data(body.utf8))
            }
        }
    }

    // MARK: Reading

    public func run(_ id: String) async throws -> RunRecord? {
        let logger = logger
        return try await pool.withConnection { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run")) WHERE id = \(id)", logger: logger
            ).first.map(Self.decodeRun)
        }
    }

    public func run(pipeline: String, org: String, triggerKey: String) async throws -> RunRecord? {
        try await pool.withConnection { connection in
            try await self.run(connection, pipeline: pipeline, org: org, triggerKey: triggerKey)
        }
    }

    private func run(_ connection: PostgresConnection, pipeline: String, org: String, triggerKey: String) async throws -> RunRecord? {
        try await connection.rows(
            """
            SELECT \(unescaped: Self.runColumns) FROM \(unescaped: table("run"))
            WHERE pipeline = \(pipeline) AND org = \(org) AND trigger_key = \(triggerKey)
            """, logger: logger
        ).first.map(Self.decodeRun)
    }

    public func steps(of runID: String) async throws -> [StepRunRecord] {
        try await pool.withConnection { connection in try await self.steps(connection, runID: runID) }
    }

    public func runWithSteps(_ id: String, org: String?) async throws -> (run: RunRecord, steps: [StepRunRecord])? {
        let logger = logger
        let found: RunWithSteps? = try await pool.transaction { connection in
            // One snapshot for both reads.
            try await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            guard
                let run = try await connection.rows(
                    """
                    SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                    WHERE id = \(id) AND (\(org)::text IS NULL OR org = \(org))
                    """, logger: logger
                ).first.map(Self.decodeRun)
            else { return nil }
            return RunWithSteps(run: run, steps: try await self.steps(connection, runID: id))
        }
        return found.map { ($0.run, $0.steps) }
    }

    private struct RunWithSteps: Sendable {
        var run: RunRecord
        var steps: [StepRunRecord]
    }

    private func steps(_ connection: PostgresConnection, runID: String) async throws -> [StepRunRecord] {
        let decoder = JSONDecoder()
        return try await connection.rows(
            "SELECT \(unescaped: Self.stepColumns) FROM \(unescaped: table("step_run")) WHERE run_id = \(runID) ORDER BY seq",
            logger: logger
        ).map { row in
            let columns = row.makeRandomAccess()
            return StepRunRecord(
                runID: try columns["run_id"].decode(String.self), stepID: try columns["step_id"].decode(String.self),
                processor: try columns["processor"].decode(String.self),
                state: RunState(rawValue: try columns["state"].decode(String.self)) ?? .pending,
                attempt: try columns["attempt"].decode(Int.self), reason: try columns["reason"].decode(String.self),
                errorCode: try columns["error_code"].decode(String?.self),
                startedAt: try columns["started_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:)),
                finishedAt: try columns["finished_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:)),
                outputs: try decoder.decode([String: ExpressionValue].self, from: Data(try columns["outputs"].decode(String.self).utf8)))
        }
    }

    public func transitions(of runID: String) async throws -> [Transition] {
        let logger = logger
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT step_id, attempt, state, reason, at FROM \(unescaped: self.table("transition"))
                WHERE run_id = \(runID) ORDER BY seq
                """, logger: logger
            ).map { row in
                let (step, attempt, state, reason, at) = try row.decode((String?, Int, String, String, Double).self)
                return Transition(
                    stepID: step, attempt: attempt, state: RunState(rawValue: state) ?? .pending, reason: reason,
                    at: Date(timeIntervalSince1970: at))
            }
        }
    }

    public func runs(pipeline: String?, org: String?, limit: Int, after cursor: RunCursor?) async throws -> [RunRecord] {
        let logger = logger
        let cursorTime = cursor?.createdAt.timeIntervalSince1970
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                WHERE (\(pipeline)::text IS NULL OR pipeline = \(pipeline)) AND (\(org)::text IS NULL OR org = \(org))
                    AND (\(cursorTime)::float8 IS NULL OR created_at < \(cursorTime) OR (created_at = \(cursorTime) AND id < \(cursor?.id)))
                ORDER BY created_at DESC, id DESC LIMIT \(limit)
                """, logger: logger
            ).map(Self.decodeRun)
        }
    }

    public func activeRuns() async throws -> [RunRecord] {
        let logger = logger
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.runColumns) FROM \(unescaped: self.table("run"))
                WHERE state IN \(unescaped: Self.activeStates) ORDER BY created_at, id
                """, logger: logger
            ).map(Self.decodeRun)
        }
    }

    public func runCounts() async throws -> [RunState: Int] {
        let logger = logger
        return try await pool.withConnection { connection in
            var counts: [RunState: Int] = [:]
            for row in try await connection.rows("SELECT state, count(*) FROM \(unescaped: self.table("run")) GROUP BY state", logger: logger) {
                let (state, runs) = try row.decode((String, Int).self)
                if let state = RunState(rawValue: state) { counts[state] = runs }
            }
            return counts
        }
    }

    // MARK: Rows

    private func insertTransition(
        _ connection: PostgresConnection, runID: String, step: String?, attempt: Int, state: RunState, reason: String, at: Date
    ) async throws {
        try await connection.execute(
            """
            INSERT INTO \(unescaped: table("transition")) (run_id, step_id, attempt, state, reason, at)
            VALUES (\(runID), \(step), \(attempt), \(state.rawValue), \(reason), \(at.timeIntervalSince1970))
            """, logger: logger)
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

    private static func decodeRun(_ row: PostgresRow) throws -> RunRecord {
        let columns = row.makeRandomAccess()
        let params = try columns["params"].decode(String.self)
        var run = RunRecord(
            id: try columns["id"].decode(String.self), pipeline: try columns["pipeline"].decode(String.self),
            org: try columns["org"].decode(String.self), logicalDate: try columns["logical_date"].decode(String.self),
            trigger: RunTrigger(rawValue: try columns["trigger"].decode(String.self)) ?? .cli,
            triggerKey: try columns["trigger_key"].decode(String?.self), requestID: try columns["request_id"].decode(String?.self),
            params: try JSONDecoder().decode([String: String].self, from: Data(params.utf8)),
            state: RunState(rawValue: try columns["state"].decode(String.self)) ?? .pending,
            reason: try columns["reason"].decode(String.self),
            createdAt: Date(timeIntervalSince1970: try columns["created_at"].decode(Double.self)),
            resumeOf: try columns["resume_of"].decode(String?.self))
        run.updatedAt = Date(timeIntervalSince1970: try columns["updated_at"].decode(Double.self))
        run.heartbeatAt = try columns["heartbeat_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:))
        run.lease = try columns["lease_seconds"].decode(Double?.self).map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        run.forWorkers = try columns["for_workers"].decode(Bool.self)
        run.worker = try columns["worker"].decode(String?.self)
        run.leaseExpiresAt = try columns["lease_expires_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:))
        if let hash = try columns["version"].decode(String?.self) {
            let files = try columns["version_files"].decode(String?.self).map {
                try JSONDecoder().decode([String: String].self, from: Data($0.utf8))
            }
            run.version = PipelineVersion(hash: hash, files: files ?? [:])
        }
        run.plan = try columns["plan"].decode(String?.self)
        return run
    }
}
