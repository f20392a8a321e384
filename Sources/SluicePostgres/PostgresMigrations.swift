import Foundation
import Logging
import PostgresNIO
import SluiceModel

/// The versions of the run store's schema (`sluice` by default), applied in order and
/// recorded in its `schema_migrations` table, so that each is applied once per database.
enum PostgresMigrations {
    /// One version: its number, a name for people, and its SQL (`{schema}` stands for the
    /// quoted schema name).
    struct Migration: Sendable {
        var version: Int
        var name: String
        var sql: [String]
    }

    /// The advisory lock class the run store's locks use (the first key of the two-key form),
    /// so they can't collide with a lock another program takes on the same server.
    static let lockClass: Int32 = 0x51C1

    /// Applies the versions the schema lacks; returns how many it applied (0 when it is up to
    /// date). Processes that start at once take turns: all of it is one transaction that first
    /// takes a transaction-scoped advisory lock on the schema's name, so the second process
    /// waits for the first to commit, then finds the versions applied and applies nothing. The
    /// lock goes with the transaction, so a process that dies while migrating holds nothing
    /// and leaves nothing half-applied (PostgreSQL's DDL is transactional).
    /// `last` stops at that version (tests make a store as an older sluice left it).
    static func migrate(_ pool: PostgresPool, schema: String, through last: Int = .max) async throws -> Int {
        // Quoted below as well; the check keeps names to the one rule every warehouse name follows.
        if let problem = Identifier.problem(with: schema) {
            throw PostgresError(.invalidName(problem), server: pool.settings.server)
        }
        let quoted = quote(schema)
        let logger = pool.logger
        return try await pool.transaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(lockClass), hashtext(\(schema)))", logger: logger)
            // Created only when missing: CREATE … IF NOT EXISTS checks the privilege to create
            // first, and a role that may only use a store someone else migrated lacks it.
            let existing = try await connection.rows(
                """
                SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schema)),
                       to_regclass(\(quoted + ".schema_migrations")) IS NOT NULL
                """, logger: logger)[0].decode((Bool, Bool).self)
            if !existing.0 {
                try await connection.execute("CREATE SCHEMA \(unescaped: quoted)", logger: logger)
            }
            if !existing.1 {
                try await connection.execute(
                    """
                    CREATE TABLE \(unescaped: quoted).schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """, logger: logger)
            }
            var applied = Set<Int>()
            for try await version in try await connection.query(
                "SELECT version FROM \(unescaped: quoted).schema_migrations", logger: logger
            ).decode(Int.self) {
                applied.insert(version)
            }
            var count = 0
            for migration in all where !applied.contains(migration.version) && migration.version <= last {
                for statement in migration.sql {
                    let sql = statement.replacingOccurrences(of: "{schema}", with: quoted)
                    try await connection.execute(PostgresQuery(unsafeSQL: sql), logger: logger)
                }
                try await connection.execute(
                    "INSERT INTO \(unescaped: quoted).schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                count += 1
            }
            return count
        }
    }

    /// Every version, oldest first. Append; never edit one that has shipped.
    ///
    /// Run ids compare byte by byte (`COLLATE "C"`), as SQLite compares them, whatever the
    /// database's collation: keyset pagination orders by them.
    ///
    /// Times are `double precision` seconds since 1970, as the SQLite store keeps them (REAL):
    /// a `Date` round-trips bit for bit, which `RunCursor` relies on (it compares a run's
    /// creation time exactly), where `timestamptz` would round it to microseconds.
    static let all: [Migration] = [
        Migration(
            version: 1, name: "runs, steps, transitions, step records",
            sql: [
                """
                CREATE TABLE {schema}.run (
                    id text COLLATE "C" PRIMARY KEY,
                    pipeline text NOT NULL,
                    org text NOT NULL,
                    logical_date text NOT NULL,
                    trigger text NOT NULL,
                    trigger_key text,
                    request_id text,
                    params text NOT NULL,
                    state text NOT NULL,
                    reason text NOT NULL,
                    created_at double precision NOT NULL,
                    updated_at double precision NOT NULL,
                    heartbeat_at double precision,
                    resume_of text REFERENCES {schema}.run (id),
                    lease_seconds double precision
                )
                """,
                // One run per trigger: a unique key, not a count-then-insert.
                "CREATE UNIQUE INDEX run_trigger ON {schema}.run (pipeline, org, trigger_key) WHERE trigger_key IS NOT NULL",
                "CREATE INDEX run_pipeline ON {schema}.run (pipeline, org, created_at)",
                "CREATE INDEX run_created ON {schema}.run (created_at, id)",
                "CREATE INDEX run_state ON {schema}.run (state, heartbeat_at)",
                """
                CREATE TABLE {schema}.step_run (
                    seq bigint GENERATED ALWAYS AS IDENTITY,
                    run_id text NOT NULL REFERENCES {schema}.run (id) ON DELETE CASCADE,
                    step_id text NOT NULL,
                    processor text NOT NULL,
                    state text NOT NULL,
                    attempt integer NOT NULL,
                    reason text NOT NULL,
                    error_code text,
                    started_at double precision,
                    finished_at double precision,
                    outputs text NOT NULL DEFAULT '{}',
                    PRIMARY KEY (run_id, step_id)
                )
                """,
                """
                CREATE TABLE {schema}.transition (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    run_id text NOT NULL REFERENCES {schema}.run (id) ON DELETE CASCADE,
                    step_id text,
                    attempt integer NOT NULL,
                    state text NOT NULL,
                    reason text NOT NULL,
                    at double precision NOT NULL
                )
                """,
                "CREATE INDEX transition_run ON {schema}.transition (run_id, seq)",
                // What steps keep with their run (data test results, quarantined rows …); `seq`
                // keeps their order, and an update in place keeps a record's place.
                """
                CREATE TABLE {schema}.step_record (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    run_id text NOT NULL REFERENCES {schema}.run (id) ON DELETE CASCADE,
                    step_id text NOT NULL,
                    kind text NOT NULL,
                    record_key text,
                    body text NOT NULL
                )
                """,
                "CREATE INDEX step_record_run ON {schema}.step_record (run_id, kind, seq)",
                """
                CREATE UNIQUE INDEX step_record_key ON {schema}.step_record (run_id, step_id, kind, record_key)
                    WHERE record_key IS NOT NULL
                """,
            ]),
        Migration(
            version: 2, name: "API tokens",
            sql: [
                """
                CREATE TABLE {schema}.api_token (
                    id text COLLATE "C" PRIMARY KEY,
                    org text,
                    scope text NOT NULL CHECK (scope IN ('api', 'metrics')),
                    name text NOT NULL,
                    hash bytea NOT NULL CHECK (length(hash) = 32),
                    created_at double precision NOT NULL,
                    revoked_at double precision,
                    CHECK ((org IS NULL) = (scope = 'metrics'))
                )
                """,
                "CREATE INDEX api_token_org ON {schema}.api_token (org, created_at)",
            ]),
        Migration(
            version: 3, name: "webhook delivery audit",
            sql: [
                """
                CREATE TABLE {schema}.webhook_audit (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    org text NOT NULL,
                    pipeline text NOT NULL,
                    message_id text,
                    outcome text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
                    reason text NOT NULL,
                    status integer NOT NULL,
                    detail text NOT NULL,
                    request_id text NOT NULL,
                    run_id text,
                    at double precision NOT NULL
                )
                """,
                "CREATE INDEX webhook_audit_hook ON {schema}.webhook_audit (org, pipeline, seq)",
                "CREATE INDEX webhook_audit_refused ON {schema}.webhook_audit (seq) WHERE outcome = 'refused'",
            ]),
        Migration(
            version: 4, name: "credentials and their audit log",
            sql: [
                """
                CREATE TABLE {schema}.credential (
                    org text NOT NULL,
                    name text NOT NULL,
                    provider text NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gcp', 'generic')),
                    generation integer NOT NULL CHECK (generation >= 1),
                    sealed bytea NOT NULL,
                    key_version integer NOT NULL,
                    previous_sealed bytea,
                    previous_key_version integer,
                    previous_valid_until double precision,
                    expires_at double precision,
                    metadata text NOT NULL DEFAULT '{}',
                    created_at double precision NOT NULL,
                    updated_at double precision NOT NULL,
                    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
                    PRIMARY KEY (org, name),
                    CHECK ((previous_sealed IS NULL) = (previous_valid_until IS NULL)
                           AND (previous_sealed IS NULL) = (previous_key_version IS NULL))
                )
                """,
                """
                CREATE TABLE {schema}.credential_audit (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    org text NOT NULL,
                    credential text NOT NULL,
                    run_id text,
                    step_id text,
                    action text NOT NULL,
                    outcome text NOT NULL,
                    detail text NOT NULL,
                    at double precision NOT NULL
                )
                """,
                "CREATE INDEX credential_audit_org ON {schema}.credential_audit (org, credential, seq)",
                "CREATE INDEX credential_audit_run ON {schema}.credential_audit (run_id) WHERE run_id IS NOT NULL",
            ]),
        Migration(
            version: 5, name: "runs left for workers, and their leases",
            sql: [
                // `worker` names the lease's holder (kept after a release, which clears the
                // expiry instead, so the next claim can say whom it took the run from).
                "ALTER TABLE {schema}.run ADD COLUMN for_workers boolean NOT NULL DEFAULT false",
                "ALTER TABLE {schema}.run ADD COLUMN worker text",
                "ALTER TABLE {schema}.run ADD COLUMN lease_expires_at double precision",
                "CREATE INDEX run_claimable ON {schema}.run (created_at, id) WHERE for_workers AND state IN ('pending', 'running')",
            ]),
        Migration(
            version: 6, name: "pipeline versions and plans",
            sql: [
                // The version's hash in a column of its own (runs of one version can be found
                // by it), its files' hashes and the plan as JSON. NULL for the runs stored before.
                "ALTER TABLE {schema}.run ADD COLUMN version text",
                "ALTER TABLE {schema}.run ADD COLUMN version_files text",
                "ALTER TABLE {schema}.run ADD COLUMN plan text",
            ]),
    ]

    /// `name` as a quoted SQL identifier.
    static func quote(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
