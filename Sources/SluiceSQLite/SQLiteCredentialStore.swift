import Foundation
import GRDB
import SluiceSecrets
import SluiceStorage

/// Sealed credentials and their audit log in the run store's SQLite database (migration v4).
/// Writes take SQLite's write lock up front (`BEGIN IMMEDIATE`), so the per-org limit, checked
/// inside the insert statement, holds across connections and processes; updates and deletes
/// name the row version they read.
public final class SQLiteCredentialStore: CredentialStore, RunStoreDatabaseShare {
    private let database: DatabasePool

    public init(database: DatabasePool) {
        self.database = database
    }

    /// Migration v4 of the run store. Frozen: a later change is a new migration.
    static func createTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE credential (
                    org TEXT NOT NULL,
                    name TEXT NOT NULL,
                    provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gcp', 'generic')),
                    generation INTEGER NOT NULL CHECK (generation >= 1),
                    sealed BLOB NOT NULL,
                    key_version INTEGER NOT NULL,
                    previous_sealed BLOB,
                    previous_key_version INTEGER,
                    previous_valid_until REAL,
                    expires_at REAL,
                    metadata TEXT NOT NULL DEFAULT '{}',
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
                    PRIMARY KEY (org, name),
                    CHECK ((previous_sealed IS NULL) = (previous_valid_until IS NULL)
                           AND (previous_sealed IS NULL) = (previous_key_version IS NULL))
                ) WITHOUT ROWID;

                CREATE TABLE credential_audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    org TEXT NOT NULL,
                    credential TEXT NOT NULL,
                    run_id TEXT,
                    step_id TEXT,
                    action TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    at REAL NOT NULL
                );
                CREATE INDEX credential_audit_org ON credential_audit (org, credential, seq);
                CREATE INDEX credential_audit_run ON credential_audit (run_id) WHERE run_id IS NOT NULL;
                """)
    }

    // MARK: Writing

    public func insertCredential(_ credential: StoredCredential, limit: Int, audit: CredentialAuditRecord) async throws {
        try await writeImmediately { db in
            // One statement reads the org's count and inserts, under the write lock: no other
            // writer can slip in between, in this process or another.
            try db.execute(
                sql: """
                    INSERT INTO credential (org, name, provider, generation, sealed, key_version, previous_sealed,
                                            previous_key_version, previous_valid_until, expires_at, metadata, created_at,
                                            updated_at, version)
                    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1
                    WHERE (SELECT count(*) FROM credential WHERE org = ?) < ?
                    ON CONFLICT (org, name) DO NOTHING
                    """, arguments: Self.columns(of: credential) + [credential.org, limit])
            guard db.changesCount == 1 else {
                if try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM credential WHERE org = ? AND name = ?",
                    arguments: [credential.org, credential.name]) == true
                {
                    throw SecretsError.credentialExists(org: credential.org, name: credential.name)
                }
                throw SecretsError.credentialLimitReached(org: credential.org, limit: limit)
            }
            try Self.insertAudit(db, audit)
        }
    }

    public func updateCredential(_ credential: StoredCredential, expectedVersion: Int, audit: CredentialAuditRecord) async throws -> StoredCredential
    {
        try await writeImmediately { db in
            try db.execute(
                sql: """
                    UPDATE credential SET provider = ?, generation = ?, sealed = ?, key_version = ?, previous_sealed = ?,
                        previous_key_version = ?, previous_valid_until = ?, expires_at = ?, metadata = ?, updated_at = ?,
                        version = version + 1
                    WHERE org = ? AND name = ? AND version = ?
                    """,
                arguments: [
                    credential.provider, credential.generation, credential.sealed, credential.keyVersion,
                    credential.previousSealed, credential.previousKeyVersion,
                    credential.previousValidUntil?.timeIntervalSince1970, credential.expiresAt?.timeIntervalSince1970,
                    credential.metadata, credential.updatedAt.timeIntervalSince1970,
                    credential.org, credential.name, expectedVersion,
                ])
            guard db.changesCount == 1 else { throw try Self.missedVersion(db, credential.org, credential.name, expectedVersion) }
            try Self.insertAudit(db, audit)
            return try Self.fetch(db, org: credential.org, name: credential.name)!
        }
    }

    public func deleteCredential(org: String, name: String, expectedVersion: Int?, audit: CredentialAuditRecord) async throws {
        try await writeImmediately { db in
            try db.execute(
                sql: "DELETE FROM credential WHERE org = ? AND name = ? AND (? IS NULL OR version = ?)",
                arguments: [org, name, expectedVersion, expectedVersion])
            guard db.changesCount == 1 else { throw try Self.missedVersion(db, org, name, expectedVersion) }
            try Self.insertAudit(db, audit)
        }
    }

    public func appendAudit(_ record: CredentialAuditRecord) async throws {
        try await writeImmediately { db in try Self.insertAudit(db, record) }
    }

    // MARK: Reading

    public func credential(org: String, name: String) async throws -> StoredCredential? {
        try await database.read { db in try Self.fetch(db, org: org, name: name) }
    }

    public func credentials(org: String) async throws -> [StoredCredential] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credential WHERE org = ? ORDER BY name", arguments: [org]).map(Self.decode)
        }
    }

    public func credentials(notWrappedBy keyVersion: Int) async throws -> [StoredCredential] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM credential
                    WHERE key_version != ?1 OR (previous_sealed IS NOT NULL AND previous_key_version != ?1)
                    ORDER BY org, name
                    """, arguments: [keyVersion]
            ).map(Self.decode)
        }
    }

    public func blobsPerKeyVersion() async throws -> [Int: Int] {
        try await database.read { db in
            var counts: [Int: Int] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT key_version AS version, count(*) AS blobs FROM credential GROUP BY 1
                    UNION ALL
                    SELECT previous_key_version, count(*) FROM credential WHERE previous_sealed IS NOT NULL GROUP BY 1
                    """)
            {
                counts[row["version"], default: 0] += row["blobs"] as Int
            }
            return counts
        }
    }

    public func auditRecords(org: String, credential: String?, limit: Int) async throws -> [CredentialAuditRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM credential_audit WHERE org = ? AND (? IS NULL OR credential = ?) ORDER BY seq DESC LIMIT ?
                    """, arguments: [org, credential, credential, limit]
            ).map { row in
                CredentialAuditRecord(
                    org: row["org"], credential: row["credential"], runID: row["run_id"], stepID: row["step_id"],
                    action: CredentialAuditRecord.Action(rawValue: row["action"]) ?? .decrypt,
                    outcome: CredentialAuditRecord.Outcome(rawValue: row["outcome"]) ?? .failed,
                    detail: row["detail"], at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }

    // MARK: Rows

    /// A write transaction that takes the write lock at BEGIN, so reads inside it can't go
    /// stale and a busy database is waited for (busy timeout) instead of failing at commit.
    private func writeImmediately<Value: Sendable>(_ body: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        try await database.writeWithoutTransaction { db in
            var value: Value?
            try db.inTransaction(.immediate) {
                value = try body(db)
                return .commit
            }
            return value!
        }
    }

    private static func missedVersion(_ db: Database, _ org: String, _ name: String, _ expected: Int?) throws -> SecretsError {
        guard let current = try Int.fetchOne(db, sql: "SELECT version FROM credential WHERE org = ? AND name = ?", arguments: [org, name]) else {
            return SecretsError(.credentialNotFound, "credential \(org)/\(name) does not exist")
        }
        return SecretsError(
            .conflict,
            "credential \(org)/\(name) changed since it was read (version \(current), expected \(expected.map(String.init) ?? "any")); read it again and retry"
        )
    }

    private static func columns(of credential: StoredCredential) -> StatementArguments {
        [
            credential.org, credential.name, credential.provider, credential.generation, credential.sealed, credential.keyVersion,
            credential.previousSealed, credential.previousKeyVersion, credential.previousValidUntil?.timeIntervalSince1970,
            credential.expiresAt?.timeIntervalSince1970, credential.metadata, credential.createdAt.timeIntervalSince1970,
            credential.updatedAt.timeIntervalSince1970,
        ]
    }

    private static func insertAudit(_ db: Database, _ record: CredentialAuditRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO credential_audit (org, credential, run_id, step_id, action, outcome, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.org, record.credential, record.runID, record.stepID, record.action.rawValue,
                record.outcome.rawValue, record.detail, record.at.timeIntervalSince1970,
            ])
    }

    private static func fetch(_ db: Database, org: String, name: String) throws -> StoredCredential? {
        try Row.fetchOne(db, sql: "SELECT * FROM credential WHERE org = ? AND name = ?", arguments: [org, name]).map(decode)
    }

    private static func decode(_ row: Row) -> StoredCredential {
        StoredCredential(
            org: row["org"], name: row["name"], provider: row["provider"], generation: row["generation"], sealed: row["sealed"],
            keyVersion: row["key_version"], previousSealed: row["previous_sealed"], previousKeyVersion: row["previous_key_version"],
            previousValidUntil: (row["previous_valid_until"] as Double?).map(Date.init(timeIntervalSince1970:)),
            expiresAt: (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            metadata: row["metadata"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]), version: row["version"])
    }
}
