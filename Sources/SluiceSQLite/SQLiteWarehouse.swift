import Foundation
import GRDB
import GRDBSQLite
import SluiceEngine
import SluiceModel

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

    public init(root: URL, busyTimeout: Duration = .seconds(30), maxBytesPerOrg: Int? = nil,
                runCacheBytes: Int = SQLiteWarehouse.defaultRunCacheBytes) {
        self.root = root
        self.busyTimeout = busyTimeout
        self.maxBytesPerOrg = maxBytesPerOrg
        self.runCacheBytes = runCacheBytes
    }

    func orgFolder(_ org: String) throws -> URL {
        guard Identifier.isValid(org) else {
            throw StepFailure("invalid_org", "'\(org)' is not a valid org name: use letters, digits and _")
        }
        return root.appendingPathComponent("orgs").appendingPathComponent(org)
    }

    public func warehousePath(org: String) throws -> String {
        try orgFolder(org).appendingPathComponent("warehouse.sqlite").path
    }

    public func stagingPath(org: String, runID: String) throws -> String {
        guard Identifier.isValid(runID) else { throw StepFailure("invalid_run", "'\(runID)' is not a run id") }
        return try orgFolder(org).appendingPathComponent("staging").appendingPathComponent("\(runID).sqlite").path
    }

    public func workspace(org: String, runID: String) async throws -> any RunWorkspace {
        let folder = try orgFolder(org)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("staging"), withIntermediateDirectories: true)
        return try SQLiteWorkspace(warehouse: try warehousePath(org: org), staging: try stagingPath(org: org, runID: runID),
                                   busyTimeout: busyTimeout, maxBytes: maxBytesPerOrg, cacheBytes: runCacheBytes)
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
            throw StepFailure("no_warehouse", "org '\(org)' has no warehouse yet (no run has published for it)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try await queue.read { db in try SQLiteWorkspace.fetch(db, sql, arguments) }
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

    public func removeStaging(org: String, runID: String) async throws {
        SQLiteWorkspace.removeFiles(at: try stagingPath(org: org, runID: runID))
    }
}

/// A run's connection: the org's warehouse as `main`, the run's staging file as `stage`, and
/// temporary views that let SQL written against table names (procedures) read the run's view.
final class SQLiteWorkspace: RunWorkspace {
    let queue: DatabaseQueue
    let stagingPath: String
    let dialect: any SQLDialect = SQLiteDialect()

    let runID: String

    init(warehouse: String, staging: String, busyTimeout: Duration, maxBytes: Int?, cacheBytes: Int) throws {
        runID = URL(fileURLWithPath: staging).deletingPathExtension().lastPathComponent
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.timeInterval)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA temp_store = FILE")
        }
        queue = try DatabaseQueue(path: warehouse, configuration: configuration)
        stagingPath = staging
        let reopened = FileManager.default.fileExists(atPath: staging)
        // WAL lets readers (`sluice query`, other runs) read while a run publishes. SQLite
        // answers a connection that switches a new file to WAL while another does the same
        // "database is locked" at once, without the busy timeout, so the runs of an org that
        // start together on a new warehouse take turns at it.
        try FileLock.withExclusive(warehouse + "-open.lock", code: "warehouse_unavailable") {
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
                    throw StepFailure("staging_damaged", """
                        the staging of run \(URL(fileURLWithPath: staging).deletingPathExtension().lastPathComponent) \
                        is damaged (\(problems.joined(separator: "; "))); start a new run
                        """)
                }
            }
            // Merges and publishes walk B-trees of the whole batch: a 48 MiB page cache each for
            // the warehouse, the staging and temp (sorts), instead of SQLite's 2 MiB, keeps most
            // of them in memory; memory stays bounded whatever the input.
            for schema in ["main", "stage", "temp"] { try db.execute(sql: "PRAGMA \(schema).cache_size = -\(max(1, cacheBytes / 3 / 1024))") }
            if let maxBytes {
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA main.page_size") ?? 4096
                try db.execute(sql: "PRAGMA main.max_page_count = \(max(1, maxBytes / pageSize))")
            }
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS stage._sluice_staged (
                    name TEXT PRIMARY KEY, change TEXT NOT NULL, detail TEXT NOT NULL, position INTEGER NOT NULL)
                """)
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS stage._sluice_cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            // A resumed run finds its staged tables again: recreate their views.
            for row in try Row.fetchAll(db, sql: "SELECT name, change, detail FROM stage._sluice_staged ORDER BY position") {
                try Self.createView(db, table: row["name"], change: Self.decodeChange(row["change"], row["detail"]))
            }
        }
    }

    // MARK: Reading

    func source(_ table: String) async throws -> String? {
        try await queue.read { db in try Self.source(db, table) }
    }

    func isStaged(_ table: String) async throws -> Bool {
        try await queue.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM stage._sluice_staged WHERE name = ?", arguments: [table]) ?? false
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

    func columns(of table: String) async throws -> [SluiceEngine.ColumnDefinition]? {
        try await queue.read { db in
            guard let source = try Self.source(db, table) else { return nil }
            let schema = String(source.prefix { $0 != "." })
            return try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?, ?)", arguments: [table, schema]).map { row in
                SluiceEngine.ColumnDefinition(row["name"], ColumnType(sqliteType: row["type"]))
            }
        }
    }

    func query(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        try await queue.read { db in try Self.fetch(db, sql, arguments) }
    }

    static func fetch(_ db: Database, _ sql: String, _ arguments: [WarehouseValue]) throws -> QueryResult {
        let statement = try db.makeStatement(sql: sql)
        let columns = statement.columnNames
        let rows = try Row.fetchAll(statement, arguments: StatementArguments(arguments.map(\.databaseValue))).map { row in
            (0..<row.count).map { WarehouseValue(row[$0] as DatabaseValue) }
        }
        return QueryResult(columns: columns, rows: rows)
    }

    // MARK: Staging

    func stage(_ table: String, columns: [SluiceEngine.ColumnDefinition], change: StagedChange,
               primaryKey: [String]) async throws -> String {
        try await queue.writeWithoutTransaction { db in
            try db.inTransaction(.deferred) {
                let quoted = self.dialect.quote(table)
                try db.execute(sql: "DROP VIEW IF EXISTS temp.\(quoted)")
                try db.execute(sql: "DROP TABLE IF EXISTS stage.\(quoted)")
                let definitions = columns.map { "\(self.dialect.quote($0.name)) \($0.type.sqliteType)" }.joined(separator: ", ")
                let key = primaryKey.isEmpty ? "" : ", PRIMARY KEY (\(self.dialect.quotedList(primaryKey)))"
                try db.execute(sql: "CREATE TABLE stage.\(quoted) (\(definitions)\(key))")
                let (kind, detail) = Self.encodeChange(change)
                let position = try Int.fetchOne(db, sql: "SELECT coalesce(max(position), 0) + 1 FROM stage._sluice_staged") ?? 1
                try db.execute(sql: """
                    INSERT INTO stage._sluice_staged (name, change, detail, position) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET change = excluded.change, detail = excluded.detail, position = excluded.position
                    """, arguments: [table, kind, detail, position])
                try Self.createView(db, table: table, change: change)
                return .commit
            }
            return "stage.\(self.dialect.quote(table))"
        }
    }

    /// The run's view of a staged table, under the table's own name in `temp`, which SQLite
    /// searches before `main`: the staged rows, composed with the published ones for upserts
    /// and partitions.
    static func createView(_ db: Database, table: String, change: StagedChange) throws {
        let dialect = SQLiteDialect()
        let quoted = dialect.quote(table)
        try db.execute(sql: "DROP VIEW IF EXISTS temp.\(quoted)")
        let staged = "stage.\(quoted)"
        let published = "main.\(quoted)"
        let stagedColumns = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'stage')", arguments: [table]).map { $0["name"] as String }
        let publishedExists = try db.tableExists(table, in: "main")
        let list = dialect.quotedList(stagedColumns)
        let body: String
        switch change {
        case .scratch, .replace:
            body = "SELECT \(list) FROM \(staged)"
        case .upsert(let key) where publishedExists:
            let match = key.map { dialect.nullSafeEquals("s.\(dialect.quote($0))", "p.\(dialect.quote($0))") }.joined(separator: " AND ")
            body = """
                SELECT \(stagedColumns.map { "p.\(dialect.quote($0))" }.joined(separator: ", ")) FROM \(published) AS p
                WHERE NOT EXISTS (SELECT 1 FROM \(staged) AS s WHERE \(match))
                UNION ALL SELECT \(list) FROM \(staged)
                """
        case .replacePartitions(let column) where publishedExists:
            let partition = dialect.quote(column)
            body = """
                SELECT \(stagedColumns.map { "p.\(dialect.quote($0))" }.joined(separator: ", ")) FROM \(published) AS p
                WHERE p.\(partition) NOT IN (SELECT \(partition) FROM \(staged) WHERE \(partition) IS NOT NULL)
                UNION ALL SELECT \(list) FROM \(staged)
                """
        case .upsert, .replacePartitions:
            body = "SELECT \(list) FROM \(staged)"
        }
        try db.execute(sql: "CREATE TEMP VIEW \(quoted) AS \(body)")
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
                            _ = sqlite3_bind_text(handle, position, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
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

    func runScript(_ sql: String, named: [String: WarehouseValue],
                   writes: [(table: String, columns: [SluiceEngine.ColumnDefinition])]) async throws -> Int {
        try await queue.writeWithoutTransaction { db in
            var changed = 0
            try db.inTransaction(.deferred) {
                // Unqualified names find `temp` first: a temp table under the target's name
                // takes the script's writes, away from the published table.
                for (table, columns) in writes {
                    let quoted = self.dialect.quote(table)
                    let current = try Self.source(db, table)
                    try db.execute(sql: "DROP VIEW IF EXISTS temp.\(quoted)")
                    if let current {
                        try db.execute(sql: "CREATE TEMP TABLE \(quoted) AS SELECT * FROM \(current == "temp.\(quoted)" ? "stage.\(quoted)" : current)")
                    } else {
                        let definitions = columns.map { "\(self.dialect.quote($0.name)) \($0.type.sqliteType)" }.joined(separator: ", ")
                        try db.execute(sql: "CREATE TEMP TABLE \(quoted) (\(definitions))")
                    }
                }
                let arguments = StatementArguments(named.mapValues { $0.databaseValue as (any DatabaseValueConvertible)? })
                let before = db.totalChangesCount
                try db.execute(sql: sql, arguments: arguments)
                changed = db.totalChangesCount - before
                // The script's result replaces the table when the run publishes.
                for (table, _) in writes {
                    let quoted = self.dialect.quote(table)
                    try db.execute(sql: "DROP TABLE IF EXISTS stage.\(quoted)")
                    try db.execute(sql: "CREATE TABLE stage.\(quoted) AS SELECT * FROM temp.\(quoted)")
                    try db.execute(sql: "DROP TABLE temp.\(quoted)")
                    let position = try Int.fetchOne(db, sql: "SELECT coalesce(max(position), 0) + 1 FROM stage._sluice_staged") ?? 1
                    try db.execute(sql: """
                        INSERT INTO stage._sluice_staged (name, change, detail, position) VALUES (?, 'replace', '', ?)
                        ON CONFLICT (name) DO UPDATE SET change = 'replace', detail = '', position = excluded.position
                        """, arguments: [table, position])
                    try Self.createView(db, table: table, change: .replace)
                }
                return .commit
            }
            return changed
        }
    }

    /// A write to the run's staging: a deferred transaction, so it locks only `stage` and
    /// runs while other runs of the org publish. A database still locked after the busy
    /// timeout is a transient failure (the step's retry policy decides).
    private func stagingWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.deferred) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw StepFailure("database_locked", "the warehouse stayed locked by another writer: \(error.message ?? "locked")", transient: true)
        }
    }

    // MARK: Cursors

    func cursor(_ key: String) async throws -> String? {
        try await queue.read { db in
            guard try db.tableExists("_sluice_cursors", in: "main") else { return nil }
            return try String.fetchOne(db, sql: "SELECT value FROM main._sluice_cursors WHERE key = ?", arguments: [key])
        }
    }

    func stageCursor(_ key: String, value: String) async throws {
        try await stagingWrite { db in
            try db.execute(sql: "INSERT OR REPLACE INTO stage._sluice_cursors (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    // MARK: Publishing

    func publish() async throws {
        try await queue.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                let staged = try Row.fetchAll(db, sql: "SELECT name, change, detail FROM stage._sluice_staged ORDER BY position")
                for row in staged {
                    let table: String = row["name"]
                    let change = Self.decodeChange(row["change"], row["detail"])
                    try Self.apply(db, table: table, change: change)
                }
                // Incremental cursors commit with the data they describe.
                if try db.tableExists("_sluice_cursors", in: "stage"),
                   try Int.fetchOne(db, sql: "SELECT count(*) FROM stage._sluice_cursors") ?? 0 > 0 {
                    try db.execute(sql: """
                        CREATE TABLE IF NOT EXISTS main._sluice_cursors (
                            key TEXT PRIMARY KEY, value TEXT NOT NULL, run_id TEXT NOT NULL, at REAL NOT NULL)
                        """)
                    try db.execute(sql: """
                        INSERT OR REPLACE INTO main._sluice_cursors (key, value, run_id, at)
                        SELECT key, value, ?, ? FROM stage._sluice_cursors
                        """, arguments: [self.runID, Date().timeIntervalSince1970])
                }
                // The marker commits with the data: after a crash, it tells whether this run's
                // changes are in.
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS main._sluice_published (run_id TEXT PRIMARY KEY, at REAL NOT NULL)")
                try db.execute(sql: "INSERT OR REPLACE INTO main._sluice_published (run_id, at) VALUES (?, ?)",
                               arguments: [self.runID, Date().timeIntervalSince1970])
                return .commit
            }
            try Self.dropStaging(db)
        }
        Self.removeFiles(at: stagingPath)
    }

    func discard() async throws {
        try await queue.writeWithoutTransaction { db in try Self.dropStaging(db) }
        Self.removeFiles(at: stagingPath)
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

    /// Applies one staged table to the published one (inside the publish transaction).
    private static func apply(_ db: Database, table: String, change: StagedChange) throws {
        if case .scratch = change { return }
        let dialect = SQLiteDialect()
        let quoted = dialect.quote(table)
        let stagedInfo = try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?, 'stage')", arguments: [table])
        let columns = stagedInfo.map { $0["name"] as String }
        let created = try !db.tableExists(table, in: "main")
        if created {
            var key: [String] = []
            if case .upsert(let upsertKey) = change { key = upsertKey }
            let stagedKey = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'stage') WHERE pk > 0 ORDER BY pk",
                                                arguments: [table])
            let stagedSQL = try String.fetchOne(db, sql: "SELECT sql FROM stage.sqlite_master WHERE type = 'table' AND name = ?",
                                                arguments: [table]) ?? ""
            let prefix = "CREATE TABLE \(quoted) ("
            if stagedKey == key, stagedSQL.hasPrefix(prefix) {
                // The staged table's own definition, so that `INSERT … SELECT *` qualifies for
                // SQLite's transfer optimisation: records and key entries are copied as they
                // are, without decoding, sorting or checking them again.
                try db.execute(sql: "CREATE TABLE main.\(quoted) (" + stagedSQL.dropFirst(prefix.count))
                try db.execute(sql: "INSERT INTO main.\(quoted) SELECT * FROM stage.\(quoted)")
                return
            }
            let definitions = stagedInfo.map { "\(dialect.quote($0["name"])) \($0["type"] as String)" }
            let primary = key.isEmpty ? "" : ", PRIMARY KEY (\(dialect.quotedList(key)))"
            try db.execute(sql: "CREATE TABLE main.\(quoted) (\(definitions.joined(separator: ", "))\(primary))")
        } else {
            // Schema evolution: columns the run adds are added to the published table.
            let existing = Set(try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main')", arguments: [table]).map { $0["name"] as String })
            for column in stagedInfo where !existing.contains(column["name"] as String) {
                try db.execute(sql: "ALTER TABLE main.\(quoted) ADD COLUMN \(dialect.quote(column["name"])) \(column["type"] as String)")
            }
        }
        let list = dialect.quotedList(columns)
        switch change {
        case .scratch:
            return
        case .replace:
            try db.execute(sql: "DELETE FROM main.\(quoted)")
            try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted)")
        case .upsert(let key):
            // Rows go in key order, so the key's B-tree grows at its end instead of everywhere.
            let order = "ORDER BY \(dialect.quotedList(key))"
            if created {
                try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted) \(order)")
                return
            }
            // A table published before may lack a unique key; the upsert needs one.
            try db.execute(sql: "CREATE UNIQUE INDEX IF NOT EXISTS main.\(dialect.quote("\(table)__key")) ON \(quoted) (\(dialect.quotedList(key)))")
            let updates = columns.filter { !key.contains($0) }.map { "\(dialect.quote($0)) = excluded.\(dialect.quote($0))" }
            let action = updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET \(updates.joined(separator: ", "))"
            try db.execute(sql: """
                INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted) WHERE true \(order)
                ON CONFLICT (\(dialect.quotedList(key))) \(action)
                """)
        case .replacePartitions(let column):
            let partition = dialect.quote(column)
            try db.execute(sql: """
                DELETE FROM main.\(quoted) WHERE \(partition) IN (SELECT \(partition) FROM stage.\(quoted) WHERE \(partition) IS NOT NULL)
                """)
            try db.execute(sql: "INSERT INTO main.\(quoted) (\(list)) SELECT \(list) FROM stage.\(quoted)")
        }
    }

    // MARK: Change encoding

    static func encodeChange(_ change: StagedChange) -> (String, String) {
        switch change {
        case .scratch: ("scratch", "")
        case .replace: ("replace", "")
        case .upsert(let key): ("upsert", key.joined(separator: ","))
        case .replacePartitions(let column): ("partitions", column)
        }
    }

    static func decodeChange(_ kind: String, _ detail: String) -> StagedChange {
        switch kind {
        case "replace": .replace
        case "upsert": .upsert(key: detail.split(separator: ",").map(String.init))
        case "partitions": .replacePartitions(column: detail)
        default: .scratch
        }
    }
}

extension ColumnType {
    /// The closest column type to a declared SQLite type (views report their source's).
    init(sqliteType: String) {
        switch sqliteType.uppercased() {
        case "INTEGER", "INT", "BIGINT": self = .int64
        case "REAL", "FLOAT", "DOUBLE": self = .float64
        case "NUMERIC", "DECIMAL": self = .numeric
        case "BLOB": self = .bytes
        default: self = .string
        }
    }
}

/// SQLite's spelling of the few things that differ between warehouses.
struct SQLiteDialect: SQLDialect {
    func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    func placeholder(_ index: Int) -> String { "?\(index)" }

    func nullSafeEquals(_ left: String, _ right: String) -> String { "\(left) IS \(right)" }

    /// Rows of a table in load order. (A composed view has no rowid; a staged table and a
    /// published one, which are what merges read, do.)
    var arrivalOrder: String { "rowid" }
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
