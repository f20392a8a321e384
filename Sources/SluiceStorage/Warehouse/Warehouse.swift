import Foundation
import SluiceModel

/// Where tables live, per org. A run never writes published tables directly: it works in a
/// run-scoped workspace (staging), and `publish` applies everything in one transaction.
/// SluiceSQLite implements this on one SQLite file per org; PostgreSQL follows with a schema
/// per org and per run.
public protocol Warehouse: Sendable {
    /// Opens the workspace of a run: a new one, or, with `existing`, the one a failed run left
    /// (for a resume), which must still be there. `targets` are the tables the run's steps
    /// write (from its plan): `holdTargets()` holds them for the run. Opening a staging that
    /// exists takes it over: from then on, what an earlier opening still tries to write into
    /// it or publish from it fails with `staging_superseded` (see `StepFailure.stagingSuperseded`).
    func workspace(org: String, runID: String, targets: [String], existing: Bool) async throws -> any RunWorkspace

    /// Whether the run's publish transaction committed: it records the run id with the data,
    /// so a run whose process died right after publishing is not taken for a failed one.
    func wasPublished(org: String, runID: String) async throws -> Bool

    /// Runs a read-only query against an org's published tables.
    func query(org: String, _ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult

    /// The run workspaces (staging) that exist, in every org: those of running runs, and those
    /// failed runs keep for a resume until `StagingRetention` removes them.
    func stagings() async throws -> [StagingInfo]

    /// Whether the run's workspace still exists (a resume needs it).
    func hasStaging(org: String, runID: String) async throws -> Bool

    /// Removes a run's workspace without publishing it, unless a run has it open (a workspace
    /// holds it from opening until it publishes, discards or closes): then it leaves it and
    /// returns false.
    @discardableResult
    func removeStaging(org: String, runID: String) async throws -> Bool
}

extension StepFailure {
    /// A write into a run's staging by an opening of it that another opening has superseded
    /// since (a worker that stalled past its lease while another worker took the run over and
    /// reopened the staging). Refused, so the staging holds only what its current opening
    /// wrote; the process that gets it stops without recording anything more.
    public static func stagingSuperseded(runID: String) -> StepFailure {
        StepFailure(
            .stagingSuperseded,
            "run \(runID)'s staging was opened by another process since this one opened it (a worker took the run over); this one writes nothing more into it"
        )
    }

    /// A write into a run's staging that is no longer there: the opening that superseded this
    /// one published or discarded it since.
    public static func stagingGone(runID: String) -> StepFailure {
        StepFailure(
            .stagingSuperseded,
            "run \(runID)'s staging is gone (another process took the run over, and published or discarded it since); this one writes nothing more into it"
        )
    }
}

/// A run workspace left in the warehouse: whose it is, how big, when it was last written.
public struct StagingInfo: Sendable, Hashable {
    public var org: String
    public var runID: String
    public var bytes: Int64
    public var modifiedAt: Date

    public init(org: String, runID: String, bytes: Int64, modifiedAt: Date) {
        self.org = org
        self.runID = runID
        self.bytes = bytes
        self.modifiedAt = modifiedAt
    }
}

/// A column of a table a step writes.
public struct ColumnDefinition: Sendable, Hashable {
    public var name: String
    public var type: ColumnType
    public var required: Bool

    public init(_ name: String, _ type: ColumnType, required: Bool = false) {
        self.name = name
        self.type = type
        self.required = required
    }
}

/// How a staged table becomes (part of) the published table when the run publishes.
public enum StagedChange: Sendable, Hashable {
    /// Run-scoped only, never published: what `ingest` loads for later steps to read.
    case scratch
    /// Replaces the published table's content.
    case replace
    /// Rows are inserted; a staged row whose key is published already is settled by
    /// `onConflict`, against the table as it is when the run publishes (another run may have
    /// published since this one staged).
    case upsert(key: [String], onConflict: KeyConflict)
    /// Every value of the column present in the staged rows replaces that whole partition.
    case replacePartitions(column: String)
}

extension StagedChange {
    /// How a warehouse records the change with its staged table (kind, detail), the same on
    /// every backend: an upsert's detail is its key columns, then `|latest:<column>` or
    /// `|first` for its conflict rule.
    public var stagingRecord: (kind: String, detail: String) {
        switch self {
        case .scratch: ("scratch", "")
        case .replace: ("replace", "")
        case .upsert(let key, let conflict):
            switch conflict {
            case .replace: ("upsert", key.joined(separator: ","))
            case .latest(let column): ("upsert", key.joined(separator: ",") + "|latest:" + column)
            case .keepPublished: ("upsert", key.joined(separator: ",") + "|first")
            }
        case .replacePartitions(let column): ("partitions", column)
        }
    }

    /// The change `stagingRecord` wrote. An upsert without a rule is `.replace` (stagings from
    /// before conflict rules were recorded replaced published rows); an unknown kind is scratch.
    public init(stagingKind kind: String, detail: String) {
        switch kind {
        case "replace": self = .replace
        case "upsert":
            let parts = detail.split(separator: "|", maxSplits: 1).map(String.init)
            let key = (parts.first ?? "").split(separator: ",").map(String.init)
            let rule = parts.count > 1 ? parts[1] : ""
            if rule == "first" {
                self = .upsert(key: key, onConflict: .keepPublished)
            } else if rule.hasPrefix("latest:") {
                self = .upsert(key: key, onConflict: .latest(by: String(rule.dropFirst("latest:".count))))
            } else {
                self = .upsert(key: key, onConflict: .replace)
            }
        case "partitions": self = .replacePartitions(column: detail)
        default: self = .scratch
        }
    }
}

/// Which row a table keeps when a staged row's key is published already.
public enum KeyConflict: Sendable, Hashable {
    /// The staged row replaces the published one (an aggregate merged on its group key). Keys
    /// match null-safely: a null group is one group.
    case replace
    /// The row with the greater value in the column stays: a staged row replaces the
    /// published one only when its value is not null and greater, or the published one is null.
    /// On a tie the published row stays (latest_wins).
    case latest(by: String)
    /// The published row stays (first_wins).
    case keepPublished
}

/// What publishing did to one table: the figures of the rows as they were applied, which can
/// differ from what its step staged when another run published the same keys in between.
public struct TablePublication: Sendable, Hashable {
    public var table: String
    /// The step that staged the table, when known.
    public var step: String?
    public var inserted: Int
    /// Published rows replaced by staged ones.
    public var updated: Int
    /// Staged rows that changed nothing: the published row won (not newer, or first_wins).
    public var unchanged: Int
    /// Rows removed (a replaced table's or partition's earlier rows).
    public var deleted: Int

    public init(table: String, step: String?, inserted: Int, updated: Int, unchanged: Int, deleted: Int) {
        self.table = table
        self.step = step
        self.inserted = inserted
        self.updated = updated
        self.unchanged = unchanged
        self.deleted = deleted
    }
}

/// Rows from a query, with column names.
public struct QueryResult: Sendable, Hashable {
    public var columns: [String]
    public var rows: [[WarehouseValue]]
    /// Each column's type where the warehouse knows it (a column's declared type; PostgreSQL
    /// knows every result's), else nil; empty when not asked for.
    public var types: [ColumnType?]

    public init(columns: [String], rows: [[WarehouseValue]], types: [ColumnType?] = []) {
        self.columns = columns
        self.rows = rows
        self.types = types
    }

    // Two results with the same columns and rows are equal, whichever backend typed them.
    public static func == (lhs: QueryResult, rhs: QueryResult) -> Bool {
        lhs.columns == rhs.columns && lhs.rows == rhs.rows
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(columns)
        hasher.combine(rows)
    }
}

/// A run's view of the warehouse: published tables plus what its steps staged.
public protocol RunWorkspace: Sendable {
    /// SQL text for this warehouse: identifier quoting and the few statements that differ.
    var dialect: any SQLDialect { get }

    /// How SQL in this run names `table` to read it: the run's staged version (composed with
    /// the published rows for upserts and partitions) if a step wrote one, else the published
    /// table. nil when neither exists.
    func source(_ table: String) async throws -> String?

    /// Whether a step of this run has already staged `table`.
    func isStaged(_ table: String) async throws -> Bool

    /// The columns of `table` as this run sees it, in order; nil when it doesn't exist.
    func columns(of table: String) async throws -> [ColumnDefinition]?

    /// Creates (or recreates) the staged version of `table` for `step` and returns its name for
    /// writing. With a `primaryKey`, the staged table is unique on it (for upserts into staging).
    func stage(_ table: String, columns: [ColumnDefinition], change: StagedChange, primaryKey: [String], step: String?) async throws -> String

    /// Holds the run's target tables for this run until it publishes, discards or closes: while
    /// they are held, another run's `holdTargets()` and `publish()` of any of them wait. A step
    /// whose result is computed from tables it reads (an aggregate, a procedure) holds them
    /// before it reads, so no other run's publish can slip between its reads and this run's
    /// publish. Every run takes its tables in one order, all at once, so two runs never wait
    /// on each other. Waits for as long as it takes; cancel the task to stop waiting. Views of
    /// staged tables are brought up to date with what is published once the tables are held.
    func holdTargets() async throws

    /// Inserts rows into a staged table through one prepared statement, in one transaction.
    func insert(into staged: String, columns: [String], rows: [[WarehouseValue]]) async throws

    /// Inserts every batch `batches` hands over into a staged table, in order, as they come:
    /// a load, whose input is still being read while the first batches are written. Ends when
    /// `batches` does; throws what it throws. Written batch by batch with `insert(into:columns:
    /// rows:)` unless the backend streams them (PostgreSQL: one COPY for the whole load).
    func insert(into staged: String, columns: [String], batches: RowBatches) async throws

    /// Runs statements that change staged tables, in one transaction; returns rows changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [WarehouseValue]) async throws -> Int

    /// What the procedure script in the file at `url` (`path` as messages name it) reads,
    /// writes and binds, as this warehouse's SQL understands it over the project's `schemas`,
    /// with what it may not do as diagnostics (rule `procedure-sandbox`). The `sql` processor
    /// asks this before `runScript`, so which dialect parses a procedure is the warehouse's
    /// business.
    func checkProcedure(fileAt url: URL, path: String, schemas: SchemaCatalog) -> ProcedureInfo

    /// Runs a procedure (a SQL script of the pipeline's author: several statements, `:name`
    /// parameters bound by name) written against table names, sandboxed: it can read the
    /// org's tables and the run's staged ones, and write only the copies it is given. Each
    /// table in `writes` gets a writable copy of the run's view of it first (or an empty table
    /// with `columns` when none exists); the script's result is then staged, for `step`, to
    /// replace the published table. Call `holdTargets()` first. Returns the rows changed.
    /// Anything else (ATTACH, PRAGMA that sets, writes past the copies, transactions, file
    /// functions) fails with `procedure_refused`.
    func runScript(
        _ sql: String, named: [String: WarehouseValue], writes: [(table: String, columns: [ColumnDefinition])],
        step: String?
    ) async throws -> Int

    /// Runs a query the engine built and returns its rows.
    func query(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult

    /// Runs a query from a procedure (one SELECT of the pipeline's author), sandboxed like
    /// `runScript`: it may only read. With `maxRows`, stops reading after that many rows (the
    /// result is held in memory, so a caller with a bound passes it here).
    func queryProcedure(_ sql: String, _ arguments: [WarehouseValue], maxRows: Int?) async throws -> QueryResult

    /// Stages the rows of a procedure's query (one SELECT of the pipeline's author) into a
    /// staged table: `INSERT INTO staged (columns) <select>`, sandboxed like `runScript`, the
    /// staged table the only thing it may write. Returns the rows inserted.
    func insertProcedureRows(into staged: String, columns: [String], select: String, _ arguments: [WarehouseValue]) async throws -> Int

    /// The published value of an incremental cursor (`pipeline/step`), nil before one was
    /// ever published in this org.
    func cursor(_ key: String) async throws -> String?

    /// Stages a cursor value; `publish` writes it in the same transaction as the tables, so
    /// the data and the position it was read up to never disagree.
    func stageCursor(_ key: String, value: String) async throws

    /// Applies every staged change to the published tables in one transaction, then removes
    /// the staging. A failure leaves the published tables exactly as they were. Holds the
    /// run's targets first (see `holdTargets()`). Upserts re-apply their `KeyConflict` rule
    /// against the tables as they are now. Returns what it did to each table.
    @discardableResult
    func publish() async throws -> [TablePublication]

    /// Removes the staging without publishing, and lets the targets go.
    func discard() async throws

    /// Lets the targets and connections go without publishing or removing anything: the
    /// staging stays for a resume. A run that failed ends this way.
    func close() async
}

/// The SQL a processor builds through, so the same processor runs on SQLite and PostgreSQL.
/// Identifiers reaching SQL have passed `Identifier`; values are always bound parameters.
public protocol SQLDialect: Sendable {
    /// `"name"`, for an identifier that passed `Identifier.isValid`.
    func quote(_ identifier: String) -> String
    /// The placeholder for the n-th (1-based) bound parameter.
    func placeholder(_ index: Int) -> String
    /// An expression that is true when two values are equal or both null.
    func nullSafeEquals(_ left: String, _ right: String) -> String
    /// An ORDER BY term giving a table's rows in the order they were loaded.
    var arrivalOrder: String { get }
    /// A statement that copies the rows of `source` into the keyed table `staged`, one row a
    /// key, taking them in key order and then arrival order: with `newerBy`, a later row
    /// replaces the kept one when its `newerBy` is set and at least as new (the `updating`
    /// columns change); without, the first row of a key stays. `select` gives each of
    /// `columns` its value (a quoted source column or a placeholder). All names come quoted.
    func collapseStatement(
        into staged: String, columns: [String], select: [String], from source: String,
        key: [String], newerBy: String?, updating: [String]
    ) -> String

    // Exact decimals (NUMERIC, BIGNUMERIC): how the warehouse computes on them without a
    // double. Arguments are SQL expressions, already rendered.

    /// A decimal number written in an expression (`0.1`, `1e6`), exactly.
    func decimalLiteral(_ text: String) -> String
    /// `left op right` for `op` in `+ - * /`, exact (a quotient to 38 digits after the point).
    func decimalArithmetic(_ op: String, _ left: String, _ right: String) -> String
    /// `left op right` for a comparison operator, comparing the numbers.
    func decimalComparison(_ op: String, _ left: String, _ right: String) -> String
    /// The aggregate `function` (sum, avg, min, max) over decimals, exact; nil when the
    /// warehouse has no exact form of it.
    func decimalAggregate(_ function: String, _ argument: String) -> String?
    /// Rounded to `digits` after the point, half away from zero.
    func decimalRound(_ value: String, _ digits: String) -> String
    func decimalAbsolute(_ value: String) -> String
    /// The value as a decimal in its canonical form (equal numbers, equal values).
    func decimalCanonical(_ value: String) -> String
    /// The value as a column of the decimal type `limits` stores it: rounded to its scale,
    /// an error when out of range.
    func storeDecimal(_ value: String, _ limits: DecimalLimits) -> String
}

extension RunWorkspace {
    public func insert(into staged: String, columns: [String], batches: RowBatches) async throws {
        while let rows = try await batches.next() { try await insert(into: staged, columns: columns, rows: rows) }
    }

    public func stage(_ table: String, columns: [ColumnDefinition], change: StagedChange) async throws -> String {
        try await stage(table, columns: columns, change: change, primaryKey: [], step: nil)
    }

    public func stage(_ table: String, columns: [ColumnDefinition], change: StagedChange, primaryKey: [String]) async throws -> String {
        try await stage(table, columns: columns, change: change, primaryKey: primaryKey, step: nil)
    }
}

extension RunWorkspace {
    /// Every row of a procedure's query.
    public func queryProcedure(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult {
        try await queryProcedure(sql, arguments, maxRows: nil)
    }
}

extension Warehouse {
    /// A new workspace for a run that writes nothing it needs to hold (tests, tools).
    public func workspace(org: String, runID: String) async throws -> any RunWorkspace {
        try await workspace(org: org, runID: runID, targets: [], existing: false)
    }
}

extension SQLDialect {
    public func quotedList(_ identifiers: [String]) -> String {
        identifiers.map(quote).joined(separator: ", ")
    }
}

extension WarehouseValue {
    /// How the value reads in a table printed for people.
    public var displayText: String {
        switch self {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .text(let value): value
        case .blob(let bytes): "<\(bytes.count) bytes>"
        }
    }
}
