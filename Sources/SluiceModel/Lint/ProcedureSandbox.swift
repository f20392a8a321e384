import GRDBSQLite

/// What SQL from `procedures/` may do when it runs: read the org's published tables and the
/// run's staged ones, and write only what the run hands it (the temporary copies of the tables
/// a `sql` step writes, the TEMP tables it makes itself, the staged table an aggregate fills).
/// Nothing else: no ATTACH or DETACH (another org's file), no PRAGMA beyond reading a table's
/// shape, no writes to `main.` (the published tables) or `stage.` (the run's bookkeeping), no
/// tables, views, indexes or triggers outside TEMP, no transactions of its own (the run's
/// transaction decides what commits), no virtual tables and no functions that reach files or
/// load code.
///
/// Lint prepares every procedure under these rules, so a refused statement is reported with
/// its position before any run; at run time SQLite's authorizer applies the same rules to
/// every statement before it runs (`SQLiteSandbox`).
public struct ProcedureSandbox: Sendable, Hashable {
    /// Whether the SQL may create and write TEMP tables (a `sql` step's script) or not (a query).
    public var writesTemp: Bool
    /// Tables outside TEMP it may insert into, as (schema, table): the staged table an
    /// aggregate's procedure rows go to.
    public var insertsInto: Set<QualifiedTable>

    public struct QualifiedTable: Sendable, Hashable {
        public var schema: String
        public var table: String

        public init(schema: String, table: String) {
            self.schema = schema
            self.table = table
        }
    }

    public init(writesTemp: Bool, insertsInto: Set<QualifiedTable> = []) {
        self.writesTemp = writesTemp
        self.insertsInto = insertsInto
    }

    /// A `sql` step's script: TEMP may be written (the copies of its targets live there).
    public static let script = ProcedureSandbox(writesTemp: true)
    /// A query (validate_data's sql checks, an aggregate's probe): reads only.
    public static let query = ProcedureSandbox(writesTemp: false)

    /// Pragmas that only describe a table; any other pragma (one that sets a value, or reads
    /// files and settings) is refused.
    static let readOnlyPragmas: Set<String> = ["table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"]
    /// Functions that read or write files, load code or change SQLite's own state.
    static let refusedFunctions: Set<String> = [
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "fsdir", "sqlar_compress",
        "sqlar_uncompress", "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr",
    ]

    /// Why a statement is refused for what it is, before SQLite's authorizer sees any of it:
    /// VACUUM (which SQLite authorizes only from inside, as it runs, and whose `INTO` writes a
    /// copy of the warehouse to any file); nil when the statement may go on to the authorizer.
    /// `statement` starts at the statement's first word.
    public static func refusal(ofStatement statement: some StringProtocol) -> String? {
        let keyword = statement.prefix { $0.isLetter }.uppercased()
        return keyword == "VACUUM" ? "it may not VACUUM (VACUUM INTO would copy the warehouse to a file)" : nil
    }

    /// Why SQLite's authorizer call (`action` and its four text arguments, as
    /// `sqlite3_set_authorizer` gives them) is refused, in words for the pipeline's author;
    /// nil when it is allowed.
    public func refusal(action: Int32, _ first: String?, _ second: String?, database: String?) -> String? {
        let name = first ?? ""
        switch action {
        case SQLITE_READ, SQLITE_SELECT, SQLITE_RECURSIVE:
            return nil
        case SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE:
            // SQLite keeps its own schema tables up to date when TEMP objects are made.
            if database == "temp" && (writesTemp || name == "sqlite_temp_master") { return nil }
            if name == "sqlite_master" || name == "sqlite_schema" {
                // SQLite updates its schema table itself (an eponymous table like
                // pragma_table_info on first use); statements that add or remove objects there
                // are refused by their own action too.
                if action == SQLITE_UPDATE { return nil }
                return "it may create, alter and drop only TEMP tables, views and indexes (CREATE TEMP TABLE …)"
            }
            if action == SQLITE_INSERT, let database, insertsInto.contains(QualifiedTable(schema: database, table: name)) { return nil }
            let verb = action == SQLITE_INSERT ? "insert into" : action == SQLITE_UPDATE ? "update" : "delete from"
            if database == "main" {
                return "it may not \(verb) the published table \(name) directly: write the table by its plain name, "
                    + "and the run stages the change and publishes it with the rest"
            }
            return "it may not \(verb) \(database.map { "\($0)." } ?? "")\(name)"
        case SQLITE_CREATE_TEMP_TABLE, SQLITE_CREATE_TEMP_VIEW, SQLITE_CREATE_TEMP_INDEX,
            SQLITE_DROP_TEMP_TABLE, SQLITE_DROP_TEMP_VIEW, SQLITE_DROP_TEMP_INDEX:
            return writesTemp ? nil : "a query may not create or drop tables, views or indexes"
        case SQLITE_CREATE_TABLE, SQLITE_CREATE_VIEW, SQLITE_CREATE_INDEX,
            SQLITE_DROP_TABLE, SQLITE_DROP_VIEW, SQLITE_DROP_INDEX:
            return "it may create and drop only TEMP tables, views and indexes (\(name) would change \(database ?? "main"))"
        case SQLITE_ALTER_TABLE:
            // The database is the first argument here, the table the second.
            return name == "temp" && writesTemp ? nil : "it may alter only its TEMP tables (\(second ?? ""))"
        case SQLITE_CREATE_TRIGGER, SQLITE_CREATE_TEMP_TRIGGER, SQLITE_DROP_TRIGGER, SQLITE_DROP_TEMP_TRIGGER:
            return "it may not create or drop triggers"
        case SQLITE_CREATE_VTABLE, SQLITE_DROP_VTABLE:
            return "it may not create or drop virtual tables"
        case SQLITE_ATTACH, SQLITE_DETACH:
            return "it may not ATTACH or DETACH databases: a run reads only its own org's tables"
        case SQLITE_PRAGMA:
            let pragma = name.lowercased()
            return Self.readOnlyPragmas.contains(pragma)
                ? nil : "it may not use PRAGMA \(pragma) (only \(Self.readOnlyPragmas.sorted().joined(separator: ", ")))"
        case SQLITE_FUNCTION:
            let function = (second ?? "").lowercased()
            return Self.refusedFunctions.contains(function) ? "it may not call \(function)()" : nil
        case SQLITE_TRANSACTION, SQLITE_SAVEPOINT:
            return "it may not begin, commit or roll back transactions: the run's transaction decides what commits"
        case SQLITE_ANALYZE, SQLITE_REINDEX:
            // Creating an index on a TEMP table reindexes it.
            return database == "temp" && writesTemp ? nil : "it may not ANALYZE or REINDEX \(database ?? "main") tables"
        default:
            return "it may not do this (SQLite action \(action))"
        }
    }
}
