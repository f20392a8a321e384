import Foundation
import Logging
import PostgresNIO
import SluiceModel
import SluiceStorage
import Synchronization

/// The team warehouse: PostgreSQL, with each org's published tables in a schema of its own
/// (`<prefix>_org_<org>`) and each run's staging in two schemas of its own, dropped when the
/// run publishes or discards: `<prefix>_run_<id>` holds the staged tables and the run's
/// bookkeeping, `<prefix>_view_<id>` a view of each staged table as the run sees it (staged
/// rows composed with the published ones). The schema `<prefix>` lists the stagings.
///
/// It behaves as `SQLiteWarehouse` does: publish is one transaction (all-or-nothing, the
/// published marker and the cursors included), conflict rules are applied again at publish
/// time, and runs hold their target tables across processes and machines with advisory locks
/// (`PostgresRunSession`). Procedures run as a role of the org's that may read only the org's
/// schema and, while the procedure runs, the run's views (`PostgresWorkspace+Procedures`).
///
/// The user the pool connects as creates schemas (CREATE on the database) and the orgs'
/// sandbox roles (CREATEROLE), and becomes a member of each so it can `SET ROLE` to it.
public struct PostgresWarehouse: Warehouse {
    public let pool: PostgresPool
    /// The first part of every schema and role name of this warehouse.
    public let schemaPrefix: String
    /// PostgreSQL 15 or later, whose unique indexes can treat nulls as one value (a null
    /// group is one group, as the upsert's key match is null-safe).
    let nullsNotDistinct: Bool
    private let readyOrgs: ReadyOrgs

    /// The advisory lock class (two-key form) of the warehouse's own set-up, distinct from the
    /// run store's.
    static let setupLockClass: Int32 = PostgresMigrations.lockClass + 8

    /// Opens the warehouse on the pool's server, creating the schema that lists the stagings
    /// if it is missing. `schemaPrefix` must be an `Identifier` short enough to leave room for
    /// the org and run names (names past PostgreSQL's 63 bytes are shortened with a hash).
    public init(pool: PostgresPool, schemaPrefix: String = PostgresWarehouse.defaultSchemaPrefix) async throws {
        if let problem = Identifier.problem(with: schemaPrefix) {
            throw PostgresError(.invalidName(problem), server: pool.settings.server)
        }
        guard schemaPrefix.utf8.count <= 40 else {
            throw PostgresError(.invalidName("the warehouse's schema prefix may have at most 40 characters"), server: pool.settings.server)
        }
        self.pool = pool
        self.schemaPrefix = schemaPrefix
        self.readyOrgs = ReadyOrgs()
        let logger = pool.logger
        let quoted = PostgresDialect().quote(schemaPrefix)
        let version = try await pool.withConnection { connection in
            try await connection.rows("SELECT current_setting('server_version_num')::int", logger: logger)[0].decode(Int.self)
        }
        nullsNotDistinct = version >= 150_000
        try await pool.transaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(Self.setupLockClass), hashtext(\(schemaPrefix)))", logger: logger)
            let exists = try await connection.rows("SELECT to_regclass(\(quoted + ".staging")) IS NOT NULL", logger: logger)[0].decode(Bool.self)
            guard !exists else { return }
            try await connection.execute(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(quoted)"), logger: logger)
            try await connection.execute(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE \(quoted).staging (
                            run_id text PRIMARY KEY COLLATE "C", org text NOT NULL, schema_name text NOT NULL, view_schema text NOT NULL,
                            created_at double precision NOT NULL, modified_at double precision NOT NULL)
                        """), logger: logger)
        }
    }

    // MARK: Names

    private var dialect: PostgresDialect { PostgresDialect() }

    /// `parts` joined with `_`, shortened with a hash of the whole when longer than
    /// PostgreSQL's 63 bytes (which it would otherwise cut silently).
    static func name(_ parts: [String]) -> String {
        let whole = parts.joined(separator: "_")
        guard whole.utf8.count > 63 else { return whole }
        let hash = String(UInt64(bitPattern: PostgresLockKey.hash(parts)), radix: 16)
        return String(whole.prefix(63 - 1 - hash.count)) + "_" + hash
    }

    func checkOrg(_ org: String) throws {
        guard Identifier.isValid(org) else {
            throw StepFailure(.invalidOrg, "'\(org)' is not a valid org name: use letters, digits and _")
        }
    }

    func checkRun(_ runID: String) throws {
        guard Identifier.isValid(runID) else { throw StepFailure(.invalidRun, "'\(runID)' is not a run id") }
    }

    /// The schema of an org's published tables.
    func orgSchema(_ org: String) -> String { Self.orgSchema(org, prefix: schemaPrefix) }
    /// The schema of an org's published tables in the warehouse of `prefix`: where people
    /// and other SQL clients find them.
    public static func orgSchema(_ org: String, prefix: String = defaultSchemaPrefix) -> String { name([prefix, "org", org]) }
    /// The first part of every schema and role name unless a warehouse is given another.
    public static let defaultSchemaPrefix = "sluice_warehouse"
    /// The schema of a run's staged tables and bookkeeping.
    func stagingSchema(_ runID: String) -> String { Self.name([schemaPrefix, "run", runID]) }
    /// The schema of a run's views.
    func viewSchema(_ runID: String) -> String { Self.name([schemaPrefix, "view", runID]) }
    /// The role procedures of an org run as.
    func sandboxRole(_ org: String) -> String { Self.name([schemaPrefix, "sandbox", org]) }
    /// The table that lists the stagings.
    var registry: String { dialect.quote(schemaPrefix) + ".staging" }

    // MARK: Orgs

    /// Creates the org's schema, its bookkeeping tables and its sandbox role once (per process;
    /// processes take turns with a transaction-scoped advisory lock).
    func prepareOrg(_ org: String) async throws {
        try checkOrg(org)
        if readyOrgs.contains(org) { return }
        let schema = dialect.quote(orgSchema(org))
        let roleName = sandboxRole(org)
        let role = dialect.quote(roleName)
        let key = schemaPrefix + "/" + org
        // Roles are the server's, but advisory locks only the database's: projects (or test
        // databases) on one server that set up the same org at once can both find the role
        // missing, or grant it at once. The loser's transaction fails on the catalog and is
        // tried again, and then finds the role there.
        var attempt = 1
        while true {
            do {
                try await setUpOrg(schema: schema, role: role, roleName: roleName, lockKey: key)
                break
            } catch let error as PostgresError where attempt < 5 && error.isCatalogRace {
                attempt += 1
                try await Task.sleep(for: .milliseconds(20 * attempt))
            }
        }
        readyOrgs.insert(org)
    }

    /// One try at `prepareOrg`'s transaction.
    private func setUpOrg(schema: String, role: String, roleName: String, lockKey key: String) async throws {
        let logger = pool.logger
        try await pool.transaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(Self.setupLockClass), hashtext(\(key)))", logger: logger)
            let roleExists = try await connection.rows("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = \(roleName))", logger: logger)[0]
                .decode(Bool.self)
            var statements = [
                "CREATE SCHEMA IF NOT EXISTS \(schema)",
                "CREATE TABLE IF NOT EXISTS \(schema)._sluice_published (run_id text PRIMARY KEY, at double precision NOT NULL)",
                """
                CREATE TABLE IF NOT EXISTS \(schema)._sluice_cursors (
                    key text PRIMARY KEY, value text NOT NULL, run_id text NOT NULL, at double precision NOT NULL)
                """,
            ]
            // A role that can't log in and owns nothing: procedures `SET LOCAL ROLE` to it,
            // so the server's privileges confine them to what it is granted.
            if !roleExists { statements.append("CREATE ROLE \(role) NOLOGIN NOINHERIT") }
            statements += [
                "GRANT \(role) TO CURRENT_USER",
                "GRANT USAGE ON SCHEMA \(schema) TO \(role)",
                "GRANT SELECT ON ALL TABLES IN SCHEMA \(schema) TO \(role)",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA \(schema) GRANT SELECT ON TABLES TO \(role)",
            ]
            for statement in statements { try await connection.execute(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }

    // MARK: Warehouse

    public func workspace(org: String, runID: String, targets: [String], existing: Bool) async throws -> any RunWorkspace {
        try checkOrg(org)
        try checkRun(runID)
        try await prepareOrg(org)
        // Held while the workspace is open: staging retention removes only stagings nobody holds.
        let session = try await PostgresRunSession.open(pool)
        do {
            try await session.lockShared(PostgresLockKey.staging(prefix: schemaPrefix, org: org, runID: runID))
            let workspace = PostgresWorkspace(warehouse: self, org: org, runID: runID, session: session, targets: targets)
            try await workspace.open(existing: existing)
            return workspace
        } catch {
            await session.close()
            throw error
        }
    }

    public func wasPublished(org: String, runID: String) async throws -> Bool {
        try checkOrg(org)
        let table = dialect.quote(orgSchema(org)) + "._sluice_published"
        let logger = pool.logger
        return try await pool.withConnection { connection in
            guard try await connection.rows("SELECT to_regclass(\(table)) IS NOT NULL", logger: logger)[0].decode(Bool.self) else {
                return false
            }
            return try await !connection.rows(
                PostgresQuery(unsafeSQL: "SELECT 1 FROM \(table) WHERE run_id = $1", binds: PostgresValue.bindings([.text(runID)])),
                logger: logger
            ).isEmpty
        }
    }

    /// Reads as the org's sandbox role, in a read-only transaction, with the org's schema as
    /// the search path: the org's published tables and nothing else, as the SQLite warehouse
    /// opens only the org's file, read-only.
    public func query(org: String, _ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        try checkOrg(org)
        let schemaName = orgSchema(org)
        let exists = try await pool.withConnection { [logger = pool.logger] connection in
            try await connection.rows("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(schemaName))", logger: logger)[0]
                .decode(Bool.self)
        }
        guard exists else {
            throw StepFailure(.noWarehouse, "org '\(org)' has no warehouse yet (no run has published for it)")
        }
        try await prepareOrg(org)
        let text = PostgresProcedureText(sql)
        guard text.statements.count == 1, let statement = text.statements.first else {
            throw StepFailure(.procedureRefused, "a warehouse query is one statement")
        }
        if let refusal = PostgresProcedureText.refusal(of: statement, policy: .query) {
            throw StepFailure(.procedureRefused, "this query is refused: \(refusal)")
        }
        let setUp = [
            "BEGIN TRANSACTION READ ONLY",
            "SET LOCAL ROLE \(dialect.quote(sandboxRole(org)))",
            "SET LOCAL search_path TO \(dialect.quote(schemaName))",
        ]
        let logger = pool.logger
        return try await pool.withConnection { connection in
            do {
                for statement in setUp { try await connection.execute(PostgresQuery(unsafeSQL: statement), logger: logger) }
                let result = try await connection.fetch(statement.text, arguments, logger: logger)
                try await connection.execute("ROLLBACK", logger: logger)
                return result
            } catch {
                try? await connection.execute("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    public func stagings() async throws -> [StagingInfo] {
        let logger = pool.logger
        let registry = registry
        return try await pool.withConnection { connection in
            let rows = try await connection.rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT r.org, r.run_id, r.modified_at,
                            (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class AS c
                             JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = r.schema_name AND c.relkind = 'r')
                        FROM \(registry) AS r ORDER BY r.org, r.run_id
                        """), logger: logger)
            return try rows.map { row in
                let (org, runID, modified, bytes) = try row.decode((String, String, Double, Int64).self)
                return StagingInfo(org: org, runID: runID, bytes: bytes, modifiedAt: Date(timeIntervalSince1970: modified))
            }
        }
    }

    public func hasStaging(org: String, runID: String) async throws -> Bool {
        try checkOrg(org)
        try checkRun(runID)
        let logger = pool.logger
        let registry = registry
        return try await pool.withConnection { connection in
            try await !connection.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT 1 FROM \(registry) WHERE run_id = $1 AND org = $2",
                    binds: PostgresValue.bindings([.text(runID), .text(org)])), logger: logger
            ).isEmpty
        }
    }

    /// Takes the staging's lock exclusively, without waiting, for the length of a transaction
    /// that drops it: a workspace holds it shared from opening to its end, so a staging in use
    /// is left alone.
    public func removeStaging(org: String, runID: String) async throws -> Bool {
        try checkOrg(org)
        try checkRun(runID)
        let key = PostgresLockKey.staging(prefix: schemaPrefix, org: org, runID: runID)
        let logger = pool.logger
        let statements = dropStagingStatements(runID: runID)
        let registry = registry
        return try await pool.transaction { connection in
            guard try await connection.rows("SELECT pg_try_advisory_xact_lock(\(key))", logger: logger)[0].decode(Bool.self) else {
                return false
            }
            // Another org's run of that id: nothing of this org's to remove.
            let owner = try await connection.fetch("SELECT org FROM \(registry) WHERE run_id = $1", [.text(runID)], logger: logger)
            if let found = owner.rows.first?.first, found != .text(org) { return true }
            for statement in statements { try await connection.run(statement.sql, statement.arguments, logger: logger) }
            return true
        }
    }

    /// What removes a run's staging: its schemas and its line in the list.
    func dropStagingStatements(runID: String) -> [(sql: String, arguments: [WarehouseValue])] {
        [
            ("DROP SCHEMA IF EXISTS \(dialect.quote(viewSchema(runID))) CASCADE", []),
            ("DROP SCHEMA IF EXISTS \(dialect.quote(stagingSchema(runID))) CASCADE", []),
            ("DELETE FROM \(registry) WHERE run_id = $1", [.text(runID)]),
        ]
    }

    /// Removes every schema and role of this warehouse (tests, and a project that leaves the
    /// server): what `DROP SCHEMA … CASCADE` of each and `DROP ROLE` of each sandbox role do.
    func removeEverything() async throws {
        let logger = pool.logger
        let prefix = schemaPrefix
        try await pool.withConnection { connection in
            let pattern = prefix.replacingOccurrences(of: "_", with: "\\_")
            let schemas = try await connection.rows(
                "SELECT nspname FROM pg_namespace WHERE nspname = \(prefix) OR nspname LIKE \(pattern + "\\_%")", logger: logger
            ).map { try $0.decode(String.self) }
            for schema in schemas {
                try await connection.execute(
                    PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(PostgresDialect().quote(schema)) CASCADE"), logger: logger)
            }
            let roles = try await connection.rows("SELECT rolname FROM pg_roles WHERE rolname LIKE \(pattern + "\\_sandbox\\_%")", logger: logger)
                .map { try $0.decode(String.self) }
            for role in roles {
                try await connection.execute(PostgresQuery(unsafeSQL: "DROP OWNED BY \(PostgresDialect().quote(role))"), logger: logger)
                try await connection.execute(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(PostgresDialect().quote(role))"), logger: logger)
            }
        }
    }
}

/// The orgs whose schema and role this process has prepared.
final class ReadyOrgs: Sendable {
    private let orgs = Mutex<Set<String>>([])
    func contains(_ org: String) -> Bool { orgs.withLock { $0.contains(org) } }
    func insert(_ org: String) { _ = orgs.withLock { $0.insert(org) } }
}

extension PostgresConnection {
    /// Runs one statement with warehouse values bound and returns the rows it changed (0 for a
    /// statement that changes none).
    @discardableResult
    func run(_ sql: String, _ arguments: [WarehouseValue] = [], logger: Logger) async throws -> Int {
        let future: EventLoopFuture<PostgresQueryResult> = query(
            PostgresQuery(unsafeSQL: sql, binds: PostgresValue.bindings(arguments)), logger: logger)
        let metadata = try await future.get().metadata
        // Only rows written count, as SQLite counts changes (`CREATE TABLE … AS` reports
        // `SELECT n`). MERGE's tag (`MERGE 3`) is not one postgres-nio reads.
        let words = metadata.command.split(separator: " ")
        switch words.first {
        case "INSERT", "UPDATE", "DELETE": return metadata.rows ?? 0
        case "MERGE": return words.last.flatMap { Int($0) } ?? 0
        default: return 0
        }
    }

    /// Runs one statement with warehouse values bound and returns its rows, with column names
    /// (also when there are none), and at most `maxRows` of them.
    func fetch(_ sql: String, _ arguments: [WarehouseValue], maxRows: Int? = nil, logger: Logger) async throws -> QueryResult {
        let sequence = try await query(PostgresQuery(unsafeSQL: sql, binds: PostgresValue.bindings(arguments)), logger: logger)
        let columns = sequence.columns.map(\.name)
        var rows: [[WarehouseValue]] = []
        for try await row in sequence {
            if let maxRows, rows.count >= maxRows { continue }
            rows.append(row.map(PostgresValue.value))
        }
        return QueryResult(
            columns: columns, rows: rows, types: sequence.columns.map { PostgresValue.columnType($0.dataType, modifier: $0.dataTypeModifier) })
    }
}
