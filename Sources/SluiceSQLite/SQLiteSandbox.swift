import Foundation
import GRDBSQLite
import SluiceModel
import SluiceStorage

/// A connection of its own for SQL the pipeline's author wrote (procedures): the org's
/// warehouse as `main`, the run's staging as `stage`, and in TEMP the same views of staged
/// tables the run's own connection has. Every statement is prepared under SQLite's authorizer
/// with `ProcedureSandbox`'s rules, the ones lint checks procedures with; the few statements
/// the engine itself runs here (copies in and out of TEMP) are prepared as `internal`.
///
/// The run's GRDB connection keeps its own authorizer (GRDB learns from it what each statement
/// does), so the procedures can't run there. The workspace calls this connection from inside
/// a write on its own, so the two never wait on each other's lock on the staging file.
/// Unchecked Sendable: one call uses it at a time (inside that write); `interrupt()`, the one
/// call from elsewhere, is safe from any thread.
final class SQLiteSandbox: @unchecked Sendable {
    private var connection: OpaquePointer?
    private let gate = Gate()

    /// What the authorizer applies to the statement being prepared.
    private final class Gate {
        var policy: ProcedureSandbox?
        var refusal: String?
    }

    /// A statement that failed: why, and where it starts in the SQL (its file left empty
    /// for the caller, who knows it, to fill in).
    struct Failure: Error {
        var code: String
        var message: String
        var location: SourceLocation?
    }

    /// `cacheBytes` is the page cache of the connection, split between the warehouse, the
    /// staging and temp.
    init(warehouse: String, staging: String, busyTimeout: Duration, cacheBytes: Int) throws(StepFailure) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(warehouse, &connection, flags, nil) == SQLITE_OK else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(connection)
            connection = nil
            throw StepFailure(.warehouseUnavailable, "could not open the warehouse for a procedure: \(message)")
        }
        sqlite3_busy_timeout(connection, Int32(clamping: Int(busyTimeout.timeInterval * 1000)))
        sqlite3_extended_result_codes(connection, 1)
        SQLiteDecimalFunctions.register(on: connection)
        let cacheKiB = max(1, cacheBytes / 3 / 1024)
        let setUp = [
            "PRAGMA temp_store = FILE",
            "ATTACH DATABASE \(SQLiteSandbox.literal(staging)) AS stage",
            "PRAGMA stage.journal_mode = TRUNCATE",
            "PRAGMA stage.synchronous = OFF",
            "PRAGMA main.cache_size = -\(cacheKiB)",
            "PRAGMA stage.cache_size = -\(cacheKiB)",
            "PRAGMA temp.cache_size = -\(cacheKiB)",
        ]
        for statement in setUp {
            do { try exec(statement) } catch {
                throw StepFailure(
                    .warehouseUnavailable, "could not open the warehouse for a procedure: \((error as? Failure)?.message ?? "\(error)")")
            }
        }
        let context = Unmanaged.passUnretained(gate).toOpaque()
        sqlite3_set_authorizer(
            connection,
            { context, action, first, second, database, _ in
                guard let context else { return SQLITE_DENY }
                let gate = Unmanaged<Gate>.fromOpaque(context).takeUnretainedValue()
                guard let policy = gate.policy else { return SQLITE_OK }
                let reason = policy.refusal(
                    action: action, first.map { String(cString: $0) }, second.map { String(cString: $0) },
                    database: database.map { String(cString: $0) })
                guard let reason else { return SQLITE_OK }
                if gate.refusal == nil { gate.refusal = reason }
                return SQLITE_DENY
            }, context)
    }

    deinit {
        sqlite3_close_v2(connection)
    }

    /// Stops the statement running now, from any thread (a cancelled step).
    func interrupt() {
        sqlite3_interrupt(connection)
    }

    // MARK: Running statements

    /// Runs statements of the engine's, not the author's.
    func exec(_ sql: String) throws {
        gate.policy = nil
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(connection, sql, nil, nil, &message)
        if status != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_free(message)
            throw Failure(code: Self.code(status), message: text, location: nil)
        }
    }

    /// Rows of a query of the engine's.
    func rows(_ sql: String, _ arguments: [WarehouseValue] = []) throws -> [[WarehouseValue]] {
        try run(sql, policy: nil, positional: arguments, collect: true).result?.rows ?? []
    }

    /// Runs SQL statement by statement: the author's under `policy`, the engine's with nil.
    /// `:name` parameters are bound from `named`, other placeholders in order from `positional`.
    /// Returns the rows the statements changed and, with `collect`, the rows and column names of
    /// the last statement that has columns.
    /// With `oneStatement`, the SQL must be a single statement (an author's query wrapped by
    /// the engine: text after it would be statements of their own).
    func run(
        _ sql: String, policy: ProcedureSandbox?, named: [String: WarehouseValue]? = nil, positional: [WarehouseValue] = [],
        collect: Bool = false, oneStatement: Bool = false, maxRows: Int? = nil
    ) throws -> (changed: Int, result: QueryResult?) {
        let before = sqlite3_total_changes64(connection)
        var result: QueryResult?
        var remaining = positional[...]
        let text = Data(sql.utf8)
        try sql.withCString { base in
            var cursor: UnsafePointer<CChar> = base
            var statements = 0
            while cursor.pointee != 0 {
                let offset = base.distance(to: cursor)
                let word = ProcedureChecker.firstWord(in: text, from: offset)
                if word >= text.count { break }
                let firstWord = SourceLocation(ofByte: word, in: text, file: "")
                if policy != nil {
                    if oneStatement && statements > 0 {
                        throw Failure(
                            code: "procedure_refused",
                            message: "procedures run sandboxed, and this one is refused: a query procedure is one statement, and this one goes on",
                            location: firstWord)
                    }
                    if let refusal = ProcedureSandbox.refusal(
                        ofStatement: String(decoding: text[(text.startIndex + word)...].prefix(16), as: UTF8.self))
                    {
                        throw Failure(
                            code: "procedure_refused", message: "procedures run sandboxed, and this statement is refused: \(refusal)",
                            location: firstWord)
                    }
                }
                statements += 1
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                // The rules apply while the statement runs too: SQLite prepares some statements
                // only then (VACUUM's own).
                gate.policy = policy
                gate.refusal = nil
                defer { gate.policy = nil }
                let status = sqlite3_prepare_v2(connection, cursor, -1, &statement, &tail)
                defer { sqlite3_finalize(statement) }
                guard status == SQLITE_OK else {
                    if let refusal = gate.refusal {
                        throw Failure(
                            code: "procedure_refused",
                            message: "procedures run sandboxed, and this statement is refused: \(refusal)", location: firstWord)
                    }
                    throw Failure(code: Self.code(status), message: String(cString: sqlite3_errmsg(connection)), location: firstWord)
                }
                guard let statement, let tail else { break }
                cursor = tail
                if policy == .query, sqlite3_stmt_readonly(statement) == 0 {
                    throw Failure(
                        code: "procedure_refused", message: "procedures run sandboxed, and this statement is refused: a query may only read",
                        location: firstWord)
                }
                let count = sqlite3_bind_parameter_count(statement)
                for index in stride(from: Int32(1), through: count, by: 1) {
                    var value = WarehouseValue.null
                    if let named, let name = sqlite3_bind_parameter_name(statement, index) {
                        let bare = String(String(cString: name).dropFirst())
                        guard let given = named[bare] else {
                            throw Failure(
                                code: "invalid_config", message: "the procedure uses :\(bare), but the step gives no params.\(bare)",
                                location: firstWord)
                        }
                        value = given
                    } else if let next = remaining.popFirst() {
                        value = next
                    }
                    Self.bind(value, at: index, of: statement)
                }
                let columnCount = sqlite3_column_count(statement)
                var rows: [[WarehouseValue]] = []
                while true {
                    let step = sqlite3_step(statement)
                    if step == SQLITE_DONE { break }
                    guard step == SQLITE_ROW else {
                        if let refusal = gate.refusal {
                            throw Failure(
                                code: "procedure_refused",
                                message: "procedures run sandboxed, and this statement is refused: \(refusal)", location: firstWord)
                        }
                        throw Failure(code: Self.code(step), message: String(cString: sqlite3_errmsg(connection)), location: firstWord)
                    }
                    if collect { rows.append((0..<columnCount).map { Self.value(statement, $0) }) }
                    if let maxRows, rows.count >= maxRows { break }
                }
                if collect, columnCount > 0 {
                    result = QueryResult(
                        columns: (0..<columnCount).map { String(cString: sqlite3_column_name(statement, $0)) }, rows: rows,
                        types: (0..<columnCount).map { column in
                            sqlite3_column_decltype(statement, column).map { ColumnType(sqliteType: String(cString: $0)) }
                        })
                }
            }
        }
        return (Int(sqlite3_total_changes64(connection) - before), result)
    }

    // MARK: Values

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ value: WarehouseValue, at index: Int32, of statement: OpaquePointer) {
        switch value {
        case .null: sqlite3_bind_null(statement, index)
        case .integer(let number): sqlite3_bind_int64(statement, index, number)
        case .real(let number): sqlite3_bind_double(statement, index, number)
        case .text(let text): sqlite3_bind_text(statement, index, text, -1, transient)
        case .blob(let bytes):
            bytes.withUnsafeBytes { buffer in _ = sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), transient) }
        }
    }

    private static func value(_ statement: OpaquePointer, _ column: Int32) -> WarehouseValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, column))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, column)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    /// A string literal for SQL text the engine writes (a file path), quotes doubled.
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// The failure code for an SQLite result code.
    static func code(_ status: Int32) -> String {
        switch status & 0xFF {
        case SQLITE_FULL: "warehouse_full"
        case SQLITE_CORRUPT, SQLITE_NOTADB: "warehouse_corrupt"
        case SQLITE_BUSY, SQLITE_LOCKED: "database_locked"
        case SQLITE_INTERRUPT: "cancelled"
        case SQLITE_AUTH: "procedure_refused"
        default: "procedure_failed"
        }
    }
}
