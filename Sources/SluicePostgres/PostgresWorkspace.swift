import Foundation
import Logging
import NIOCore
import PostgresNIO
import SluiceModel
import SluiceStorage
import Synchronization

/// A run's view of a PostgreSQL warehouse (see `PostgresWarehouse`). Its queries use the pool;
/// its locks live on a connection of its own (`PostgresRunSession`). Changes to the run's
/// schemas (staging a table, refreshing views, procedures, publishing) take turns through
/// `gate`, as they do on the SQLite warehouse's one connection: PostgreSQL refuses two
/// transactions that change one catalog row at once.
final class PostgresWorkspace: RunWorkspace {
    let warehouse: PostgresWarehouse
    let org: String
    let runID: String
    let session: PostgresRunSession
    let hold: PostgresTargetHold
    let gate = PostgresGate()
    let dialect: any SQLDialect = PostgresDialect()
    let logger: Logger

    /// Quoted schema names: the org's published tables, the run's staged tables, its views.
    let published: String
    let staging: String
    let views: String
    /// The org's sandbox role, quoted.
    let role: String
    /// What this opening wrote into the staging's `_sluice_owner`: every write into the run's
    /// schemas and the publish require it there still (`requireOwnership`), so a process that
    /// stalled past its lease while another (a worker taking the run over) reopened the staging
    /// writes and publishes nothing more.
    let ownerToken = UUID().uuidString
    /// When staged tables were written and analyzed, counted in writes (`analyzeIfWritten`).
    private let writes = Mutex(WriteLog())

    init(warehouse: PostgresWarehouse, org: String, runID: String, session: PostgresRunSession, targets: [String]) {
        self.warehouse = warehouse
        self.org = org
        self.runID = runID
        self.session = session
        self.hold = PostgresTargetHold(session: session, prefix: warehouse.schemaPrefix, org: org, tables: targets)
        self.logger = warehouse.pool.logger
        let dialect = PostgresDialect()
        published = dialect.quote(warehouse.orgSchema(org))
        staging = dialect.quote(warehouse.stagingSchema(runID))
        views = dialect.quote(warehouse.viewSchema(runID))
        role = dialect.quote(warehouse.sandboxRole(org))
    }

    var pool: PostgresPool { warehouse.pool }

    func quote(_ name: String) -> String { PostgresDialect().quote(name) }

    /// Creates the run's schemas, or finds them again (a resume) and brings its views up to
    /// date with what is published now.
    func open(existing: Bool) async throws {
        let (org, runID, registry) = (org, runID, warehouse.registry)
        let setUp = [
            "CREATE SCHEMA \(staging)",
            "CREATE SCHEMA \(views)",
            """
            CREATE TABLE \(staging)._sluice_staged (
                name text PRIMARY KEY, change text NOT NULL, detail text NOT NULL, position integer NOT NULL, step text)
            """,
            "CREATE TABLE \(staging)._sluice_cursors (key text PRIMARY KEY, value text NOT NULL)",
            "CREATE TABLE \(staging)._sluice_owner (token text NOT NULL)",
            "INSERT INTO \(staging)._sluice_owner (token) VALUES ('\(ownerToken)')",
        ]
        let names = (warehouse.stagingSchema(runID), warehouse.viewSchema(runID))
        try await gate.run {
            try await self.pool.transaction { connection in
                let found = try await connection.fetch("SELECT org FROM \(registry) WHERE run_id = $1", [.text(runID)], logger: self.logger)
                if let owner = found.rows.first?.first {
                    guard owner == .text(org) else {
                        throw StepFailure(.invalidRun, "run \(runID) has a staging in another org")
                    }
                    // Every opening takes the staging over (see `ownerToken`).
                    try await connection.run(
                        "UPDATE \(self.staging)._sluice_owner SET token = $1", [.text(self.ownerToken)], logger: self.logger)
                    try await self.refreshViews(connection)
                    return
                }
                if existing {
                    throw StepFailure(
                        .notResumable,
                        """
                        the staging of run \(runID) was removed (a failed run keeps it for SLUICE_STAGING_RETENTION, 7 days by \
                        default); start a new run instead
                        """)
                }
                for statement in setUp { try await connection.run(statement, logger: self.logger) }
                let now = Date().timeIntervalSince1970
                try await connection.run(
                    """
                    INSERT INTO \(registry) (run_id, org, schema_name, view_schema, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $5)
                    """, [.text(runID), .text(org), .text(names.0), .text(names.1), .real(now)], logger: self.logger)
            }
        }
    }

    // MARK: Reading

    /// The staged table itself when it holds the whole content (it has the arrival column,
    /// which orders rows as they came), the run's view for upserts and partitions, else the
    /// published table. A staged table written since it was last read is analyzed first.
    func source(_ table: String) async throws -> String? {
        try await analyzeIfWritten(table)
        return try await pool.withConnection { connection in try await self.source(connection, table) }
    }

    /// Takes the planner's statistics of a staged table that was written since they were last
    /// taken, before a step reads it. Without them PostgreSQL plans a freshly loaded table
    /// blind (an aggregate over a million staged rows sorted on disk took twice as long as
    /// the hash it chooses once it knows the table); autovacuum comes by only minutes later.
    /// A small sample (statistics target 10) is enough for that choice and takes tens of
    /// milliseconds on a million rows.
    func analyzeIfWritten(_ table: String) async throws {
        guard writes.withLock({ $0.takeAnalysis(of: table) }) else { return }
        let target = "\(staging).\(quote(table))"
        try await pool.transaction { connection in
            guard try await self.isStaged(connection, table) else { return }
            try await connection.run("SET LOCAL default_statistics_target = 10", logger: self.logger)
            try await connection.run("ANALYZE \(target)", logger: self.logger)
        }
    }

    /// Notes that `table` was written (nil: SQL that may have written any staged table), for
    /// `analyzeIfWritten`.
    func noteWritten(_ table: String?) {
        writes.withLock { $0.note(table) }
    }

    func source(_ connection: PostgresConnection, _ table: String) async throws -> String? {
        let kind = try await connection.fetch("SELECT change FROM \(staging)._sluice_staged WHERE name = $1", [.text(table)], logger: logger)
        if case .text(let change) = kind.rows.first?.first {
            return change == "scratch" || change == "replace" ? "\(staging).\(quote(table))" : "\(views).\(quote(table))"
        }
        if try await exists(connection, schema: warehouse.orgSchema(org), table: table) { return "\(published).\(quote(table))" }
        return nil
    }

    /// The run's view of a table for SQL written against names (procedures): its view when
    /// staged, else the published table.
    func viewSource(_ connection: PostgresConnection, _ table: String) async throws -> String? {
        if try await isStaged(connection, table) { return "\(views).\(quote(table))" }
        if try await exists(connection, schema: warehouse.orgSchema(org), table: table) { return "\(published).\(quote(table))" }
        return nil
    }

    func isStaged(_ table: String) async throws -> Bool {
        try await pool.withConnection { connection in try await self.isStaged(connection, table) }
    }

    func isStaged(_ connection: PostgresConnection, _ table: String) async throws -> Bool {
        try await !connection.fetch("SELECT 1 FROM \(staging)._sluice_staged WHERE name = $1", [.text(table)], logger: logger).rows.isEmpty
    }

    func exists(_ connection: PostgresConnection, schema: String, table: String) async throws -> Bool {
        try await !connection.fetch(
            """
            SELECT 1 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'p')
            """, [.text(schema), .text(table)], logger: logger
        ).rows.isEmpty
    }

    /// A table's or view's columns and their types as PostgreSQL spells them, in order,
    /// without the arrival column.
    func columnTypes(_ connection: PostgresConnection, schema: String, table: String) async throws -> [(name: String, type: String)] {
        try await connection.fetch(
            """
            SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
            JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> $3
            ORDER BY a.attnum
            """, [.text(schema), .text(table), .text(PostgresDialect.arrivalColumn)], logger: logger
        ).rows.map { row in
            guard case .text(let name) = row[0], case .text(let type) = row[1] else { return ("", "text") }
            return (name, type)
        }
    }

    func columns(of table: String) async throws -> [SluiceStorage.ColumnDefinition]? {
        try await pool.withConnection { connection in
            let schema: String
            if try await self.isStaged(connection, table) {
                schema = self.warehouse.viewSchema(self.runID)
            } else if try await self.exists(connection, schema: self.warehouse.orgSchema(self.org), table: table) {
                schema = self.warehouse.orgSchema(self.org)
            } else {
                return nil
            }
            return try await self.columnTypes(connection, schema: schema, table: table).map {
                SluiceStorage.ColumnDefinition($0.name, PostgresValue.columnType($0.type))
            }
        }
    }

    func query(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        try await pool.withConnection { connection in try await connection.fetch(sql, arguments, logger: self.logger) }
    }

    // MARK: Staging

    func stage(
        _ table: String, columns: [SluiceStorage.ColumnDefinition], change: StagedChange, primaryKey: [String], step: String?
    ) async throws -> String {
        guard Identifier.isValid(table) else { throw StepFailure.config("'\(table)' is not a valid table name") }
        let quoted = quote(table)
        var definitions = columns.map { "\(quote($0.name)) \(PostgresValue.sqlType($0.type))" }
        definitions.append("\(quote(PostgresDialect.arrivalColumn)) bigint GENERATED BY DEFAULT AS IDENTITY")
        if !primaryKey.isEmpty {
            // Unique, a null being one value, as SQLite's primary key on staged tables lets it be.
            definitions.append("UNIQUE \(warehouse.nullsNotDistinct ? "NULLS NOT DISTINCT " : "")(\(dialect.quotedList(primaryKey)))")
        }
        let statements = [
            "DROP VIEW IF EXISTS \(views).\(quoted)",
            "DROP TABLE IF EXISTS \(staging).\(quoted)",
            "CREATE TABLE \(staging).\(quoted) (\(definitions.joined(separator: ", ")))",
        ]
        try await gate.run {
            try await self.pool.transaction { connection in
                try await self.requireOwnership(connection)
                for statement in statements { try await connection.run(statement, logger: self.logger) }
                try await self.register(connection, table: table, change: change, step: step)
                try await self.createView(connection, table: table, change: change)
                try await self.touch(connection)
            }
        }
        noteWritten(table)
        return "\(staging).\(quoted)"
    }

    /// Records a staged table (name, change, detail, step), last in publishing order.
    func register(_ connection: PostgresConnection, table: String, change: StagedChange, step: String?) async throws {
        let (kind, detail) = change.stagingRecord
        try await connection.run(
            """
            INSERT INTO \(staging)._sluice_staged (name, change, detail, position, step)
            VALUES ($1, $2, $3, (SELECT coalesce(max(position), 0) + 1 FROM \(staging)._sluice_staged), $4)
            ON CONFLICT (name) DO UPDATE SET change = excluded.change, detail = excluded.detail, position = excluded.position,
                step = excluded.step
            """, [.text(table), .text(kind), .text(detail), step.map(WarehouseValue.text) ?? .null], logger: logger)
    }

    /// The staged tables and how each publishes, in publishing order.
    func stagedTables(_ connection: PostgresConnection) async throws -> [(table: String, change: StagedChange, step: String?)] {
        try await connection.fetch("SELECT name, change, detail, step FROM \(staging)._sluice_staged ORDER BY position", [], logger: logger)
            .rows.map { row in
                func text(_ value: WarehouseValue) -> String? { if case .text(let text) = value { text } else { nil } }
                return (text(row[0]) ?? "", StagedChange(stagingKind: text(row[1]) ?? "", detail: text(row[2]) ?? ""), text(row[3]))
            }
    }

    /// Notes that the staging was written, for retention (`StagingInfo.modifiedAt`).
    func touch(_ connection: PostgresConnection) async throws {
        try await connection.run(
            "UPDATE \(warehouse.registry) SET modified_at = $1 WHERE run_id = $2",
            [.real(Date().timeIntervalSince1970), .text(runID)], logger: logger)
    }

    /// (Re)creates the views of every staged table, against the published tables as they are now.
    func refreshViews(_ connection: PostgresConnection) async throws {
        for staged in try await stagedTables(connection) { try await createView(connection, table: staged.table, change: staged.change) }
    }

    /// The run's view of a staged table, under the table's own name in the run's view schema:
    /// what publishing now would leave in the table, as `SQLiteWorkspace.viewSQL` says.
    func createView(_ connection: PostgresConnection, table: String, change: StagedChange) async throws {
        let quoted = quote(table)
        let stagedColumns = try await columnTypes(connection, schema: warehouse.stagingSchema(runID), table: table).map(\.name)
        let publishedColumns =
            try await exists(connection, schema: warehouse.orgSchema(org), table: table)
            ? try await columnTypes(connection, schema: warehouse.orgSchema(org), table: table).map(\.name) : nil
        try await connection.run("DROP VIEW IF EXISTS \(views).\(quoted)", logger: logger)
        try await connection.run(
            "CREATE VIEW \(views).\(quoted) AS "
                + Self.viewBody(
                    staged: "\(staging).\(quoted)", published: "\(published).\(quoted)", change: change, stagedColumns: stagedColumns,
                    publishedColumns: publishedColumns), logger: logger)
    }

    static func viewBody(staged: String, published: String, change: StagedChange, stagedColumns: [String], publishedColumns: [String]?) -> String {
        let dialect = PostgresDialect()
        let list = dialect.quotedList(stagedColumns)
        let stagedRows = "SELECT \(list) FROM \(staged)"
        guard let publishedColumns else { return stagedRows }
        // A column the run adds reads as null in the published rows.
        let publishedList = stagedColumns.map { publishedColumns.contains($0) ? "p.\(dialect.quote($0))" : "NULL AS \(dialect.quote($0))" }
            .joined(separator: ", ")
        switch change {
        case .scratch, .replace:
            return stagedRows
        case .upsert(let key, let conflict):
            let match = key.map { dialect.nullSafeEquals("s.\(dialect.quote($0))", "p.\(dialect.quote($0))") }.joined(separator: " AND ")
            let wins = stagedWins(conflict, staged: "s", published: "p")
            return """
                SELECT \(publishedList) FROM \(published) AS p WHERE NOT EXISTS (SELECT 1 FROM \(staged) AS s WHERE \(match) AND \(wins))
                UNION ALL SELECT \(stagedColumns.map { "s.\(dialect.quote($0))" }.joined(separator: ", ")) FROM \(staged) AS s
                WHERE NOT EXISTS (SELECT 1 FROM \(published) AS p WHERE \(match) AND NOT (\(wins)))
                """
        case .replacePartitions(let column):
            let partition = dialect.quote(column)
            return """
                SELECT \(publishedList) FROM \(published) AS p
                WHERE p.\(partition) NOT IN (SELECT \(partition) FROM \(staged) WHERE \(partition) IS NOT NULL)
                UNION ALL \(stagedRows)
                """
        }
    }

    /// When a staged row (alias `staged`) replaces the published row with its key (alias
    /// `published`): the one rule the run's views and its publish both apply.
    static func stagedWins(_ conflict: KeyConflict, staged: String, published: String) -> String {
        switch conflict {
        case .replace:
            return "true"
        case .keepPublished:
            return "false"
        case .latest(let column):
            let quoted = PostgresDialect().quote(column)
            return "(\(staged).\(quoted) IS NOT NULL AND (\(published).\(quoted) IS NULL OR \(staged).\(quoted) > \(published).\(quoted)))"
        }
    }

    /// The table of a name `stage` returned (`"schema"."table"`), checked to be this run's.
    func stagedTable(_ staged: String) throws -> String {
        let prefix = staging + "."
        guard staged.hasPrefix(prefix) else {
            throw StepFailure(.invalidConfig, "\(staged) is not a staged table of run \(runID)")
        }
        let quoted = staged.dropFirst(prefix.count)
        let name = quoted.hasPrefix("\"") && quoted.hasSuffix("\"") && quoted.count >= 2 ? String(quoted.dropFirst().dropLast()) : String(quoted)
        guard Identifier.isValid(name) else { throw StepFailure(.invalidConfig, "\(staged) is not a staged table of run \(runID)") }
        return name
    }

    /// Bulk-loads with COPY FROM STDIN (`copy(into:columns:first:batches:)`), in one transaction.
    func insert(into staged: String, columns: [String], rows: [[WarehouseValue]]) async throws {
        guard !rows.isEmpty else { return }
        try await copy(into: staged, columns: columns, first: rows, batches: nil)
    }

    /// A whole load in one transaction, as few COPYs as the batches allow: the server reads
    /// the rows as they come, rather than starting and ending a transaction for each batch.
    func insert(into staged: String, columns: [String], batches: RowBatches) async throws {
        guard let first = try await batches.next() else { return }
        try await copy(into: staged, columns: columns, first: first, batches: batches)
    }

    /// Writes `first` and every batch of `batches` into a staged table with COPY FROM STDIN
    /// in text format, sent in chunks of about 64 KiB (the server reads the first rows while
    /// the rest are being encoded), in one transaction.
    ///
    /// A COPY goes on while batches are waiting and ends when none is: the next one is waited
    /// for outside it, and starts another. A slow source (an API a page at a time) thus never
    /// keeps a COPY open while nothing comes, and a connection that closes meanwhile (the
    /// server restarted) fails the next statement as any query would: postgres-nio's COPY does
    /// not survive its connection closing under it (what it writes then is never answered).
    ///
    /// The rows carry their arrival numbers, counted on from the column's own sequence, rather
    /// than the server drawing one a row (a quarter of a load's time on the server); the
    /// sequence is moved past them afterwards, so writers that leave the column to its default
    /// (SQL steps, procedures) number after them. A staged table has one writer at a time.
    private func copy(into staged: String, columns: [String], first: [[WarehouseValue]], batches: RowBatches?) async throws {
        let table = try stagedTable(staged)
        for column in columns where !Identifier.isValid(column) {
            throw StepFailure.config("'\(column)' is not a valid column name")
        }
        let schema = staging
        let arrival = PostgresDialect.arrivalColumn
        try await pool.transaction { connection in
            try await self.requireOwnership(connection)
            let found = try await connection.fetch(
                "SELECT sequence, nextval(sequence) FROM (SELECT pg_get_serial_sequence($1, $2) AS sequence) AS s",
                [.text("\(schema).\(self.quote(table))"), .text(arrival)], logger: self.logger)
            guard let row = found.rows.first, case .text(let sequence) = row[0], case .integer(let start) = row[1] else {
                throw StepFailure(.invalidRun, "\(staged) has no arrival column to number its rows by")
            }
            // postgres-nio's COPY names the table alone: the staging schema is the search path.
            try await connection.run("SET LOCAL search_path TO \(schema)", logger: self.logger)
            // The writer closure runs before copyFrom returns: it updates these in place.
            var next = start
            var finished = batches == nil
            var pending: [[WarehouseValue]]? = first
            while let rows = pending {
                try self.requireOpen(connection)
                try await connection.copyFrom(table: table, columns: columns + [arrival], logger: self.logger) { writer in
                    var buffer = ByteBuffer()
                    buffer.reserveCapacity(Self.copyChunk + (1 << 12))
                    var number = next
                    var batch = rows
                    while true {
                        for row in batch {
                            for value in row {
                                PostgresValue.appendCopyField(value, to: &buffer)
                                buffer.writeInteger(UInt8(ascii: "\t"))
                            }
                            PostgresValue.appendDecimal(number, to: &buffer)
                            buffer.writeInteger(UInt8(ascii: "\n"))
                            number += 1
                            if buffer.readableBytes >= Self.copyChunk {
                                try await writer.write(buffer)
                                buffer.clear()
                            }
                        }
                        guard let batches else { break }
                        switch try await batches.nextIfReady() {
                        case .rows(let next):
                            batch = next
                            continue
                        case .none:
                            break
                        case .finished:
                            finished = true
                        }
                        break
                    }
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                    next = number
                }
                pending = finished ? nil : try await batches?.next()
            }
            self.noteWritten(table)
            if next > start + 1 {
                try await connection.run("SELECT setval($1, $2)", [.text(sequence), .integer(next - 1)], logger: self.logger)
            }
            try await self.touch(connection)
        }
    }

    /// Fails, transiently, once a load's connection has closed (the server restarted, the
    /// network failed) while the load waited for its next batch: postgres-nio never answers
    /// what is written to a closed connection, so the load would wait forever instead of
    /// failing and being retried.
    func requireOpen(_ connection: PostgresConnection) throws {
        guard connection.isClosed else { return }
        throw StepFailure(
            .warehouseUnavailable,
            "the connection to PostgreSQL at \(pool.settings.server) was lost during the load of run \(runID); nothing of the load was kept",
            transient: true)
    }

    /// How much of a load `copy` encodes before sending it.
    static let copyChunk = 1 << 16

    func execute(_ sql: String, _ arguments: [WarehouseValue]) async throws -> Int {
        try await pool.transaction { connection in
            try await self.requireOwnership(connection)
            // A step's statement sorts or hashes a whole batch (a merge sorts it by key): room
            // for 100,000 rows of a wide table in memory rather than in files.
            try await connection.run("SET LOCAL work_mem = '64MB'", logger: self.logger)
            let changed = try await connection.run(sql, arguments, logger: self.logger)
            try await self.touch(connection)
            self.noteWritten(nil)
            return changed
        }
    }

    // MARK: Cursors

    func cursor(_ key: String) async throws -> String? {
        try await pool.withConnection { connection in
            let found = try await connection.fetch(
                "SELECT value FROM \(self.published)._sluice_cursors WHERE key = $1", [.text(key)], logger: self.logger)
            if case .text(let value) = found.rows.first?.first { return value }
            return nil
        }
    }

    func stageCursor(_ key: String, value: String) async throws {
        try await pool.transaction { connection in
            try await self.requireOwnership(connection)
            try await connection.run(
                """
                INSERT INTO \(self.staging)._sluice_cursors (key, value) VALUES ($1, $2)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """, [.text(key), .text(value)], logger: self.logger)
            try await self.touch(connection)
        }
    }

    // MARK: Owning the staging

    /// Fails with `.stagingSuperseded` unless this opening still owns the staging: the first
    /// statement of every transaction that writes into the run's schemas. `FOR SHARE` keeps
    /// the token's row locked until the transaction ends, so an opening that takes the staging
    /// over (its UPDATE of the token in `open`) waits for the writes under way to end, and
    /// every write that begins after it finds the new token. One statement on a one-row table,
    /// a round trip per write transaction (a load is one, however many rows it streams).
    func requireOwnership(_ connection: PostgresConnection) async throws {
        let owner: QueryResult
        do {
            owner = try await connection.fetch("SELECT token FROM \(staging)._sluice_owner FOR SHARE", [], logger: logger)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
            // No staging any more: the opening that took it over published or discarded it.
            throw StepFailure.stagingGone(runID: runID)
        }
        guard owner.rows.first?.first == .text(ownerToken) else { throw StepFailure.stagingSuperseded(runID: runID) }
    }

    // MARK: Holding, publishing, ending

    func holdTargets() async throws {
        try await hold.hold()
        // What other runs published before the hold shows in the run's views from now on.
        try await gate.run {
            try await self.pool.transaction { connection in
                try await self.requireOwnership(connection)
                try await self.refreshViews(connection)
            }
        }
    }

    func discard() async throws {
        let statements = warehouse.dropStagingStatements(runID: runID)
        try await gate.run {
            try await self.pool.transaction { connection in
                // The staging of an opening that took it over is that opening's to keep.
                try await self.requireOwnership(connection)
                for statement in statements { try await connection.run(statement.sql, statement.arguments, logger: self.logger) }
            }
        }
        await finish()
    }

    func close() async {
        await finish()
    }

    /// Lets go of the tables and of the staging (closing the session's connection lets go of
    /// every lock it holds).
    func finish() async {
        await hold.release()
        await session.close()
    }
}

/// Which staged tables were written since they were last analyzed: each write is numbered,
/// and a table is due when a write that may have touched it came after its last analysis.
struct WriteLog {
    private var count = 0
    private var lastWrite: [String: Int] = [:]
    private var lastWriteOfAny = 0
    private var lastAnalysis: [String: Int] = [:]

    mutating func note(_ table: String?) {
        count += 1
        if let table { lastWrite[table] = count } else { lastWriteOfAny = count }
    }

    /// Whether `table` is due; if so, it counts as analyzed from now on.
    mutating func takeAnalysis(of table: String) -> Bool {
        let written = max(lastWrite[table] ?? 0, lastWriteOfAny)
        guard written > (lastAnalysis[table] ?? 0) else { return false }
        lastAnalysis[table] = count
        return true
    }
}

/// Lets one task at a time through, in the order they came, without blocking a thread.
actor PostgresGate {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await enter()
        do {
            let result = try await body()
            leave()
            return result
        } catch {
            leave()
            throw error
        }
    }

    private func enter() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func leave() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
