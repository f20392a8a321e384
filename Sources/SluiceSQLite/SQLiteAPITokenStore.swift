import Foundation
import GRDB
import SluiceStorage

/// API tokens (hashed) in the run store's SQLite database (migration v5).
public final class SQLiteAPITokenStore: APITokenStore, RunStoreDatabaseShare {
    private let database: DatabasePool

    public init(database: DatabasePool) {
        self.database = database
    }

    /// Migration v5 of the run store. Frozen: a later change is a new migration.
    static func createTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE api_token (
                    id TEXT PRIMARY KEY,
                    org TEXT,
                    scope TEXT NOT NULL CHECK (scope IN ('api', 'metrics')),
                    name TEXT NOT NULL,
                    hash BLOB NOT NULL CHECK (length(hash) = 32),
                    created_at REAL NOT NULL,
                    revoked_at REAL,
                    CHECK ((org IS NULL) = (scope = 'metrics'))
                ) WITHOUT ROWID;
                CREATE INDEX api_token_org ON api_token (org, created_at);
                """)
    }

    public func insertToken(_ token: APITokenRecord) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_token (id, org, scope, name, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id, token.org, token.scope.rawValue, token.name, token.hash,
                    token.createdAt.timeIntervalSince1970, token.revokedAt?.timeIntervalSince1970,
                ])
        }
    }

    public func token(id: String) async throws -> APITokenRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE id = ?", arguments: [id]).map(Self.decode)
        }
    }

    public func tokens(org: String?) async throws -> [APITokenRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_token WHERE org IS ? ORDER BY created_at, id", arguments: [org])
                .map(Self.decode)
        }
    }

    public func revokeToken(id: String, org: String?, at: Date) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE api_token SET revoked_at = ? WHERE id = ? AND org IS ? AND revoked_at IS NULL",
                arguments: [at.timeIntervalSince1970, id, org])
            return db.changesCount == 1
        }
    }

    private static func decode(_ row: Row) -> APITokenRecord {
        APITokenRecord(
            id: row["id"], org: row["org"], scope: APITokenScope(rawValue: row["scope"]) ?? .api, name: row["name"],
            hash: row["hash"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            revokedAt: (row["revoked_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }
}
