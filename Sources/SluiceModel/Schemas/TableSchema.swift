/// A table's columns and options, read from `schemas/*.json`.
///
/// Two layouts are accepted: BigQuery's JSON schema as is (a list of
/// `{name, type, mode, description}`), or an object that adds table options:
/// `{"table", "description", "primary_key", "partition_by", "fields": [...]}`.
public struct TableSchema: Sendable, Hashable {
    public var table: String
    public var description: String?
    public var columns: [Column]
    public var primaryKey: [String]
    public var partitionBy: String?
    /// The schema file, as shown in messages.
    public var file: String

    public struct Column: Sendable, Hashable {
        public var name: String
        public var type: ColumnType
        public var mode: Mode
        public var description: String?
        public var location: SourceLocation
        /// How the source writes the column's dates or times, when not ISO 8601 (`format`).
        public var inputFormat: TimeFormat?
        /// The zone of timestamps the source writes without one (`timezone`); UTC if nil.
        public var inputTimezone: String?

        public enum Mode: String, Sendable {
            case nullable = "NULLABLE"
            case required = "REQUIRED"
            case repeated = "REPEATED"
        }

        // Positions don't make two definitions differ.
        public static func == (lhs: Column, rhs: Column) -> Bool {
            (lhs.name, lhs.type, lhs.mode) == (rhs.name, rhs.type, rhs.mode)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(type)
            hasher.combine(mode)
        }
    }

    public func column(_ name: String) -> Column? {
        columns.first { $0.name == name }
    }

    public var columnNames: [String] { columns.map(\.name) }

    /// Same columns, types, modes and options: what "two files agree" means.
    public func agrees(with other: TableSchema) -> Bool {
        columns == other.columns && primaryKey == other.primaryKey && partitionBy == other.partitionBy
    }
}

/// Column types Sluice stores. BigQuery's aliases map onto these.
public enum ColumnType: String, Sendable, Hashable, CaseIterable {
    case string = "STRING"
    case int64 = "INT64"
    case float64 = "FLOAT64"
    case numeric = "NUMERIC"
    case bigNumeric = "BIGNUMERIC"
    case bool = "BOOL"
    case date = "DATE"
    case timestamp = "TIMESTAMP"
    case datetime = "DATETIME"
    case time = "TIME"
    case bytes = "BYTES"
    case json = "JSON"

    /// Reads a BigQuery type name (case-insensitive, legacy names included). RECORD/STRUCT
    /// columns are stored as JSON.
    public init?(bigQueryName name: String) {
        switch name.uppercased() {
        case "STRING": self = .string
        case "INT64", "INTEGER", "INT", "SMALLINT", "BIGINT", "TINYINT", "BYTEINT": self = .int64
        case "FLOAT64", "FLOAT": self = .float64
        case "NUMERIC", "DECIMAL": self = .numeric
        case "BIGNUMERIC", "BIGDECIMAL": self = .bigNumeric
        case "BOOL", "BOOLEAN": self = .bool
        case "DATE": self = .date
        case "TIMESTAMP": self = .timestamp
        case "DATETIME": self = .datetime
        case "TIME": self = .time
        case "BYTES": self = .bytes
        case "JSON", "RECORD", "STRUCT": self = .json
        default: return nil
        }
    }

    /// The bounds of a decimal type's values; nil for the other types.
    public var decimalLimits: DecimalLimits? {
        switch self {
        case .numeric: .numeric
        case .bigNumeric: .bigNumeric
        default: nil
        }
    }

    /// Whether values of the type are exact decimals (kept as canonical decimal text on SQLite).
    public var isDecimal: Bool { decimalLimits != nil }

    /// The SQLite column type with the right affinity. Decimals are canonical decimal text
    /// (TEXT affinity: SQLite's NUMERIC affinity would turn them into doubles) compared with the
    /// `decimal` collation, so `WHERE cost > 5`, ORDER BY, min and max compare them as numbers;
    /// the type name keeps the precision and scale for readers of the file.
    public var sqliteType: String {
        switch self {
        case .int64, .bool: "INTEGER"
        case .float64: "REAL"
        case .numeric: "DECIMAL_TEXT(38,9) COLLATE decimal"
        case .bigNumeric: "DECIMAL_TEXT(76,38) COLLATE decimal"
        case .bytes: "BLOB"
        case .string, .date, .timestamp, .datetime, .time, .json: "TEXT"
        }
    }
}
