import Foundation
import Logging
import PostgresNIO
import SluiceSecrets
import SluiceStorage

/// Sealed credentials and their audit log in the run store's schema (migration 4), on the
/// run store's pool. Every mutation and its audit record are one transaction. The per-org
/// limit holds across processes by a transaction-scoped advisory lock on the org, taken before
/// the count (READ COMMITTED alone would let two inserts each count the other out); updates
/// and deletes name the row version they read, as with SQLite.
public final class PostgresCredentialStore: CredentialStore {
    private let pool: PostgresPool
    private let schema: String
    private let schemaName: String
    private let logger: Logger

    /// The advisory lock class of credential inserts.
    static let insertLockClass: Int32 = PostgresMigrations.lockClass + 2

    /// Uses the run store's schema and pool (the store opened and migrated it).
    public init(sharing runStore: PostgresRunStore) {
        pool = runStore.pool
        schema = runStore.schema
        schemaName = runStore.schemaName
        logger = runStore.pool.logger
    }

    private var table: String { "\(schema).credential" }
    private var auditTable: String { "\(schema).credential_audit" }
    private static let columns = """
        org, name, provider, generation, sealed, key_version, previous_sealed, previous_key_version, previous_valid_until,
        expires_at, metadata, created_at, updated_at, version
        """

    // MARK: Writing

    public func insertCredential(_ credential: StoredCredential, limit: Int, audit: CredentialAuditRecord) async throws {
        let (table, logger) = (table, logger)
        let lockKey = schemaName + "/" + credential.org
        try await pool.transaction { connection in
            try await connection.execute(
                "SELECT pg_advisory_xact_lock(\(Self.insertLockClass), hashtext(\(lockKey)))", logger: logger)
            let inserted = try await connection.rows(
                """
                INSERT INTO \(unescaped: table) (\(unescaped: Self.columns))
                SELECT \(credential.org), \(credential.name), \(credential.provider), \(credential.generation), \(credential.sealed),
                       \(credential.keyVersion), \(credential.previousSealed), \(credential.previousKeyVersion),
                       \(credential.previousValidUntil?.timeIntervalSince1970)::float8, \(credential.expiresAt?.timeIntervalSince1970)::float8,
                       \(credential.metadata), \(credential.createdAt.timeIntervalSince1970), \(credential.updatedAt.timeIntervalSince1970), 1
                WHERE (SELECT count(*) FROM \(unescaped: table) WHERE org = \(credential.org)) < \(limit)
                ON CONFLICT (org, name) DO NOTHING
                RETURNING name
                """, logger: logger)
            guard inserted.count == 1 else {
                if try await self.fetch(connection, org: credential.org, name: credential.name) != nil {
                    throw SecretsError.credentialExists(org: credential.org, name: credential.name)
                }
                throw SecretsError.credentialLimitReached(org: credential.org, limit: limit)
            }
            try await self.insertAudit(connection, audit)
        }
    }

    public func updateCredential(_ credential: StoredCredential, expectedVersion: Int, audit: CredentialAuditRecord) async throws -> StoredCredential
    {
        let (table, logger) = (table, logger)
        return try await pool.transaction { connection in
            let updated = try await connection.rows(
                """
                UPDATE \(unescaped: table) SET provider = \(credential.provider), generation = \(credential.generation),
                    sealed = \(credential.sealed), key_version = \(credential.keyVersion), previous_sealed = \(credential.previousSealed),
                    previous_key_version = \(credential.previousKeyVersion),
                    previous_valid_until = \(credential.previousValidUntil?.timeIntervalSince1970)::float8,
                    expires_at = \(credential.expiresAt?.timeIntervalSince1970)::float8, metadata = \(credential.metadata),
                    updated_at = \(credential.updatedAt.timeIntervalSince1970), version = version + 1
                WHERE org = \(credential.org) AND name = \(credential.name) AND version = \(expectedVersion)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let row = updated.first else {
                throw try await self.missedVersion(connection, credential.org, credential.name, expectedVersion)
            }
            try await self.insertAudit(connection, audit)
            return try Self.decode(row)
        }
    }

    public func deleteCredential(org: String, name: String, expectedVersion: Int?, audit: CredentialAuditRecord) async throws {
        let (table, logger) = (table, logger)
        try await pool.transaction { connection in
            let deleted = try await connection.rows(
                """
                DELETE FROM \(unescaped: table)
                WHERE org = \(org) AND name = \(name) AND (\(expectedVersion)::int8 IS NULL OR version = \(expectedVersion))
                RETURNING name
                """, logger: logger)
            guard deleted.count == 1 else { throw try await self.missedVersion(connection, org, name, expectedVersion) }
            try await self.insertAudit(connection, audit)
        }
    }

    public func appendAudit(_ record: CredentialAuditRecord) async throws {
        try await pool.withConnection { connection in try await self.insertAudit(connection, record) }
    }

    // MARK: Reading

    public func credential(org: String, name: String) async throws -> StoredCredential? {
        try await pool.withConnection { connection in try await self.fetch(connection, org: org, name: name) }
    }

    public func credentials(org: String) async throws -> [StoredCredential] {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.columns) FROM \(unescaped: table) WHERE org = \(org) ORDER BY name COLLATE \"C\"", logger: logger
            ).map(Self.decode)
        }
    }

    public func credentials(notWrappedBy keyVersion: Int) async throws -> [StoredCredential] {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.columns) FROM \(unescaped: table)
                WHERE key_version != \(keyVersion) OR (previous_sealed IS NOT NULL AND previous_key_version != \(keyVersion))
                ORDER BY org COLLATE "C", name COLLATE "C"
                """, logger: logger
            ).map(Self.decode)
        }
    }

    public func blobsPerKeyVersion() async throws -> [Int: Int] {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            var counts: [Int: Int] = [:]
            for row in try await connection.rows(
                """
                SELECT key_version, count(*) FROM \(unescaped: table) GROUP BY 1
                UNION ALL
                SELECT previous_key_version, count(*) FROM \(unescaped: table) WHERE previous_sealed IS NOT NULL GROUP BY 1
                """, logger: logger)
            {
                let (version, blobs) = try row.decode((Int, Int).self)
                counts[version, default: 0] += blobs
            }
            return counts
        }
    }

    public func auditRecords(org: String, credential: String?, limit: Int) async throws -> [CredentialAuditRecord] {
        let (auditTable, logger) = (auditTable, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT org, credential, run_id, step_id, action, outcome, detail, at FROM \(unescaped: auditTable)
                WHERE org = \(org) AND (\(credential)::text IS NULL OR credential = \(credential)) ORDER BY seq DESC LIMIT \(limit)
                """, logger: logger
            ).map { row in
                let (org, credential, runID, stepID, action, outcome, detail, at) = try row.decode(
                    (String, String, String?, String?, String, String, String, Double).self)
                return CredentialAuditRecord(
                    org: org, credential: credential, runID: runID, stepID: stepID,
                    action: CredentialAuditRecord.Action(rawValue: action) ?? .decrypt,
                    outcome: CredentialAuditRecord.Outcome(rawValue: outcome) ?? .failed, detail: detail,
                    at: Date(timeIntervalSince1970: at))
            }
        }
    }

    // MARK: Rows

    private func missedVersion(_ connection: PostgresConnection, _ org: String, _ name: String, _ expected: Int?) async throws -> SecretsError {
        guard let current = try await fetch(connection, org: org, name: name)?.version else {
            return SecretsError(.credentialNotFound, "credential \(org)/\(name) does not exist")
        }
        return SecretsError(
            .conflict,
            "credential \(org)/\(name) changed since it was read (version \(current), expected \(expected.map(String.init) ?? "any")); read it again and retry"
        )
    }

    private func insertAudit(_ connection: PostgresConnection, _ record: CredentialAuditRecord) async throws {
        try await connection.execute(
            """
            INSERT INTO \(unescaped: auditTable) (org, credential, run_id, step_id, action, outcome, detail, at)
            VALUES (\(record.org), \(record.credential), \(record.runID), \(record.stepID), \(record.action.rawValue),
                    \(record.outcome.rawValue), \(record.detail), \(record.at.timeIntervalSince1970))
            """, logger: logger)
    }

    private func fetch(_ connection: PostgresConnection, org: String, name: String) async throws -> StoredCredential? {
        try await connection.rows(
            "SELECT \(unescaped: Self.columns) FROM \(unescaped: table) WHERE org = \(org) AND name = \(name)", logger: logger
        ).first.map(Self.decode)
    }

    private static func decode(_ row: PostgresRow) throws -> StoredCredential {
        let columns = row.makeRandomAccess()
        return StoredCredential(
            org: try columns["org"].decode(String.self), name: try columns["name"].decode(String.self),
            provider: try columns["provider"].decode(String.self), generation: try columns["generation"].decode(Int.self),
            sealed: try columns["sealed"].decode(Data.self), keyVersion: try columns["key_version"].decode(Int.self),
            previousSealed: try columns["previous_sealed"].decode(Data?.self),
            previousKeyVersion: try columns["previous_key_version"].decode(Int?.self),
            previousValidUntil: try columns["previous_valid_until"].decode(Double?.self).map(Date.init(timeIntervalSince1970:)),
            expiresAt: try columns["expires_at"].decode(Double?.self).map(Date.init(timeIntervalSince1970:)),
            metadata: try columns["metadata"].decode(String.self),
            createdAt: Date(timeIntervalSince1970: try columns["created_at"].decode(Double.self)),
            updatedAt: Date(timeIntervalSince1970: try columns["updated_at"].decode(Double.self)),
            version: try columns["version"].decode(Int.self))
    }
}
