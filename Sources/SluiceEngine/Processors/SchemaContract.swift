import SluiceModel
import SluiceStorage

/// What a target's schema promises about its rows, checked on what a step staged for it before
/// anything is published: a REQUIRED column has a value in every row, and the primary key is
/// unique. A staged table that breaks either fails the step (and so the run: nothing is
/// published), with the column and an example key.
enum SchemaContract {
    static func check(staged: String, table: String, schema: TableSchema?, workspace: any RunWorkspace) async throws {
        guard let schema else { return }
        let dialect = workspace.dialect
        let key = schema.primaryKey
        let stagedColumns = Set(try await workspace.requireColumns(table).map(\.name))
        for column in schema.columns where column.mode == .required && stagedColumns.contains(column.name) {
            let shown = key.isEmpty ? [column.name] : key
            let example = try await workspace.query(
                "SELECT \(dialect.quotedList(shown)) FROM \(staged) WHERE \(dialect.quote(column.name)) IS NULL LIMIT 1", [])
            guard let row = example.rows.first else { continue }
            let which = key.isEmpty ? "a row" : "the row with \(describe(key, row))"
            throw StepFailure(
                .schemaViolated,
                "column '\(column.name)' of '\(table)' is REQUIRED in \(schema.file), but \(which) has no value; nothing was published")
        }
        guard !key.isEmpty, key.allSatisfy(stagedColumns.contains) else { return }
        let quotedKey = dialect.quotedList(key)
        let duplicate = try await workspace.query(
            "SELECT \(quotedKey), count(*) FROM \(staged) GROUP BY \(quotedKey) HAVING count(*) > 1 LIMIT 1", [])
        if let row = duplicate.rows.first {
            throw StepFailure(
                .schemaViolated,
                """
                the primary key of '\(table)' (\(key.joined(separator: ", ")), in \(schema.file)) is not unique: \
                \(row.last?.displayText ?? "several") rows have \(describe(key, row)); nothing was published
                """)
        }
    }

    private static func describe(_ key: [String], _ row: [WarehouseValue]) -> String {
        zip(key, row).map { "\($0) = \($1.displayText)" }.joined(separator: ", ")
    }
}
