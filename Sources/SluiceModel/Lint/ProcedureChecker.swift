import Foundation
import GRDBSQLite

/// What preparing a procedure taught us: the tables it reads and writes (DAG edges), its named
/// parameters, and why it failed to prepare, if it did.
public struct ProcedureInfo: Sendable {
    public var path: String
    public var reads: [String] = []
    public var writes: [String] = []
    /// Named parameters without their `:`, `@` or `$`.
    public var parameters: [String] = []
    public var diagnostics: [Diagnostic] = []
}

/// Prepares SQL procedures against an in-memory SQLite database that holds every table of the
/// project's schemas (empty), so unknown tables and columns and syntax errors are found
/// before any run. SQLite's authorizer reports which tables each statement reads and writes.
/// Statements that create or drop tables are executed (inside a savepoint that is rolled
/// back) so later statements of the same procedure can use those tables; nothing else runs.
public final class ProcedureChecker {
    private var connection: OpaquePointer?
    private var cache: [String: ProcedureInfo] = [:]
    private let progressCalls = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    public init(schemas: SchemaCatalog) {
        progressCalls.initialize(to: 0)
        sqlite3_open_v2(":memory:", &connection, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        SQLiteDecimalFunctions.register(on: connection)
        // Statements that change the schema are executed (on empty tables). A recursive CTE in
        // one could run forever: stop any statement after about a million VM steps.
        sqlite3_progress_handler(
            connection, 10_000,
            { counter in
                guard let counter else { return 1 }
                let calls = counter.assumingMemoryBound(to: Int.self)
                calls.pointee += 1
                return calls.pointee > 100 ? 1 : 0
            }, progressCalls)
        sqlite3_limit(connection, SQLITE_LIMIT_LENGTH, 1 << 20)
        for schema in schemas.tables.values.sorted(by: { $0.table < $1.table }) {
            let columns = schema.columns.map { "\"\($0.name)\" \($0.type.sqliteType)" }.joined(separator: ", ")
            // Names passed Identifier checks in SchemaParser; quoting keeps keywords usable. As at
            // run time, a table is published (`main`) and has a writable copy in TEMP, which plain
            // names find first: writing `main.x` is refused as it would be in a run.
            sqlite3_exec(connection, "CREATE TABLE \"\(schema.table)\" (\(columns))", nil, nil, nil)
            sqlite3_exec(connection, "CREATE TEMP TABLE \"\(schema.table)\" (\(columns))", nil, nil, nil)
        }
    }

    deinit {
        sqlite3_close_v2(connection)
        progressCalls.deallocate()
    }

    /// Checks a procedure file once; later calls for the same path return the same result.
    public func check(fileAt url: URL, path: String) -> ProcedureInfo {
        if let cached = cache[path] { return cached }
        var info = ProcedureInfo(path: path)
        guard let data = try? Data(contentsOf: url) else {
            info.diagnostics.append(Diagnostic(.missingProcedure, at: .start(of: path), "cannot read the procedure file"))
            cache[path] = info
            return info
        }
        switch TextScan.checkText(data, file: path) {
        case .failure(var diagnostic):
            diagnostic.rule = .invalidProcedure
            info.diagnostics.append(diagnostic)
        case .success(let sql):
            check(sql: sql, data: data, into: &info)
        }
        cache[path] = info
        return info
    }

    private final class AccessLog {
        var reads: [String] = []
        var writes: [String] = []
        var created: Set<String> = []
        var changedSchema = false
        /// Why the sandbox refused the statement being prepared, if it did.
        var refusal: String?

        func note(_ list: inout [String], _ table: String) {
            if !list.contains(table) { list.append(table) }
        }
    }

    private func check(sql: String, data: Data, into info: inout ProcedureInfo) {
        let log = AccessLog()
        let authorizer:
            @convention(c) (
                UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                UnsafePointer<CChar>?, UnsafePointer<CChar>?
            ) -> Int32 = { context, action, first, second, database, _ in
                guard let context else { return SQLITE_OK }
                let log = Unmanaged<AccessLog>.fromOpaque(context).takeUnretainedValue()
                if let reason = ProcedureSandbox.script.refusal(
                    action: action, first.map { String(cString: $0) },
                    second.map { String(cString: $0) },
                    database: database.map { String(cString: $0) })
                {
                    if log.refusal == nil { log.refusal = reason }
                    return SQLITE_DENY
                }
                guard let first else { return SQLITE_OK }
                let table = String(cString: first)
                if table.hasPrefix("sqlite_") { return SQLITE_OK }
                switch action {
                case SQLITE_READ:
                    log.note(&log.reads, table)
                case SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE:
                    log.note(&log.writes, table)
                case SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_TABLE:
                    log.created.insert(table)
                    log.changedSchema = true
                case SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_TABLE, SQLITE_ALTER_TABLE, SQLITE_CREATE_VIEW, SQLITE_CREATE_TEMP_VIEW:
                    log.changedSchema = true
                default:
                    break
                }
                return SQLITE_OK
            }
        sqlite3_exec(connection, "SAVEPOINT sluice_procedure_check", nil, nil, nil)
        sqlite3_set_authorizer(connection, authorizer, Unmanaged.passUnretained(log).toOpaque())
        defer {
            sqlite3_set_authorizer(connection, nil, nil)
            sqlite3_exec(connection, "ROLLBACK TO sluice_procedure_check", nil, nil, nil)
            sqlite3_exec(connection, "RELEASE sluice_procedure_check", nil, nil, nil)
        }

        progressCalls.pointee = 0
        var parameters: [String] = []
        var statements = 0
        sql.withCString { base in
            var cursor: UnsafePointer<CChar>? = base
            while let current = cursor, current.pointee != 0 {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                log.changedSchema = false
                let statementStart = base.distance(to: current)
                let word = Self.firstWord(in: data, from: statementStart)
                log.refusal =
                    word < data.count
                    ? ProcedureSandbox.refusal(ofStatement: String(decoding: data[(data.startIndex + word)...].prefix(16), as: UTF8.self))
                    : nil
                if let refusal = log.refusal {
                    info.diagnostics.append(
                        Diagnostic(
                            .procedureSandbox, at: TextScan.location(ofByte: word, in: data, file: info.path),
                            "procedures run sandboxed, and this statement is refused: \(refusal)"))
                    return
                }
                let status = sqlite3_prepare_v2(connection, current, -1, &statement, &tail)
                if status != SQLITE_OK, let refusal = log.refusal {
                    let start = Self.firstWord(in: data, from: statementStart)
                    info.diagnostics.append(
                        Diagnostic(
                            .procedureSandbox, at: TextScan.location(ofByte: start, in: data, file: info.path),
                            "procedures run sandboxed, and this statement is refused: \(refusal)"))
                    sqlite3_finalize(statement)
                    return
                }
                if status != SQLITE_OK {
                    let message = String(cString: sqlite3_errmsg(connection))
                    let errorOffset = Int(sqlite3_error_offset(connection))
                    var start = statementStart
                    if errorOffset >= 0 {
                        start += errorOffset
                    } else {
                        start = Self.firstWord(in: data, from: start)
                    }
                    info.diagnostics.append(
                        Diagnostic(
                            .invalidProcedure, at: TextScan.location(ofByte: start, in: data, file: info.path),
                            "the SQL does not prepare against the tables in schemas/: \(message)"))
                    sqlite3_finalize(statement)
                    return
                }
                if let statement {
                    statements += 1
                    let count = sqlite3_bind_parameter_count(statement)
                    if count > 0 {
                        for index in 1...count {
                            guard let name = sqlite3_bind_parameter_name(statement, index) else { continue }
                            let bare = String(String(cString: name).dropFirst())
                            if !parameters.contains(bare) { parameters.append(bare) }
                        }
                    }
                    if log.changedSchema {
                        progressCalls.pointee = 0
                        if sqlite3_step(statement) == SQLITE_INTERRUPT {
                            info.diagnostics.append(
                                Diagnostic(
                                    .invalidProcedure, at: TextScan.location(ofByte: statementStart, in: data, file: info.path),
                                    "this statement changes the schema and did not finish within lint's step limit (a recursive query?); lint does not run it"
                                ))
                            sqlite3_finalize(statement)
                            return
                        }
                    }
                    sqlite3_finalize(statement)
                }
                cursor = tail
            }
        }
        if statements == 0 && info.diagnostics.isEmpty {
            info.diagnostics.append(Diagnostic(.invalidProcedure, at: .start(of: info.path), "the procedure holds no SQL statement"))
        }
        info.reads = log.reads.filter { !log.created.contains($0) }
        info.writes = log.writes.filter { !log.created.contains($0) }
        info.parameters = parameters
    }

    /// Where a statement's first word is: past the whitespace and comments before it, so a
    /// problem points at the statement rather than at the comment above it.
    public static func firstWord(in data: Data, from offset: Int) -> Int {
        let bytes = [UInt8](data)
        var index = offset
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09:
                index += 1
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                index += 2
                while index + 1 < bytes.count, !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) { index += 1 }
                index = min(index + 2, bytes.count)
            default:
                return index
            }
        }
        return min(offset, bytes.count)
    }
}
