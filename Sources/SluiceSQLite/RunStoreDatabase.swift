import GRDB

/// A store that keeps its tables in the run store's SQLite database (through the run store's
/// migrations and connection pool): credentials, API tokens, the webhook audit log.
public protocol RunStoreDatabaseShare: AnyObject {
    init(database: DatabasePool)
}

extension RunStoreDatabaseShare {
    /// Uses the run store's database (and its connection pool).
    public init(sharing runStore: SQLiteRunStore) {
        self.init(database: runStore.database)
    }

    /// Opens (creating and migrating if needed) the run store database at `path`.
    public init(path: String) throws {
        self.init(sharing: try SQLiteRunStore(path: path))
    }
}
