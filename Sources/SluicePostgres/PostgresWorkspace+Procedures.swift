import Foundation
import PostgresNIO
import SluiceModel
import SluiceStorage

/// Procedures on PostgreSQL run inside a transaction as the org's sandbox role (`SET LOCAL
/// ROLE`), which may read the org's published tables and nothing else of the server; for the
/// length of that transaction it is also granted the run's views (and, for an aggregate's
/// rows, INSERT on the one staged table), and the grants are revoked (or rolled back) before
/// it ends, so no other run's procedure ever sees them. The search path is the run's view:
/// `pg_temp` (the writable copies and the script's own TEMP tables), the run's views, the
/// org's tables. Each statement is checked first (`PostgresProcedureText`), and the role is
/// checked again before each one runs.
extension PostgresWorkspace {
    /// The SQLite checker (the one lint uses) says what a procedure reads, writes and binds, so
    /// that lint and a run agree on a procedure's edges on both warehouses; procedures are
    /// written in the SQL both understand (see docs/postgres.md). PostgreSQL's own refusals
    /// (SET, COPY, DO, refused functions) are added as diagnostics.
    func checkProcedure(fileAt url: URL, path: String, schemas: SchemaCatalog) -> ProcedureInfo {
        var info = ProcedureChecker(schemas: schemas).check(fileAt: url, path: path)
        guard let data = try? Data(contentsOf: url), let sql = String(data: data, encoding: .utf8) else { return info }
        let text = PostgresProcedureText(sql)
        for statement in text.statements {
            guard let refusal = PostgresProcedureText.refusal(of: statement, policy: .script) else { continue }
            let location = SourceLocation(ofByte: statement.offset, in: data, file: path)
            let message = "procedures run sandboxed, and this statement is refused: \(refusal)"
            if !info.diagnostics.contains(where: { $0.message == message }) {
                info.diagnostics.append(Diagnostic(.procedureSandbox, at: location, message))
            }
        }
        return info
    }

    func runScript(
        _ sql: String, named: [String: WarehouseValue], writes: [(table: String, columns: [SluiceStorage.ColumnDefinition])],
        step: String?
    ) async throws -> Int {
        let text = PostgresProcedureText(sql)
        let statements = try text.statements.map { statement in
            if let refusal = PostgresProcedureText.refusal(of: statement, policy: .script) {
                throw Self.refused(refusal, at: text.location(of: statement))
            }
            let (bound, values) = try PostgresProcedureText.bind(statement, named: named)
            return (sql: bound, values: values, location: text.location(of: statement))
        }
        let writes = writes.map { (table: $0.table, columns: $0.columns) }
        for (table, _) in writes where !Identifier.isValid(table) { throw StepFailure.config("'\(table)' is not a valid table name") }
        return try await sandboxed { connection in
            for (table, columns) in writes {
                let copy = "pg_temp.\(self.quote(table))"
                if let current = try await self.viewSource(connection, table) {
                    // The run's view of it (which may compose staged and published rows)
                    // becomes a table the script may write, under the table's own name.
                    try await connection.run("CREATE TEMP TABLE \(self.quote(table)) ON COMMIT DROP AS SELECT * FROM \(current)", logger: self.logger)
                } else {
                    let definitions = columns.map { "\(self.quote($0.name)) \(PostgresValue.sqlType($0.type))" }.joined(separator: ", ")
                    try await connection.run("CREATE TEMP TABLE \(self.quote(table)) (\(definitions)) ON COMMIT DROP", logger: self.logger)
                }
                try await connection.run("GRANT ALL ON TABLE \(copy) TO \(self.role)", logger: self.logger)
            }
            let changed = try await self.asSandbox(connection, searchPath: "pg_temp, \(self.views), \(self.published)") {
                var changed = 0
                for statement in statements {
                    changed += try await self.runAuthor(connection, statement.sql, statement.values, at: statement.location)
                }
                return changed
            }
            // The script's result replaces the table when the run publishes.
            for (table, _) in writes {
                let quoted = self.quote(table)
                try await connection.run("DROP VIEW IF EXISTS \(self.views).\(quoted)", logger: self.logger)
                try await connection.run("DROP TABLE IF EXISTS \(self.staging).\(quoted)", logger: self.logger)
                try await connection.run("CREATE TABLE \(self.staging).\(quoted) AS SELECT * FROM pg_temp.\(quoted)", logger: self.logger)
                try await connection.run(
                    "ALTER TABLE \(self.staging).\(quoted) ADD COLUMN \(self.quote(PostgresDialect.arrivalColumn)) bigint GENERATED BY DEFAULT AS IDENTITY",
                    logger: self.logger)
                try await self.register(connection, table: table, change: .replace, step: step)
                try await self.createView(connection, table: table, change: .replace)
            }
            try await self.touch(connection)
            for (table, _) in writes { self.noteWritten(table) }
            return changed
        }
    }

    func queryProcedure(_ sql: String, _ arguments: [WarehouseValue], maxRows: Int?) async throws -> QueryResult {
        let text = PostgresProcedureText(sql)
        let statement = try Self.oneQuery(text)
        return try await sandboxed(commit: false) { connection in
            try await self.asSandbox(connection, searchPath: "\(self.views), \(self.published)", readOnly: true) {
                do {
                    guard let maxRows else { return try await connection.fetch(statement.text, arguments, logger: self.logger) }
                    // A cursor stops the server after maxRows, instead of sending every row.
                    try await connection.run("DECLARE _sluice_rows NO SCROLL CURSOR FOR \(statement.text)", arguments, logger: self.logger)
                    return try await connection.fetch("FETCH FORWARD \(max(0, maxRows)) FROM _sluice_rows", [], logger: self.logger)
                } catch {
                    throw Self.failure(error, at: text.location(of: statement))
                }
            }
        }
    }

    func insertProcedureRows(into staged: String, columns: [String], select: String, _ arguments: [WarehouseValue]) async throws -> Int {
        let table = try stagedTable(staged)
        for column in columns where !Identifier.isValid(column) { throw StepFailure.config("'\(column)' is not a valid column name") }
        let text = PostgresProcedureText(select)
        let statement = try Self.oneQuery(text)
        let target = "\(staging).\(quote(table))"
        return try await sandboxed { connection in
            // The staged table is the one thing outside TEMP the rows may go to.
            try await connection.run("GRANT USAGE ON SCHEMA \(self.staging) TO \(self.role)", logger: self.logger)
            try await connection.run("GRANT INSERT ON TABLE \(target) TO \(self.role)", logger: self.logger)
            let inserted = try await self.asSandbox(connection, searchPath: "\(self.views), \(self.published)") {
                try await self.runAuthor(
                    connection, "INSERT INTO \(target) (\(self.dialect.quotedList(columns))) \(statement.text)", arguments,
                    at: text.location(of: statement))
            }
            try await connection.run("REVOKE ALL ON TABLE \(target) FROM \(self.role)", logger: self.logger)
            try await connection.run("REVOKE ALL ON SCHEMA \(self.staging) FROM \(self.role)", logger: self.logger)
            try await self.touch(connection)
            self.noteWritten(table)
            return inserted
        }
    }

    // MARK: The sandbox

    /// The one statement of a query procedure, or why it is refused.
    private static func oneQuery(_ text: PostgresProcedureText) throws -> PostgresProcedureText.Statement {
        guard let statement = text.statements.first else { throw StepFailure(.procedureFailed, "the query is empty") }
        if text.statements.count > 1 {
            throw refused("a query procedure is one statement, and this one goes on", at: text.location(of: text.statements[1]))
        }
        if let refusal = PostgresProcedureText.refusal(of: statement, policy: .query) {
            throw refused(refusal, at: text.location(of: statement))
        }
        return statement
    }

    /// Runs `body` in a transaction on a connection of the pool, with the run's views granted
    /// to the sandbox role: committed (the grants revoked first) when `commit`, else rolled
    /// back. TEMP tables the procedure made are discarded afterwards, so nothing of it stays on
    /// the pooled connection. Only while this opening owns the staging (`requireOwnership`):
    /// a query's grants change the run's views too, if only until its rollback.
    private func sandboxed<T: Sendable>(commit: Bool = true, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await gate.run {
            try await self.pool.withConnection { connection in
                try await connection.run("BEGIN", logger: self.logger)
                do {
                    try await self.requireOwnership(connection)
                    try await connection.run("GRANT USAGE ON SCHEMA \(self.views) TO \(self.role)", logger: self.logger)
                    try await connection.run("GRANT SELECT ON ALL TABLES IN SCHEMA \(self.views) TO \(self.role)", logger: self.logger)
                    let result = try await body(connection)
                    if commit {
                        try await connection.run("REVOKE ALL ON ALL TABLES IN SCHEMA \(self.views) FROM \(self.role)", logger: self.logger)
                        try await connection.run("REVOKE ALL ON SCHEMA \(self.views) FROM \(self.role)", logger: self.logger)
                        try await connection.run("COMMIT", logger: self.logger)
                    } else {
                        try await connection.run("ROLLBACK", logger: self.logger)
                    }
                    try await connection.run("DISCARD TEMP", logger: self.logger)
                    return result
                } catch {
                    do {
                        try await connection.run("ROLLBACK", logger: self.logger)
                        try await connection.run("DISCARD TEMP", logger: self.logger)
                    } catch {
                        // A connection that can't be put back in order is not given back.
                        try? await connection.close()
                    }
                    throw error
                }
            }
        }
    }

    /// Runs `body` as the sandbox role with `searchPath`, then becomes the warehouse's user
    /// again. A read-only transaction refuses writes of a query (TEMP tables included).
    private func asSandbox<T: Sendable>(
        _ connection: PostgresConnection, searchPath: String, readOnly: Bool = false, _ body: () async throws -> T
    ) async throws -> T {
        try await connection.run("SET LOCAL search_path TO \(searchPath)", logger: logger)
        try await connection.run("SET LOCAL ROLE \(role)", logger: logger)
        if readOnly { try await connection.run("SET TRANSACTION READ ONLY", logger: logger) }
        let result = try await body()
        try await checkRole(connection)
        try await connection.run("RESET ROLE", logger: logger)
        try await connection.run("SET LOCAL search_path TO pg_catalog", logger: logger)
        return result
    }

    /// Fails unless the connection still acts as the sandbox role (nothing the procedure ran
    /// changed it, which the checks before each statement mean to make impossible).
    private func checkRole(_ connection: PostgresConnection) async throws {
        let current = try await connection.fetch("SELECT current_user::text", [], logger: logger).rows.first?.first
        guard current == .text(warehouse.sandboxRole(org)) else {
            throw StepFailure(.procedureRefused, "procedures run sandboxed, and this one changed its role; nothing of it was kept")
        }
    }

    /// Runs one statement of the author's (as the sandbox role), its failure said as the
    /// procedure's at `location`.
    private func runAuthor(
        _ connection: PostgresConnection, _ sql: String, _ values: [WarehouseValue], at location: SourceLocation
    ) async throws -> Int {
        try await checkRole(connection)
        do {
            return try await connection.run(sql, values, logger: logger)
        } catch {
            throw Self.failure(error, at: location)
        }
    }

    static func refused(_ reason: String, at location: SourceLocation?) -> StepFailure {
        StepFailure(.procedureRefused, "procedures run sandboxed, and this statement is refused: \(reason)", at: location)
    }

    /// A server error of the author's statement as the SQLite sandbox words it: a privilege
    /// the sandbox lacks or a write in a query is a refusal; anything else is the procedure's
    /// failure, with the server's message.
    static func failure(_ error: any Error, at location: SourceLocation) -> any Error {
        guard let error = error as? PSQLError, let info = error.serverInfo else { return error }
        let message = info[.message] ?? "failed"
        switch info[.sqlState] {
        case "42501":
            return refused("\(message) (a procedure reads only its org's tables and this run's, and writes only its copies)", at: location)
        case "25006":
            return refused("a query may only read (\(message))", at: location)
        case "57014":
            return CancellationError()
        default:
            return StepFailure(.procedureFailed, message, at: location)
        }
    }
}
