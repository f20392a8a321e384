import Foundation
import GRDB
import GRDBSQLite
import SluiceModel
import SluiceStorage

/// The embedded warehouse: one SQLite file (WAL) per org under `root/orgs/<org>/`, and a
/// staging file per run beside it that is attached to the run's connection as `stage`. A run's
/// steps write only into `stage`; `publish` applies the staged changes to the org's file in
/// one transaction. Killing the process at any point leaves the org's tables as they were.
public struct SQLiteWarehouse: Warehouse {
    public let root: URL
    /// How long a run waits for another writer (another run publishing) before failing.
    public let busyTimeout: Duration
    /// The most an org's warehouse file may grow to, if limited: a publish that would pass it
    /// fails like a full disk (SQLITE_FULL) and changes nothing.
    public let maxBytesPerOrg: Int?
    /// The SQLite page cache of one run's connection, split evenly between the warehouse, the
    /// staging and temp (sorts). A process that executes several runs at once gives each a
    /// share of what it can spare (`sluice serve --run-cache-mib`).
    public let runCacheBytes: Int
    /// 144 MiB: 48 MiB for each of the three, for `sluice run`, which executes one run.
    public static let defaultRunCacheBytes = 144 << 20

    public init(
        root: URL, busyTimeout: Duration = .seconds(30), maxBytesPerOrg: Int? = nil,
        runCacheBytes: Int = SQLiteWarehouse.defaultRunCacheBytes
    ) {
        self.root = root
        self.busyTimeout = busyTimeout
        self.maxBytesPerOrg = maxBytesPerOrg
        self.runCacheBytes = runCacheBytes
    }

    func orgFolder(_ org: String) throws -> URL {
        guard Identifier.isValid(org) else {
            throw StepFailure(.invalidOrg, "'\(org)' is not a valid org name: use letters, digits and _")
        }
        return root.appendingPathComponent("orgs").appendingPathComponent(org)
    }

    public func warehousePath(org: String) throws -> String {
        try orgFolder(org).appendingPathComponent("warehouse.sqlite").path
    }

    public func stagingPath(org: String, runID: String) throws -> String {
        guard Identifier.isValid(runID) else { throw StepFailure(.invalidRun, "'\(runID)' is not a run id") }
        return try orgFolder(org).appendingPathComponent("staging").appendingPathComponent("\(runID).sqlite").path
    }

    /// How the files of the warehouse are created (owner-only unless `.sluice/` is shared with a group).
    var files: DataFiles { DataFiles(root: root) }

    /// The folder of an org's lock files: its tables' and its runs' stagings'.
    func locksFolder(org: String) throws -> URL {
        try orgFolder(org).appendingPathComponent("locks")
    }

    func stagingLockPath(org: String, runID: String) throws -> String {
        guard Identifier.isValid(runID) else { throw StepFailure(.invalidRun, "'\(runID)' is not a run id") }
        return try locksFolder(org: org).appendingPathComponent("run.\(runID).lock").path
    }

    public func workspace(org: String, runID: String, targets: [String], existing: Bool) async throws -> any RunWorkspace {
        let folder = try orgFolder(org)
        try files.createFolder(folder.appendingPathComponent("staging"))
        try files.createFolder(try locksFolder(org: org))
        let staging = try stagingPath(org: org, runID: runID)
        // Held while the workspace is open: staging retention removes only stagings nobody holds.
        let use = try StagingUse(path: try stagingLockPath(org: org, runID: runID), files: files)
        let reopened = FileManager.default.fileExists(atPath: staging)
        if existing && !reopened {
            throw StepFailure(
                .notResumable,
                """
                the staging of run \(runID) was removed (a failed run keeps it for SLUICE_STAGING_RETENTION, 7 days by \
                default); start a new run instead
                """)
        }
        let warehouse = try warehousePath(org: org)
        try files.createFile(warehouse)
        try files.createFile(staging)
        let hold = TargetHold(folder: try locksFolder(org: org), files: files, tables: targets, runID: runID)
        do {
            return try SQLiteWorkspace(
                warehouse: warehouse, staging: staging, reopened: reopened, busyTimeout: busyTimeout,
                maxBytes: maxBytesPerOrg, hold: hold, use: use, locksFolder: try locksFolder(org: org),
                files: files, cacheBytes: runCacheBytes)
        } catch {
            throw SQLiteWorkspace.failure(from: error, warehouse: warehouse)
        }
    }

    public func wasPublished(org: String, runID: String) async throws -> Bool {
        let path = try warehousePath(org: org)
        guard FileManager.default.fileExists(atPath: path) else { return false }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try await queue.read { db in
            guard try db.tableExists("_sluice_published") else { return false }
            return try Bool.fetchOne(db, sql: "SELECT 1 FROM _sluice_published WHERE run_id = ?", arguments: [runID]) ?? false
        }
    }

    public func query(org: String, _ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        let path = try warehousePath(org: org)
        guard FileManager.default.fileExists(atPath: path) else {
            throw StepFailure(.noWarehouse, "org '\(org)' has no warehouse yet (no run has published for it)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.prepareDatabase { db in SQLiteDecimalFunctions.register(on: db.sqliteConnection) }
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            return try await queue.read { db in try SQLiteWorkspace.fetch(db, sql, arguments) }
        } catch {
            throw SQLiteWorkspace.failure(from: error, warehouse: path)
        }
    }

    public func stagings() async throws -> [StagingInfo] {
        let manager = FileManager.default
        let orgs = root.appendingPathComponent("orgs")
        var found: [StagingInfo] = []
        for org in (try? manager.contentsOfDirectory(atPath: orgs.path)) ?? [] where Identifier.isValid(org) {
            let folder = orgs.appendingPathComponent(org).appendingPathComponent("staging")
            for name in (try? manager.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasSuffix(".sqlite") {
                let runID = String(name.dropLast(".sqlite".count))
                guard Identifier.isValid(runID) else { continue }
                // The file and its journal or WAL files.
                var bytes: Int64 = 0
                var modified = Date.distantPast
                for suffix in ["", "-journal", "-wal", "-shm"] {
                    guard let attributes = try? manager.attributesOfItem(atPath: folder.appendingPathComponent(name + suffix).path)
                    else { continue }
                    bytes += (attributes[.size] as? NSNumber)?.int64Value ?? 0
                    if let date = attributes[.modificationDate] as? Date, date > modified { modified = date }
                }
                found.append(StagingInfo(org: org, runID: runID, bytes: bytes, modifiedAt: modified))
            }
        }
        return found.sorted { ($0.org, $0.runID) < ($1.org, $1.runID) }
    }

    public func hasStaging(org: String, runID: String) async throws -> Bool {
        FileManager.default.fileExists(atPath: try stagingPath(org: org, runID: runID))
    }

    public func removeStaging(org: String, runID: String) async throws -> Bool {
        // A run that has the staging open holds its lock: leave that staging alone.
        guard let removal = try StagingUse(exclusive: try stagingLockPath(org: org, runID: runID), files: files) else { return false }
        SQLiteWorkspace.removeFiles(at: try stagingPath(org: org, runID: runID))
        removal.removeLockFile()
        return true
    }
}

/// A run's connection: the org's warehouse as `main`, the run's staging file as `stage`, and
/// temporary views that let SQL written against table names (procedures) read the run's view.
/// Procedures themselves run on a sandboxed connection of their own (`SQLiteSandbox`).
final class SQLiteWorkspace: RunWorkspace {
    let queue: DatabaseQueue
    let warehousePath: String
    let stagingPath: String
    let busyTimeout: Duration
    let dialect: any SQLDialect = SQLiteDialect()
    let runID: String
    /// The run's hold on its target tables.
    let hold: TargetHold
    /// The run's hold on its staging, against retention.
    let use: StagingUse
    let locksFolder: URL
    let files: DataFiles
    /// The run's share of page cache (see `SQLiteWarehouse.runCacheBytes`).
    let cacheBytes: Int
    /// What this opening wrote into the staging's `_sluice_owner`: every write into the staging
    /// and the publish require it there still (`requireOwnership`).
    let ownerToken: String

    init(
        warehouse: String, staging: String, reopened: Bool, busyTimeout: Duration, maxBytes: Int?, hold: TargetHold,
        use: StagingUse, locksFolder: URL, files: DataFiles, cacheBytes: Int
    ) throws {
        runID = URL(fileURLWithPath: staging).deletingPathExtension().lastPathComponent
        let ownerToken = UUID().uuidString
        self.ownerToken = ownerToken
        warehousePath = warehouse
        stagingPath = staging
        self.busyTimeout = busyTimeout
        self.hold = hold
        self.use = use
        self.locksFolder = locksFolder
        self.files = files
        self.cacheBytes = cacheBytes
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.timeInterval)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA temp_store = FILE")
            SQLiteDecimalFunctions.register(on: db.sqliteConnection)
        }
        queue = try DatabaseQueue(path: warehouse, configuration: configuration)
        // WAL lets readers (`sluice query`, other runs) read while a run publishes. SQLite
        // answers a connection that switches a new file to WAL while another does the same
        // "database is locked" at once, without the busy timeout, so the runs of an org that
        // start together on a new warehouse take turns at it.
        try FileLock.withExclusive(warehouse + "-open.lock", code: "warehouse_unavailable", mode: files.fileMode) {
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        }
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS stage", arguments: [staging])
            // Staging is written once and read by its own run only: a rollback journal that is
            // not synced. A killed process leaves a journal that rolls the file back when it is
            // opened again, without WAL's second copy of every page. It is not proof against
            // the machine losing power: a resumed run (the only reader of an old staging)
            // checks the file first.
            try db.execute(sql: "PRAGMA stage.journal_mode = TRUNCATE")
            try db.execute(sql: "PRAGMA stage.synchronous = OFF")
            if reopened {
                let problems = try String.fetchAll(db, sql: "PRAGMA stage.quick_check(3)")
                guard problems == ["ok"] else {
                    throw StepFailure(
                        .stagingDamaged,
                        """
                        the staging of run \(URL(fileURLWithPath: staging).deletingPathExtension().lastPathComponent) \
                        is damaged (\(problems.joined(separator: "; "))); start a new run
                        """)
                }
            }
            // Merges and publishes walk B-trees of the whole batch: a third of the run's cache
            // (48 MiB by default) each for the warehouse, the staging and temp (sorts), instead
            // of SQLite's 2 MiB, keeps most of them in memory; memory stays bounded whatever the
            // input.
            for schema in ["main", "stage", "temp"] { try db.execute(sql: "PRAGMA \(schema).cache_size = -\(max(1, cacheBytes / 3 / 1024))") }
            if let maxBytes {
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA main.page_size") ?? 4096
                try db.execute(sql: "PRAGMA main.max_page_count = \(max(1, maxBytes / pageSize))")
            }
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS stage._sluice_staged (
                        name TEXT PRIMARY KEY, change TEXT NOT NULL, detail TEXT NOT NULL, position INTEGER NOT NULL, step TEXT)
                    """)
            // Whose the staging is now: every opening takes it over with a token of its own, and
            // writes and publish commit only under the token they opened with. A process that
            // stalled past its lease while another (a worker taking the run over) reopened the
            // staging finds it superseded, and writes and publishes nothing more. One
            // transaction, so that the table is never seen without a token.
            try db.inTransaction(.deferred) {
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS stage._sluice_owner (token TEXT NOT NULL)")
                try db.execute(sql: "DELETE FROM stage._sluice_owner")
                try db.execute(sql: "INSERT INTO stage._sluice_owner (token) VALUES (?)", arguments: [ownerToken])
                return .commit
            }
            // Stagings from before steps were recorded with their tables.
            if try !Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info('_sluice_staged', 'stage')").contains(where: { $0["name"] == "step" }) {
                try db.execute(sql: "ALTER TABLE stage._sluice_staged ADD COLUMN step TEXT")
            }
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS stage._sluice_cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            // A resumed run finds its staged tables again: recreate their views.
            try Self.createViews(db)
        }
    }

    // MARK: Errors

    /// The failure a user can act on for an SQLite error: a full disk and a damaged file get
    /// codes of their own and a remedy; a database locked past the busy timeout is transient.
    static func failure(from error: any Error, warehouse: String) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        let folder = (warehouse as NSString).deletingLastPathComponent
        switch error.resultCode {
        case .SQLITE_FULL:
            return StepFailure(
                .warehouseFull,
                """
                the warehouse could not grow: the disk holding \(folder) is full, or the org reached its size limit \
                (SQLite: \(error.message ?? "database or disk is full")); free space there and run again \
                (sluice run --resume keeps what succeeded)
                """)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StepFailure(
                .warehouseCorrupt,
                """
                the warehouse file \(warehouse) is damaged (SQLite: \(error.message ?? "malformed")); restore it from a \
                backup, or save what is readable with: sqlite3 \(warehouse) .recover | sqlite3 recovered.sqlite
                """)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StepFailure(.databaseLocked, "the warehouse stayed locked by another writer: \(error.message ?? "locked")", transient: true)
        default:
            return error
        }
    }

    /// Runs a database access, its errors made into failures a user can act on.
    private func access<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw Self.failure(from: error, warehouse: warehousePath)
        }
    }

    // MARK: Reading

    func source(_ table: String) async throws -> String? {
        try await access { try await queue.read { db in try Self.source(db, table) } }
    }

    func isStaged(_ table: String) async throws -> Bool {
        try await access {
            try await queue.read { db in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM stage._sluice_staged WHERE name = ?", arguments: [table]) ?? false
            }
        }
    }

    /// The staged table itself when it holds the whole content (so it has a rowid, which
    /// orders rows as they arrived), the composed view for upserts and partitions, else the
    /// published table.
    static func source(_ db: Database, _ table: String) throws -> String? {
        let quoted = SQLiteDialect().quote(table)
        if let kind = try String.fetchOne(db, sql: "SELECT change FROM stage._sluice_staged WHERE name = ?", arguments: [table]) {
            return kind == "scratch" || kind == "replace" ? "stage.\(quoted)" : "temp.\(quoted)"
        }
        if try db.tableExists(table, in: "main") { return "main.\(quoted)" }
        return nil
    }

    func columns(of table: String) async throws -> [SluiceStorage.ColumnDefinition]? {
        try await access {
            try await queue.read { db in
                guard let source = try Self.source(db, table) else { return nil }
                let schema = String(source.prefix { $0 != "." })
                return try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?, ?)", arguments: [table, schema]).map { row in
                    SluiceStorage.ColumnDefinition(row["name"], ColumnType(sqliteType: row["type"]))
                }
            }
        }
    }

    func query(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        try await access { try await queue.read { db in try Self.fetch(db, sql, arguments) } }
    }

    static func fetch(_ db: Database, _ sql: String, _ arguments: [WarehouseValue]) throws -> QueryResult {
        let statement = try db.makeStatement(sql: sql)
        let columns = statement.columnNames
        // Declared types of the columns the result reads as they are (nil for computed ones).
        let types = (0..<Int32(columns.count)).map { index in
            sqlite3_column_decltype(statement.sqliteStatement, index).map { ColumnType(sqliteType: String(cString: $0)) }
        }
        let rows = try Row.fetchAll(statement, arguments: StatementArguments(arguments.map(\.databaseValue))).map { row in
            (0..<row.count).map { WarehouseValue(row[$0] as DatabaseValue) }
        }
        return QueryResult(columns: columns, rows: rows, types: types)
    }

    // MARK: Staging

    func stage(
        _ table: String, columns: [SluiceStorage.ColumnDefinition], change: StagedChange,
        primaryKey: [String], step: String?
    ) async throws -> String {
        try await access {
            try await queue.writeWithoutTransaction { db in
                try db.inTransaction(.deferred) {
                    try Self.requireOwnership(db, runID: self.runID, token: self.ownerToken)
                    let quoted = self.dialect.quote(table)
                    try db.execute(sql: "DROP VIEW IF EXISTS temp.\(quoted)")
                    try db.execute(sql: "DROP TABLE IF EXISTS stage.\(quoted)")
                    let definitions = columns.map { "\(self.dialect.quote($0.name)) \($0.type.sqliteType)" }.joined(separator: ", ")
                    let key = primaryKey.isEmpty ? "" : ", PRIMARY KEY (\(self.dialect.quotedList(primaryKey)))"
                    try db.execute(sql: "CREATE TABLE stage.\(quoted) (\(definitions)\(key))")
                    try Self.register(db, table: table, change: change, step: step)
                    try Self.createView(db, table: table, change: change)
                    return .commit
                }
                return "stage.\(self.dialect.quote(table))"
            }
        }
    }

    /// Records a staged table (name, change, detail, step) and how it publishes, last in
    /// publishing order; run on either connection.
    static let registration = """
        INSERT INTO stage._sluice_staged (name, change, detail, position, step)
        VALUES (?1, ?2, ?3, (SELECT coalesce(max(position), 0) + 1 FROM stage._sluice_staged), ?4)
        ON CONFLICT (name) DO UPDATE SET change = excluded.change, detail = excluded.detail, position = excluded.position,
            step = excluded.step
        """

    private static func register(_ db: Database, table: String, change: StagedChange, step: String?) throws {
        let (kind, detail) = change.stagingRecord
        try db.execute(sql: registration, arguments: [table, kind, detail, step])
    }

    /// The staged tables and how each publishes, in publishing order.
    private static func stagedTables(_ db: Database) throws -> [(table: String, change: StagedChange, step: String?)] {
        try Row.fetchAll(db, sql: "SELECT name, change, detail, step FROM stage._sluice_staged ORDER BY position").map { row in
            (row["name"], StagedChange(stagingKind: row["change"], detail: row["detail"]), row["step"])
        }
    }

    /// (Re)creates the views of every staged table, against the published tables as they are now.
    static func createViews(_ db: Database) throws {
        db.clearSchemaCache()
        for staged in try stagedTables(db) { try createView(db, table: staged.table, change: staged.change) }
    }

    /// The run's view of a staged table, under the table's own name in `temp`, which SQLite
    /// searches before `main`: the staged rows, composed with the published ones for upserts
    /// and partitions.
    static func createView(_ db: Database, table: String, change: StagedChange) throws {
        let quoted = SQLiteDialect().quote(table)
        try db.execute(sql: "DROP VIEW IF EXISTS temp.\(quoted)")
        let stagedColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'stage')", arguments: [table])
        let publishedColumns =
            try db.tableExists(table, in: "main")
            ? try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main')", arguments: [table]) : nil
        try db.execute(sql: viewSQL(table: table, change: change, stagedColumns: stagedColumns, publishedColumns: publishedColumns))
    }

    /// The CREATE TEMP VIEW of a staged table. `publishedColumns` is nil when nothing is
    /// published under the name. The view shows what publishing now would leave in the table,
    /// so the run's later steps read what it will publish: for upserts, a staged row shows only
    /// where it wins under the table's `KeyConflict` rule.
    static func viewSQL(table: String, change: StagedChange, stagedColumns: [String], publishedColumns: [String]?) -> String {
        let dialect = SQLiteDialect()
        let quoted = dialect.quote(table)
        let staged = "stage.\(quoted)"
        let published = "main.\(quoted)"
        let list = dialect.quotedList(stagedColumns)
        let stagedRows = "SELECT \(list) FROM \(staged)"
        guard let publishedColumns else { return "CREATE TEMP VIEW \(quoted) AS \(stagedRows)" }
        // A column the run adds reads as null in the published rows.
        let publishedList = stagedColumns.map { publishedColumns.contains($0) ? "p.\(dialect.quote($0))" : "NULL AS \(dialect.quote($0))" }
            .joined(separator: ", ")
        let body: String
        switch change {
        case .scratch, .replace:
            body = stagedRows
        case .upsert(let key, let conflict):
            let match = key.map { dialect.nullSafeEquals("s.\(dialect.quote($0))", "p.\(dialect.quote($0))") }.joined(separator: " AND ")
            let wins = stagedWins(conflict, staged: "s", published: "p")
            body = """
                SELECT \(publishedList) FROM \(published) AS p WHERE NOT EXISTS (SELECT 1 FROM \(staged) AS s WHERE \(match) AND \(wins))
                UNION ALL SELECT \(stagedColumns.map { "s.\(dialect.quote($0))" }.joined(separator: ", ")) FROM \(staged) AS s
                WHERE NOT EXISTS (SELECT 1 FROM \(published) AS p WHERE \(match) AND NOT (\(wins)))
                """
        case .replacePartitions(let column):
            let partition = dialect.quote(column)
            body = """
                SELECT \(publishedList) FROM \(published) AS p
                WHERE p.\(partition) NOT IN (SELECT \(partition) FROM \(staged) WHERE \(partition) IS NOT NULL)
                UNION ALL \(stagedRows)
                """
        }
        return "CREATE TEMP VIEW \(quoted) AS \(body)"
    }

    /// When a staged row (alias `staged`) replaces the published row with its key (alias
    /// `published`), as SQL: the one rule the run's views and its publish both apply.
    static func stagedWins(_ conflict: KeyConflict, staged: String, published: String) -> String {
        switch conflict {
        case .replace:
            return "1"
        case .keepPublished:
            return "0"
        case .latest(let column):
            let quoted = SQLiteDialect().quote(column)
            return "(\(staged).\(quoted) IS NOT NULL AND (\(published).\(quoted) IS NULL OR \(staged).\(quoted) > \(published).\(quoted)))"
        }
    }

    func insert(into staged: String, columns: [String], rows: [[WarehouseValue]]) async throws {
        guard !rows.isEmpty else { return }
        try await stagingWrite { db in
            let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
            let statement = try db.cachedStatement(sql: "INSERT INTO \(staged) (\(self.dialect.quotedList(columns))) VALUES (\(placeholders))")
            // Bound straight through SQLite's C API: building GRDB arguments per row cost more
            // than the insert itself. Text is bound as transient, so SQLite copies it.
            let handle = statement.sqliteStatement
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            for row in rows {
                sqlite3_reset(handle)
                for (index, value) in row.enumerated() {
                    let position = Int32(index + 1)
                    switch value {
                    case .null: sqlite3_bind_null(handle, position)
                    case .integer(let number): sqlite3_bind_int64(handle, position, number)
                    case .real(let number): sqlite3_bind_double(handle, position, number)
                    case .text(let text) where text.isEmpty:
                        // An empty buffer has no address, and a null pointer would bind NULL.
                        sqlite3_bind_text(handle, position, "", 0, transient)
                    case .text(let text):
                        var text = text
                        text.withUTF8 { bytes in
                            _ = sqlite3_bind_text(
                                handle, position, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                                Int32(bytes.count), transient)
                        }
                    case .blob(let bytes):
                        bytes.withUnsafeBytes { buffer in
                            _ = sqlite3_bind_blob(handle, position, buffer.baseAddress, Int32(buffer.count), transient)
                        }
                    }
                }
                let status = sqlite3_step(handle)
                guard status == SQLITE_DONE else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: status), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
            }
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
    }

    func execute(_ sql: String, _ arguments: [WarehouseValue]) async throws -> Int {
        try await stagingWrite { db in
            try db.execute(sql: sql, arguments: StatementArguments(arguments.map(\.databaseValue)))
            return db.changesCount
        }
    }

    // MARK: Procedures

    /// SQLite prepares each statement against in-memory tables made from the schemas, as lint
    /// does, so a run and lint agree on what a procedure touches.
    func checkProcedure(fileAt url: URL, path: String, schemas: SchemaCatalog) -> ProcedureInfo {
        ProcedureChecker(schemas: schemas).check(fileAt: url, path: path)
    }

    func runScript(
        _ sql: String, named: [String: WarehouseValue], writes: [(table: String, columns: [SluiceStorage.ColumnDefinition])],
        step: String?
    ) async throws -> Int {
        try await sandboxed { db, sandbox in
            // Unqualified names find `temp` first: a copy of each target under its own name in
            // TEMP takes the script's writes; the engine copies it into the staging afterwards.
            try sandbox.exec("BEGIN")
            do {
                try self.requireOwnership(sandbox)
                var typed: [String: [SluiceStorage.ColumnDefinition]] = [:]
                for (table, columns) in writes {
                    let quoted = self.dialect.quote(table)
                    if let current = try Self.source(db, table) {
                        // The run's view of it (which may be the composed view under its own
                        // name) becomes a table under that name, with its columns' types (and
                        // so decimals' collation), which `CREATE TABLE … AS` would drop.
                        let found = try Self.columns(
                            of: table, in: String(current.prefix { $0 != "." }), sandbox: sandbox, preferring: columns)
                        typed[table] = found
                        try sandbox.exec(
                            """
                            CREATE TEMP TABLE _sluice_copy (\(Self.definitions(found)));
                            INSERT INTO temp._sluice_copy SELECT * FROM \(current);
                            DROP VIEW IF EXISTS temp.\(quoted);
                            ALTER TABLE temp._sluice_copy RENAME TO \(quoted)
                            """)
                    } else {
                        typed[table] = columns
                        try sandbox.exec("DROP VIEW IF EXISTS temp.\(quoted)")
                        try sandbox.exec("CREATE TEMP TABLE \(quoted) (\(Self.definitions(columns)))")
                    }
                }
                let changed = try sandbox.run(sql, policy: .script, named: named).changed
                // The script's result replaces the table when the run publishes. Decimals it
                // computed in floating point (`a + b` on decimal text) are stored as a decimal
                // column stores a computed value: canonical text, rounded to the scale.
                for (table, _) in writes {
                    let quoted = self.dialect.quote(table)
                    let (kind, detail) = StagedChange.replace.stagingRecord
                    // The table as the script left it (it may have added columns).
                    let columns = try Self.columns(of: table, in: "temp", sandbox: sandbox, preferring: typed[table] ?? [])
                    let select = columns.map { column in
                        column.type.decimalLimits.map { self.dialect.storeDecimal(self.dialect.quote(column.name), $0) }
                            ?? self.dialect.quote(column.name)
                    }
                    try sandbox.exec("DROP TABLE IF EXISTS stage.\(quoted)")
                    try sandbox.exec("CREATE TABLE stage.\(quoted) (\(Self.definitions(columns)))")
                    try sandbox.exec(
                        "INSERT INTO stage.\(quoted) (\(self.dialect.quotedList(columns.map(\.name)))) SELECT \(select.joined(separator: ", ")) FROM temp.\(quoted)"
                    )
                    try sandbox.exec("DROP TABLE temp.\(quoted)")
                    _ = try sandbox.rows(Self.registration, [.text(table), .text(kind), .text(detail), step.map(WarehouseValue.text) ?? .null])
                }
                try sandbox.exec("COMMIT")
                db.clearSchemaCache()
                for (table, _) in writes { try Self.createView(db, table: table, change: .replace) }
                return changed
            } catch {
                try? sandbox.exec("ROLLBACK")
                throw error
            }
        }
    }

    func queryProcedure(_ sql: String, _ arguments: [WarehouseValue], maxRows: Int?) async throws -> QueryResult {
        try await sandboxed { _, sandbox in
            try sandbox.run(sql, policy: .query, positional: arguments, collect: true, oneStatement: true, maxRows: maxRows).result
                ?? QueryResult(columns: [], rows: [])
        }
    }

    func insertProcedureRows(into staged: String, columns: [String], select: String, _ arguments: [WarehouseValue]) async throws -> Int {
        let parts = staged.split(separator: ".", maxSplits: 1).map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        let policy = ProcedureSandbox(writesTemp: false, insertsInto: [.init(schema: parts.first ?? "stage", table: parts.last ?? staged)])
        return try await sandboxed { _, sandbox in
            try sandbox.exec("BEGIN")
            do {
                try self.requireOwnership(sandbox)
                let changed = try sandbox.run(
                    "INSERT INTO \(staged) (\(self.dialect.quotedList(columns))) \(select)", policy: policy,
                    positional: arguments, oneStatement: true
                ).changed
                try sandbox.exec("COMMIT")
                return changed
            } catch {
                try? sandbox.exec("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs `body` on the sandboxed connection, from inside a write on the run's own connection
    /// (so the two never wait on each other's staging lock), with the sandbox's views of the
    /// staged tables brought up to date first. A cancelled task interrupts the statement.
    private func sandboxed<T: Sendable>(_ body: @escaping @Sendable (Database, SQLiteSandbox) throws -> T) async throws -> T {
        // The sandbox attaches the staging by its path, which would make an empty file of a
        // staging another opening published or discarded since.
        guard FileManager.default.fileExists(atPath: stagingPath) else { throw StepFailure.stagingGone(runID: runID) }
        // A connection per call: nothing a procedure leaves in TEMP outlives it.
        let sandbox = try SQLiteSandbox(
            warehouse: warehousePath, staging: stagingPath, busyTimeout: busyTimeout,
            cacheBytes: cacheBytes / 3)
        do {
            return try await withTaskCancellationHandler {
                try await queue.writeWithoutTransaction { db in
                    try Self.refreshViews(of: sandbox, from: db)
                    return try body(db, sandbox)
                }
            } onCancel: {
                sandbox.interrupt()
            }
        } catch let failure as SQLiteSandbox.Failure {
            // Where in the procedure: the caller names the file.
            throw StepFailure(
                FailureCode(failure.code), failure.message, transient: failure.code == FailureCode.databaseLocked.rawValue,
                at: failure.location)
        } catch {
            throw Self.failure(from: error, warehouse: warehousePath)
        }
    }

    /// Fails with `.stagingSuperseded` unless this opening still owns the staging: the first
    /// statement of every transaction that writes into it. A write itself, of nothing new: it
    /// takes the staging's write lock before it reads the token, so no other opening can write
    /// its own until this transaction ends, and this one never starts on a token that is being
    /// replaced (a read first could find the lock taken only when it tries to write, and fail
    /// as locked instead). One row of one page.
    static func requireOwnership(_ db: Database, runID: String, token: String) throws {
        do {
            try db.execute(sql: ownershipCheck, arguments: [token])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_READONLY_DBMOVED {
            // SQLite refuses writes to a file that was removed under it: the opening that took
            // the staging over published or discarded it.
            throw StepFailure.stagingGone(runID: runID)
        }
        guard db.changesCount == 1 else { throw StepFailure.stagingSuperseded(runID: runID) }
    }

    /// `requireOwnership` on the sandbox's connection, inside its transaction.
    private func requireOwnership(_ sandbox: SQLiteSandbox) throws {
        guard try sandbox.run(Self.ownershipCheck, policy: nil, positional: [.text(ownerToken)]).changed == 1 else {
            throw StepFailure.stagingSuperseded(runID: runID)
        }
    }

    private static let ownershipCheck = "UPDATE stage._sluice_owner SET token = token WHERE token = ?"

    /// The sandbox's TEMP views: one per staged table, as on the run's connection.
    private static func refreshViews(of sandbox: SQLiteSandbox, from db: Database) throws {
        db.clearSchemaCache()
        for staged in try stagedTables(db) {
            let stagedColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'stage')", arguments: [staged.table])
            let publishedColumns =
                try db.tableExists(staged.table, in: "main")
                ? try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main')", arguments: [staged.table]) : nil
            try sandbox.exec(viewSQL(table: staged.table, change: staged.change, stagedColumns: stagedColumns, publishedColumns: publishedColumns))
        }
    }

    /// A write to the run's staging: a deferred transaction, so it locks only `stage` and
    /// runs while other runs of the org publish; and only while this opening owns the staging.
    /// A database still locked after the busy timeout is a transient failure (the step's retry
    /// policy decides).
    private func stagingWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.deferred) {
                    try Self.requireOwnership(db, runID: self.runID, token: self.ownerToken)
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw StepFailure(.databaseLocked, "the warehouse stayed locked by another writer: \(error.message ?? "locked")", transient: true)
        }
    }

    // MARK: Cursors

    func cursor(_ key: String) async throws -> String? {
        try await access {
            try await queue.read { db in
                guard try db.tableExists("_sluice_cursors", in: "main") else { return nil }
                return try String.fetchOne(db, sql: "SELECT value FROM main._sluice_cursors WHERE key = ?", arguments: [key])
            }
        }
    }

    func stageCursor(_ key: String, value: String) async throws {
        try await stagingWrite { db in
            try db.execute(sql: "INSERT OR REPLACE INTO stage._sluice_cursors (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    // MARK: Holding and publishing

    func holdTargets() async throws {
        try await hold.hold()
        // What other runs published before the hold shows in the run's views from now on.
        try await access { try await queue.writeWithoutTransaction { db in try Self.createViews(db) } }
    }

    func publish() async throws -> [TablePublication] {
        try await hold.hold()
        // Tables staged that the plan did not name (a run built without one): held too, after.
        let staged = try await access { try await queue.read { db in try Self.stagedTables(db) } }
        let planned = await hold.tables
        let extra = TargetHold(
            folder: locksFolder, files: files,
            tables: staged.filter { !planned.contains($0.table.lowercased()) && $0.change != .scratch }.map(\.table),
            runID: runID)
        try await extra.hold()
        let publications: [TablePublication]
        do {
            publications = try await publishStaged()
        } catch {
            await extra.release()
            throw error
        }
        await extra.release()
        await finish(removingStaging: true)
        return publications
    }

    /// The publish transaction itself: every staged table, the cursors and the marker.
    private func publishStaged() async throws -> [TablePublication] {
        try await access {
            try await queue.writeWithoutTransaction { db in
                var publications: [TablePublication] = []
                try db.inTransaction(.immediate) {
                    db.clearSchemaCache()
                    try Self.checkStillOurs(db, runID: self.runID, token: self.ownerToken)
                    for staged in try Self.stagedTables(db) {
                        if let publication = try Self.apply(db, table: staged.table, change: staged.change, step: staged.step) {
                            publications.append(publication)
                        }
                    }
                    // Incremental cursors commit with the data they describe.
                    if try db.tableExists("_sluice_cursors", in: "stage"),
                        try Int.fetchOne(db, sql: "SELECT count(*) FROM stage._sluice_cursors") ?? 0 > 0
                    {
                        try db.execute(
                            sql: """
                                CREATE TABLE IF NOT EXISTS main._sluice_cursors (
                                    key TEXT PRIMARY KEY, value TEXT NOT NULL, run_id TEXT NOT NULL, at REAL NOT NULL)
                                """)
                        try db.execute(
                            sql: """
                                INSERT OR REPLACE INTO main._sluice_cursors (key, value, run_id, at)
                                SELECT key, value, ?, ? FROM stage._sluice_cursors
                                """, arguments: [self.runID, Date().timeIntervalSince1970])
                    }
                    // The marker commits with the data: after a crash, it tells whether this run's
                    // changes are in.
                    try db.execute(sql: "CREATE TABLE IF NOT EXISTS main._sluice_published (run_id TEXT PRIMARY KEY, at REAL NOT NULL)")
                    try db.execute(
                        sql: "INSERT INTO main._sluice_published (run_id, at) VALUES (?, ?)",
                        arguments: [self.runID, Date().timeIntervalSince1970])
                    return .commit
                }
                try Self.dropStaging(db)
                return publications
            }
        }
    }

    /// Refuses a publish whose staging another opening took over since, or whose run has
    /// published already (the marker is in): a run publishes once, whatever stalls.
    private static func checkStillOurs(_ db: Database, runID: String, token: String) throws {
        if let owner = try String.fetchOne(db, sql: "SELECT token FROM stage._sluice_owner"), owner != token {
            throw StepFailure(
                .stagingSuperseded,
                "run \(runID)'s staging was opened by another process since this one opened it (a worker took the run over); this one publishes nothing"
            )
        }
        if try db.tableExists("_sluice_published"),
            try Bool.fetchOne(db, sql: "SELECT 1 FROM main._sluice_published WHERE run_id = ?", arguments: [runID]) ?? false
        {
            throw StepFailure(.stagingSuperseded, "run \(runID) has published already; it publishes once")
        }
    }

    func discard() async throws {
        try await access {
            try await queue.writeWithoutTransaction { db in
                // The staging of an opening that took it over is that opening's to keep.
                try Self.requireOwnership(db, runID: self.runID, token: self.ownerToken)
                try Self.dropStaging(db)
            }
        }
        await finish(removingStaging: true)
    }

    func close() async {
        await finish(removingStaging: false)
    }

    /// Lets go of the tables, the sandbox and the staging hold; removes the staging's files
    /// when it is done with.
    private func finish(removingStaging: Bool) async {
        if removingStaging {
            Self.removeFiles(at: stagingPath)
            use.removeLockFile()
        } else {
            use.release()
        }
        await hold.release()
    }

    /// A staging database and its journal (or, from older versions, WAL) files, once nothing of it is needed.
    static func removeFiles(at stagingPath: String) {
        for suffix in ["", "-journal", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: stagingPath + suffix) }
    }

    private static func dropStaging(_ db: Database) throws {
        let names = try String.fetchAll(db, sql: "SELECT name FROM stage._sluice_staged")
        for name in names { try db.execute(sql: "DROP VIEW IF EXISTS temp.\(SQLiteDialect().quote(name))") }
        try db.execute(sql: "DETACH DATABASE stage")
    }

    /// Applies one staged table to the published one (inside the publish transaction) and
    /// says what it did; nil for a table that never publishes.
    private static func apply(_ db: Database, table: String, change: StagedChange, step: String?) throws -> TablePublication? {
        if case .scratch = change { return nil }
        let dialect = SQLiteDialect()
        let quoted = dialect.quote(table)
        let stagedInfo = try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?, 'stage')", arguments: [table])
        let columns = stagedInfo.map { $0["name"] as String }
        let stagedCount = try Int.fetchOne(db, sql: "SELECT count(*) FROM stage.\(quoted)") ?? 0
        var publication = TablePublication(table: table, step: step, inserted: 0, updated: 0, unchanged: 0, deleted: 0)
        let created = try !db.tableExists(table, in: "main")
        if created {
            var key: [String] = []
            if case .upsert(let upsertKey, _) = change { key = upsertKey }
            let stagedKey = try String.fetchAll(
                db, sql: "SELECT name FROM pragma_table_info(?, 'stage') WHERE pk > 0 ORDER BY pk",
                arguments: [table])
            let stagedSQL =
                try String.fetchOne(
                    db, sql: "SELECT sql FROM stage.sqlite_master WHERE type = 'table' AND name = ?",
                    arguments: [table]) ?? ""
            let prefix = "CREATE TABLE \(quoted) ("
            publication.inserted = stagedCount
            if stagedKey == key, stagedSQL.hasPrefix(prefix) {
                // The staged table's own definition, so that `INSERT … SELECT *` qualifies for
                // SQLite's transfer optimisation: records and key entries are copied as they
                // are, without decoding, sorting or checking them again.
                try db.execute(sql: "CREATE TABLE main.\(quoted) (" + stagedSQL.dropFirst(prefix.count))
                try db.execute(sql: "INSERT INTO main.\(quoted) SELECT * FROM stage.\(quoted)")
                return publication
            }
            let definitions = stagedInfo.map { "\(dialect.quote($0["name"])) \($0["type"] as String)" }
            let primary = key.isEmpty ? "" : ", PRIMARY KEY (\(dialect.quotedList(key)))"
            try db.execute(sql: "CREATE TABLE main.\(quoted) (\(definitions.joined(separator: ", "))\(primary))")
        } else {
            // Schema evolution: columns the run adds are added to the published table.
            let existing = Set(
                try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main')", arguments: [table]).map { $0["name"] as String })
            for column in stagedInfo where !existing.contains(column["name"] as String) {
                try db.execute(sql: "ALTER TABLE main.\(quoted) ADD COLUMN \(dialect.quote(column["name"])) \(column["type"] as String)")
            }
        }
        let list = dialect.quotedList(columns)
        switch change {
        case .scratch:
            return nil
        case .replace:
            try db.execute(sql: "DELETE FROM main.\(quoted)")
            publication.deleted = db.changesCount
            try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted)")
            publication.inserted = stagedCount
        case .upsert(let key, let conflict):
            // Rows go in key order, so the key's B-tree grows at its end instead of everywhere.
            let order = "ORDER BY \(dialect.quotedList(key))"
            if created {
                try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted) \(order)")
                return publication
            }
            let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.\(quoted)") ?? 0
            let changed: Int
            switch conflict {
            case .replace:
                // Keys match null-safely (a null group is one group), which ON CONFLICT can't
                // do: the published rows with a staged key go, then the staged rows come in.
                let match = key.map { dialect.nullSafeEquals("s.\(dialect.quote($0))", "main.\(quoted).\(dialect.quote($0))") }
                    .joined(separator: " AND ")
                try db.execute(sql: "DELETE FROM main.\(quoted) WHERE EXISTS (SELECT 1 FROM stage.\(quoted) AS s WHERE \(match))")
                let replaced = db.changesCount
                try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted) \(order)")
                publication.inserted = stagedCount - replaced
                publication.updated = replaced
                return publication
            case .keepPublished, .latest:
                // A table published before may lack a unique key; the upsert needs one.
                try db.execute(
                    sql: "CREATE UNIQUE INDEX IF NOT EXISTS main.\(dialect.quote("\(table)__key")) ON \(quoted) (\(dialect.quotedList(key)))")
                let updates = columns.filter { !key.contains($0) }.map { "\(dialect.quote($0)) = excluded.\(dialect.quote($0))" }
                let action: String
                if case .latest = conflict, !updates.isEmpty {
                    // The rule is applied again against the table as it is now: another run may
                    // have published a newer version of a key since this run staged its own.
                    action = "DO UPDATE SET \(updates.joined(separator: ", ")) WHERE \(stagedWins(conflict, staged: "excluded", published: quoted))"
                } else {
                    action = "DO NOTHING"
                }
                try db.execute(
                    sql: """
                        INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted) WHERE true \(order)
                        ON CONFLICT (\(dialect.quotedList(key))) \(action)
                        """)
                changed = db.changesCount
            }
            let after = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.\(quoted)") ?? 0
            publication.inserted = after - before
            publication.updated = changed - publication.inserted
            publication.unchanged = stagedCount - changed
        case .replacePartitions(let column):
            let partition = dialect.quote(column)
            try db.execute(
                sql: """
                    DELETE FROM main.\(quoted) WHERE \(partition) IN (SELECT \(partition) FROM stage.\(quoted) WHERE \(partition) IS NOT NULL)
                    """)
            publication.deleted = db.changesCount
            try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted)")
            publication.inserted = stagedCount
        }
        return publication
    }
}

extension SQLiteWorkspace {
    /// The columns of `table` in the attached database `schema` as declared, each column of
    /// `preferring` with its type there (a schema file's type over what SQLite keeps).
    static func columns(
        of table: String, in schema: String, sandbox: SQLiteSandbox, preferring: [SluiceStorage.ColumnDefinition]
    ) throws -> [SluiceStorage.ColumnDefinition] {
        try sandbox.rows("SELECT name, type FROM pragma_table_info(?, ?)", [.text(table), .text(schema)]).compactMap { row in
            guard case .text(let name) = row[0] else { return nil }
            let declared = if case .text(let type) = row[1] { ColumnType(sqliteType: type) } else { ColumnType.string }
            return .init(name, preferring.first { $0.name == name }?.type ?? declared)
        }
    }

    /// Column definitions for CREATE TABLE.
    static func definitions(_ columns: [SluiceStorage.ColumnDefinition]) -> String {
        columns.map { "\(SQLiteDialect().quote($0.name)) \($0.type.sqliteType)" }.joined(separator: ", ")
    }
}

extension ColumnType {
    /// The closest column type to a declared SQLite type (views report their source's).
    init(sqliteType: String) {
        switch sqliteType.uppercased() {
        case "INTEGER", "INT", "BIGINT": self = .int64
        case "REAL", "FLOAT", "DOUBLE": self = .float64
        case "NUMERIC", "DECIMAL", "DECIMAL_TEXT(38,9)": self = .numeric
        case "DECIMAL_TEXT(76,38)": self = .bigNumeric
        case "BLOB": self = .bytes
        default: self = .string
        }
    }
}

/// SQLite's spelling of the few things that differ between warehouses. Decimals are canonical
/// text, computed on with the functions of `SQLiteDecimalFunctions`.
struct SQLiteDialect: SQLDialect {
    func decimalLiteral(_ text: String) -> String { "'\(text)'" }

    func decimalArithmetic(_ op: String, _ left: String, _ right: String) -> String {
        let function =
            switch op {
            case "+": "decimal_add"
            case "-": "decimal_sub"
            case "*": "decimal_mul"
            default: "decimal_div"
            }
        return "\(function)(\(left), \(right))"
    }

    func decimalComparison(_ op: String, _ left: String, _ right: String) -> String {
        "decimal_cmp(\(left), \(right)) \(op) 0"
    }

    func decimalAggregate(_ function: String, _ argument: String) -> String? {
        "decimal_\(function)(\(argument))"
    }

    func decimalRound(_ value: String, _ digits: String) -> String { "decimal_round(\(value), \(digits))" }

    func decimalAbsolute(_ value: String) -> String {
        "CASE WHEN decimal_cmp(\(value), 0) < 0 THEN decimal_sub(0, \(value)) ELSE decimal(\(value)) END"
    }

    func decimalCanonical(_ value: String) -> String { "decimal(\(value))" }

    func storeDecimal(_ value: String, _ limits: DecimalLimits) -> String {
        "decimal_store(\(value), \(limits.precision), \(limits.scale))"
    }

    func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    func placeholder(_ index: Int) -> String { "?\(index)" }

    func nullSafeEquals(_ left: String, _ right: String) -> String { "\(left) IS \(right)" }

    /// Rows of a table in load order. (A composed view has no rowid; a staged table and a
    /// published one, which are what merges read, do.)
    var arrivalOrder: String { "rowid" }

    /// An upsert that SQLite applies row by row, so several rows of one key collapse in the
    /// order they are selected. (`WHERE true` tells SQLite's parser the ON CONFLICT belongs to
    /// the INSERT, not to a join in the SELECT.)
    func collapseStatement(
        into staged: String, columns: [String], select: [String], from source: String,
        key: [String], newerBy: String?, updating: [String]
    ) -> String {
        let keyList = key.joined(separator: ", ")
        var onConflict = "DO NOTHING"
        if let newerBy, !updating.isEmpty {
            onConflict = """
                DO UPDATE SET \(updating.map { "\($0) = excluded.\($0)" }.joined(separator: ", "))
                WHERE excluded.\(newerBy) IS NOT NULL AND (\(staged).\(newerBy) IS NULL OR excluded.\(newerBy) >= \(staged).\(newerBy))
                """
        }
        return """
            INSERT INTO \(staged) (\(columns.joined(separator: ", ")))
            SELECT \(select.joined(separator: ", ")) FROM \(source) WHERE true ORDER BY \(keyList), \(arrivalOrder)
            ON CONFLICT (\(keyList)) \(onConflict)
            """
    }
}

extension WarehouseValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let value): value.databaseValue
        case .real(let value): value.databaseValue
        case .text(let value): value.databaseValue
        case .blob(let bytes): Data(bytes).databaseValue
        }
    }

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let number): self = .integer(number)
        case .double(let number): self = .real(number)
        case .string(let text): self = .text(text)
        case .blob(let data): self = .blob([UInt8](data))
        }
    }
}
