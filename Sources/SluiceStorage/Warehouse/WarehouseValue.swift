/// A value as it is bound into the warehouse (SQLite now, PostgreSQL later): what a typed
/// source value becomes. DATE, TIMESTAMP, DATETIME, TIME and JSON are canonical text; BOOL is
/// 1 or 0; NUMERIC is a double.
public enum WarehouseValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}
