import Foundation
import SluiceModel
import SluiceStorage

/// SQL of the pipeline's author (procedures) as PostgreSQL reads it: split into statements,
/// `:name` parameters turned into `$n`, and each statement checked against what the sandbox
/// allows before the server sees it. The server's privileges confine what an allowed
/// statement reaches (the sandbox role reads only its org and its run, and writes only the
/// copies it is given); this check refuses what privileges can't: transactions, settings and
/// roles, COPY, code (DO, functions, CALL), and functions that reach files, other databases,
/// locks or run SQL text of their own.
struct PostgresProcedureText {
    /// What a statement may be.
    enum Policy {
        /// A `sql` step's script: reads, writes (privileges decide which tables), TEMP objects.
        case script
        /// A query: one statement that only reads.
        case query
    }

    /// One statement of the text.
    struct Statement {
        /// Its text, from its first word to before its `;`.
        var text: String
        /// The byte offset of its first word in the whole text (for locations).
        var offset: Int
        /// Its first few words, uppercased.
        var words: [String]
        /// Names called as functions, lowercased (the last part of a qualified name).
        var calls: [String]
        /// `:name` parameters, as (byte range in `text`, name).
        var named: [(range: Range<Int>, name: String)]
    }

    let source: Data
    let statements: [Statement]

    init(_ sql: String) {
        source = Data(sql.utf8)
        statements = Self.split(Array(sql.utf8))
    }

    /// Where a statement starts, for a failure's location (its file filled in by the caller).
    func location(of statement: Statement) -> SourceLocation {
        SourceLocation(ofByte: statement.offset, in: source, file: "")
    }

    /// Why `statement` is refused under `policy`, in words for the pipeline's author; nil when
    /// it may run.
    static func refusal(of statement: Statement, policy: Policy) -> String? {
        let first = statement.words.first ?? ""
        let second = statement.words.count > 1 ? statement.words[1] : ""
        // A first word that is no PostgreSQL command (a typo such as `SELEC`) can't run: the
        // server's parser stops at it, so its syntax error is what the author should read, not
        // a refusal. SQLite's own commands are refused as the SQLite warehouse refuses them.
        if !first.isEmpty, !commands.contains(first), !sqliteCommands.contains(first) { return nil }
        switch first {
        case "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE":
            return "it may not begin, commit or roll back transactions: the run's transaction decides what commits"
        case "SET", "RESET", "SHOW", "DISCARD":
            return "it may not change or read settings or roles (\(first))"
        case "COPY":
            return "it may not COPY: files and programs are out of reach"
        case "DO", "CALL", "EXECUTE", "DEALLOCATE", "LOAD":
            return "it may not run code of its own (\(first))"
        default:
            break
        }
        if let call = statement.calls.first(where: isRefusedFunction) {
            return "it may not call \(call)()"
        }
        switch policy {
        case .query:
            if ["SELECT", "WITH", "VALUES", "TABLE"].contains(first) { return nil }
            return "a query may only read"
        case .script:
            switch first {
            case "SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE":
                return nil
            case "CREATE":
                var rest = statement.words.dropFirst()
                if rest.first == "OR" { return "it may not create functions, procedures or rules" }
                if rest.first == "LOCAL" || rest.first == "GLOBAL" { rest = rest.dropFirst() }
                if rest.first == "TEMP" || rest.first == "TEMPORARY" {
                    rest = rest.dropFirst()
                    if ["TABLE", "VIEW", "SEQUENCE"].contains(rest.first ?? "") { return nil }
                } else if rest.first == "INDEX" || (rest.first == "UNIQUE" && rest.dropFirst().first == "INDEX") {
                    // Only on tables it owns: its TEMP tables.
                    return nil
                }
                if ["FUNCTION", "PROCEDURE", "TRIGGER", "RULE", "EXTENSION", "LANGUAGE", "EVENT"].contains(rest.first ?? "") {
                    return "it may not create functions, procedures, triggers, rules or extensions"
                }
                return "it may create and drop only TEMP tables, views and indexes (CREATE TEMP TABLE …)"
            case "DROP":
                if ["TABLE", "VIEW", "INDEX", "SEQUENCE"].contains(second) { return nil }
                return "it may create and drop only TEMP tables, views and indexes"
            case "ALTER":
                return second == "TABLE" ? nil : "it may alter only its TEMP tables"
            default:
                return "it may not use \(first.isEmpty ? "this statement" : first)"
            }
        }
    }

    /// The words PostgreSQL statements begin with (its SQL commands' reference, version 15).
    static let commands: Set<String> = [
        "ABORT", "ALTER", "ANALYZE", "ANALYSE", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER", "COMMENT", "COMMIT", "COPY",
        "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DISCARD", "DO", "DROP", "END", "EXECUTE", "EXPLAIN", "FETCH", "GRANT",
        "IMPORT", "INSERT", "LISTEN", "LOAD", "LOCK", "MERGE", "MOVE", "NOTIFY", "PREPARE", "REASSIGN", "REFRESH", "REINDEX",
        "RELEASE", "RESET", "REVOKE", "ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT", "SET", "SHOW", "START", "TABLE", "TRUNCATE",
        "UNLISTEN", "UPDATE", "VACUUM", "VALUES", "WITH",
    ]

    /// SQLite's statements that PostgreSQL lacks (a procedure written for SQLite alone).
    static let sqliteCommands: Set<String> = ["PRAGMA", "ATTACH", "DETACH", "REPLACE"]

    /// Functions that reach files, large objects, other databases, locks, settings or other
    /// sessions, or run SQL text of their own (which this check would not see).
    static func isRefusedFunction(_ name: String) -> Bool {
        let refused: Set<String> = [
            "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
            "pg_stat_file", "pg_notify", "pg_promote", "pg_switch_wal", "pg_create_restore_point",
            "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
            "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema",
            "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
            "pg_import_system_collations", "pg_logical_emulate_message",
        ]
        let prefixes = [
            "pg_read_", "pg_ls_", "pg_file_", "lo_", "dblink", "pg_advisory", "pg_try_advisory", "pg_replication_", "pg_create_", "pg_drop_",
        ]
        return refused.contains(name) || prefixes.contains { name.hasPrefix($0) } || name == "loread" || name == "lowrite"
    }

    /// The statement with its `:name` parameters as `$1`, `$2`… (each use a parameter of its
    /// own, as `ProcedureFile.bindNamed` does), and the values to bind.
    static func bind(_ statement: Statement, named: [String: WarehouseValue]) throws(StepFailure) -> (String, [WarehouseValue]) {
        guard !statement.named.isEmpty else { return (statement.text, []) }
        var bytes = Array(statement.text.utf8)
        var values: [WarehouseValue] = []
        var replacements: [(Range<Int>, String)] = []
        for (range, name) in statement.named {
            guard let value = named[name] else {
                throw StepFailure.config("the procedure uses :\(name), but the step gives no params.\(name)")
            }
            values.append(value)
            replacements.append((range, "$\(values.count)"))
        }
        for (range, text) in replacements.reversed() { bytes.replaceSubrange(range, with: Array(text.utf8)) }
        return (String(decoding: bytes, as: UTF8.self), values)
    }

    // MARK: Lexing

    /// Splits at `;` outside literals, quoted names, comments and dollar quotes, noting each
    /// statement's first words, function calls and `:name` parameters.
    private static func split(_ bytes: [UInt8]) -> [Statement] {
        var statements: [Statement] = []
        var start: Int?
        var words: [String] = []
        var calls: [String] = []
        var named: [(Range<Int>, String)] = []
        var lastWord: String?
        var index = 0
        func isWordStart(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "_") || (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A || byte >= 0x80 }
        func isWordByte(_ byte: UInt8) -> Bool { isWordStart(byte) || (0x30...0x39).contains(byte) || byte == UInt8(ascii: "$") }
        func finish(at end: Int) {
            if let begin = start {
                var stop = end
                while stop > begin, bytes[stop - 1] == 0x20 || bytes[stop - 1] == 0x0A || bytes[stop - 1] == 0x0D || bytes[stop - 1] == 0x09 {
                    stop -= 1
                }
                statements.append(
                    Statement(
                        text: String(decoding: bytes[begin..<stop], as: UTF8.self), offset: begin, words: words, calls: calls,
                        named: named.map { (($0.0.lowerBound - begin)..<($0.0.upperBound - begin), $0.1) }))
            }
            start = nil
            words = []
            calls = []
            named = []
            lastWord = nil
        }
        while index < bytes.count {
            let byte = bytes[index]
            let next = index + 1 < bytes.count ? bytes[index + 1] : 0
            // Whitespace and comments belong to no statement's start.
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x0C {
                index += 1
                continue
            }
            if byte == UInt8(ascii: "-") && next == UInt8(ascii: "-") {
                while index < bytes.count, bytes[index] != 0x0A { index += 1 }
                continue
            }
            if byte == UInt8(ascii: "/") && next == UInt8(ascii: "*") {
                var depth = 1
                index += 2
                while index < bytes.count, depth > 0 {
                    if bytes[index] == UInt8(ascii: "/"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "*") {
                        depth += 1
                        index += 2
                    } else if bytes[index] == UInt8(ascii: "*"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "/") {
                        depth -= 1
                        index += 2
                    } else {
                        index += 1
                    }
                }
                continue
            }
            if byte == UInt8(ascii: ";") {
                finish(at: index)
                index += 1
                continue
            }
            if start == nil { start = index }
            switch byte {
            case UInt8(ascii: "'"):
                // E'…' strings take backslash escapes.
                let escapes = index > 0 && (bytes[index - 1] | 0x20) == UInt8(ascii: "e") && lastWord?.uppercased() == "E"
                index += 1
                while index < bytes.count {
                    if escapes && bytes[index] == 0x5C {
                        index += 2
                        continue
                    }
                    if bytes[index] == UInt8(ascii: "'") {
                        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "'") {
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                index += 1
                lastWord = nil
            case UInt8(ascii: "\""):
                let nameStart = index + 1
                index += 1
                while index < bytes.count {
                    if bytes[index] == UInt8(ascii: "\"") {
                        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                lastWord = String(decoding: bytes[nameStart..<min(index, bytes.count)], as: UTF8.self).lowercased()
                index += 1
            case UInt8(ascii: "$"):
                // $1, or a dollar quote $tag$…$tag$.
                var end = index + 1
                while end < bytes.count, isWordByte(bytes[end]), bytes[end] != UInt8(ascii: "$") { end += 1 }
                if end < bytes.count, bytes[end] == UInt8(ascii: "$"), !(index + 1 < bytes.count && (0x30...0x39).contains(bytes[index + 1])) {
                    let tag = Array(bytes[index...end])
                    index = end + 1
                    while index < bytes.count {
                        if bytes[index] == UInt8(ascii: "$"), index + tag.count <= bytes.count, Array(bytes[index..<(index + tag.count)]) == tag {
                            index += tag.count
                            break
                        }
                        index += 1
                    }
                    if index > bytes.count { index = bytes.count }
                } else {
                    index = end
                }
                lastWord = nil
            case UInt8(ascii: ":"):
                if next == UInt8(ascii: ":") {
                    index += 2
                } else if isWordStart(next) {
                    var end = index + 1
                    while end < bytes.count, isWordByte(bytes[end]), bytes[end] != UInt8(ascii: "$") { end += 1 }
                    named.append((index..<end, String(decoding: bytes[(index + 1)..<end], as: UTF8.self)))
                    index = end
                } else {
                    index += 1
                }
                lastWord = nil
            case UInt8(ascii: "("):
                if let lastWord { calls.append(lastWord) }
                lastWord = nil
                index += 1
            case UInt8(ascii: "."):
                index += 1
            default:
                if isWordStart(byte) {
                    var end = index
                    while end < bytes.count, isWordByte(bytes[end]) { end += 1 }
                    let word = String(decoding: bytes[index..<end], as: UTF8.self)
                    if words.count < 4 { words.append(word.uppercased()) }
                    lastWord = word.lowercased()
                    index = end
                } else {
                    lastWord = nil
                    index += 1
                }
            }
        }
        finish(at: bytes.count)
        return statements
    }
}
