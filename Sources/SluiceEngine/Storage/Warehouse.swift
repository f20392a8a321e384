import Foundation
import SluiceModel

/// Where tables live, per org. A run never writes published tables directly: it works in a
/// run-scoped workspace (staging), and `publish` applies everything in one transaction.
/// SluiceSQLite implements this on one SQLite file per org; PostgreSQL follows with a schema
/// per org and per run.
public protocol Warehouse: Sendable {
    /// Opens the workspace of a run (a new one, or the one a failed run left, for resume).
    func workspace(org: String, runID: String) async throws -> any RunWorkspace

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

    /// Removes a run's workspace without publishing it.
    func removeStaging(org: String, runID: String) async throws
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
    /// Rows are inserted, or replace the published row with the same key.
    case upsert(key: [String])
    /// Every value of the column present in the staged rows replaces that whole partition.
    case replacePartitions(column: String)
}

/// Rows from a query, with column names.
public struct QueryResult: Sendable, Hashable {
    public var columns: [String]
    public var rows: [[WarehouseValue]]

    public init(columns: [String], rows: [[WarehouseValue]]) {
        self.columns = columns
        self.rows = rows
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

    /// Creates (or recreates) the staged version of `table` and returns its name for writing.
    /// With a `primaryKey`, the staged table is unique on it (for upserts into staging).
    func stage(_ table: String, columns: [ColumnDefinition], change: StagedChange, primaryKey: [String]) async throws -> String

    /// Inserts rows into a staged table through one prepared statement, in one transaction.
    func insert(into staged: String, columns: [String], rows: [[WarehouseValue]]) async throws

    /// Runs statements that change staged tables, in one transaction; returns rows changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [WarehouseValue]) async throws -> Int

    /// Runs a SQL script (several statements, `:name` parameters bound by name) written
    /// against table names. Each table in `writes` gets a writable copy of the run's view of
    /// it first (or an empty table with `columns` when none exists); the script's changes to
    /// it are then staged to replace the published table. Returns the rows changed.
    func runScript(_ sql: String, named: [String: WarehouseValue], writes: [(table: String, columns: [ColumnDefinition])]) async throws -> Int

    /// Runs a query and returns its rows.
    func query(_ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult

    /// The published value of an incremental cursor (`pipeline/step`), nil before one was
    /// ever published in this org.
    func cursor(_ key: String) async throws -> String?

    /// Stages a cursor value; `publish` writes it in the same transaction as the tables, so
    /// the data and the position it was read up to never disagree.
    func stageCursor(_ key: String, value: String) async throws

    /// Applies every staged change to the published tables in one transaction, then removes
    /// the staging. A failure leaves the published tables exactly as they were.
    func publish() async throws

    /// Removes the staging without publishing.
    func discard() async throws
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
}

extension RunWorkspace {
    public func stage(_ table: String, columns: [ColumnDefinition], change: StagedChange) async throws -> String {
        try await stage(table, columns: columns, change: change, primaryKey: [])
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
