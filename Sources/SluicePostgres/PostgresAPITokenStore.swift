import Foundation
import Logging
import PostgresNIO
import SluiceStorage

/// API tokens (hashed) in the run store's schema (migration 2), on the run store's pool.
public final class PostgresAPITokenStore: APITokenStore {
    private let pool: PostgresPool
    private let table: String
    private let logger: Logger

    /// Uses the run store's schema and pool (the store opened and migrated it).
    public init(sharing runStore: PostgresRunStore) {
        pool = runStore.pool
        table = "\(runStore.schema).api_token"
        logger = runStore.pool.logger
    }

    public func insertToken(_ token: APITokenRecord) async throws {
        let (table, logger) = (table, logger)
        try await pool.withConnection { connection in
            try await connection.execute(
                """
                INSERT INTO \(unescaped: table) (id, org, scope, name, hash, created_at, revoked_at)
                VALUES (\(token.id), \(token.org), \(token.scope.rawValue), \(token.name), \(token.hash),
                        \(token.createdAt.timeIntervalSince1970), \(token.revokedAt?.timeIntervalSince1970))
                """, logger: logger)
        }
    }

    public func token(id: String) async throws -> APITokenRecord? {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                "SELECT id, org, scope, name, hash, created_at, revoked_at FROM \(unescaped: table) WHERE id = \(id)", logger: logger
            ).first.map(Self.decode)
        }
    }

    public func tokens(org: String?) async throws -> [APITokenRecord] {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT id, org, scope, name, hash, created_at, revoked_at FROM \(unescaped: table)
                WHERE org IS NOT DISTINCT FROM \(org)::text ORDER BY created_at, id
                """, logger: logger
            ).map(Self.decode)
        }
    }

    public func revokeToken(id: String, org: String?, at: Date) async throws -> Bool {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                UPDATE \(unescaped: table) SET revoked_at = \(at.timeIntervalSince1970)
                WHERE id = \(id) AND org IS NOT DISTINCT FROM \(org)::text AND revoked_at IS NULL
                RETURNING id
                """, logger: logger
            ).count == 1
        }
    }

    private static func decode(_ row: PostgresRow) throws -> APITokenRecord {
        let (id, org, scope, name, hash, createdAt, revokedAt) = try row.decode((String, String?, String, String, Data, Double, Double?).self)
        return APITokenRecord(
            id: id, org: org, scope: APITokenScope(rawValue: scope) ?? .api, name: name, hash: hash,
            createdAt: Date(timeIntervalSince1970: createdAt), revokedAt: revokedAt.map(Date.init(timeIntervalSince1970:)))
    }
}
