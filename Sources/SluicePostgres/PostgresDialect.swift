import SluiceModel
import SluiceStorage

/// PostgreSQL's spelling of the few things that differ between warehouses.
struct PostgresDialect: SQLDialect {
    /// The column every staged table has last, numbered as rows arrive: PostgreSQL has no
    /// rowid, and a row's physical place (ctid) moves when it is updated or vacuumed. Hidden
    /// from `columns(of:)` and from the run's views, never published.
    static let arrivalColumn = "_sluice_arrival"

    func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    func placeholder(_ index: Int) -> String { "$\(index)" }

    // Decimals are `numeric`, which PostgreSQL computes on exactly with its own operators.

    func decimalLiteral(_ text: String) -> String { text }

    func decimalArithmetic(_ op: String, _ left: String, _ right: String) -> String {
        op == "/" ? "(CAST(\(left) AS numeric) / \(right))" : "(\(left) \(op) \(right))"
    }

    func decimalComparison(_ op: String, _ left: String, _ right: String) -> String { "\(left) \(op) \(right)" }

    func decimalAggregate(_ function: String, _ argument: String) -> String? { "\(function)(\(argument))" }

    func decimalRound(_ value: String, _ digits: String) -> String { "round(CAST(\(value) AS numeric), \(digits))" }

    func decimalAbsolute(_ value: String) -> String { "abs(\(value))" }

    func decimalCanonical(_ value: String) -> String { "CAST(\(value) AS numeric)" }

    func storeDecimal(_ value: String, _ limits: DecimalLimits) -> String {
        "CAST(\(value) AS numeric(\(limits.precision),\(limits.scale)))"
    }

    /// Spelled out rather than `IS NOT DISTINCT FROM`, which no index serves: matching a
    /// staged key against the published table's (merges, the run's views, publish) was then a
    /// nested loop over both, hours for a few hundred thousand rows. This form is answered by
    /// the key's index (a bitmap OR of `k = $1` and `k IS NULL`).
    func nullSafeEquals(_ left: String, _ right: String) -> String { "(\(left) = \(right) OR (\(left) IS NULL AND \(right) IS NULL))" }

    /// Rows of a staged table in load order. (A published table has no arrival column; merges
    /// read staged tables.)
    var arrivalOrder: String { quote(Self.arrivalColumn) }

    /// One row a key with DISTINCT ON, in the order that makes the row SQLite's row-by-row
    /// upsert keeps come first: with `newerBy`, the last to arrive of the rows with the
    /// greatest non-null value (a later row replaces the kept one when at least as new), or,
    /// when every value is null, the first to arrive (a null never replaces); without, the
    /// first to arrive. `updating` is every non-key column, all of which come from that row.
    func collapseStatement(
        into staged: String, columns: [String], select: [String], from source: String,
        key: [String], newerBy: String?, updating: [String]
    ) -> String {
        let keyList = key.joined(separator: ", ")
        let order: String
        if let newerBy {
            order = """
                \(newerBy) IS NULL, \(newerBy) DESC, CASE WHEN \(newerBy) IS NULL THEN \(arrivalOrder) END, \(arrivalOrder) DESC
                """
        } else {
            order = arrivalOrder
        }
        return """
            INSERT INTO \(staged) (\(columns.joined(separator: ", ")))
            SELECT DISTINCT ON (\(keyList)) \(select.joined(separator: ", ")) FROM \(source) ORDER BY \(keyList), \(order)
            """
    }
}
