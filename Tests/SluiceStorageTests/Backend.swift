import Foundation
import GRDB
import Logging
import PostgresNIO
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluicePostgres
@testable import SluiceSQLite

/// How the storage behaviour suite opens each backend: SQLite in a temp folder; PostgreSQL
/// on the server `SLUICE_TEST_POSTGRES_URL` names, a fresh schema per test.
extension Backend {
    /// The PostgreSQL test server, as the environment names it.
    enum Postgres {
        static var url: String? {
            ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
        }
        static var required: Bool { ProcessInfo.processInfo.environment["SLUICE_TEST_REQUIRE_POSTGRES"] == "1" }

        /// The server's settings (the test server trusts its superuser, so no password); nil
        /// when there is none and none is required, so the caller leaves its test out.
        static func settings() throws -> PostgresSettings? {
            guard let url else {
                if required {
                    throw MissingServer()
                }
                return nil
            }
            var settings = try PostgresSettings(url: url, environment: [:])
            // Tests run side by side: a small pool each keeps the server's connections in bounds.
            settings.maximumConnections = 8
            return settings
        }

        struct MissingServer: Error, CustomStringConvertible {
            var description: String {
                "SLUICE_TEST_REQUIRE_POSTGRES=1 but SLUICE_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh"
            }
        }
    }

    /// The stores of one fresh, empty database of a backend.
    struct Stores {
        var runs: any RunStore
        var tokens: any APITokenStore
        var webhookAudit: any WebhookAuditStore
        var credentials: any CredentialStore
    }

    /// Opens fresh, empty stores of this backend, gives them to `body`, then removes them.
    func withStores(_ body: (Stores) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-storage-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let runs = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
            try await body(
                Stores(
                    runs: runs, tokens: SQLiteAPITokenStore(sharing: runs), webhookAudit: SQLiteWebhookAuditStore(sharing: runs),
                    credentials: SQLiteCredentialStore(sharing: runs)))
        case .postgres:
            guard let settings = try Postgres.settings() else { return }
            try await withFreshSchema(settings) { pool, schema in
                let runs = try await PostgresRunStore(pool: pool, schema: schema)
                try await body(
                    Stores(
                        runs: runs, tokens: PostgresAPITokenStore(sharing: runs), webhookAudit: PostgresWebhookAuditStore(sharing: runs),
                        credentials: PostgresCredentialStore(sharing: runs)))
            }
        }
    }

    /// A run store of this backend as a sluice from before runs kept their pipeline's version
    /// left it (SQLite migrated through v9, PostgreSQL through version 5), holding `run` as that
    /// sluice stored it; then opened, and so migrated, as this one opens it, and given to `body`.
    func withRunStoreStoredBeforeVersions(holding run: RunRecord, _ body: (any RunStore) async throws -> Void) async throws {
        let params = String(decoding: try JSONEncoder().encode(run.params), as: UTF8.self)
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-storage-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("runs.sqlite").path
            do {
                let old = try DatabaseQueue(path: path)
                try SQLiteRunStore.migrator.migrate(old, upTo: "v9: runs left for workers, and their leases")
                try await old.write { db in
                    try db.execute(
                        sql: """
                            INSERT INTO run (id, pipeline, org, logical_date, trigger, request_id, params, state, reason, created_at, updated_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            run.id, run.pipeline, run.org, run.logicalDate, run.trigger.rawValue, run.requestID, params, run.state.rawValue,
                            run.reason,
                            run.createdAt.timeIntervalSince1970, run.createdAt.timeIntervalSince1970,
                        ])
                }
                try old.close()
            }
            try await body(try SQLiteRunStore(path: path))
        case .postgres:
            guard let settings = try Postgres.settings() else { return }
            try await withFreshSchema(settings) { pool, schema in
                #expect(try await PostgresMigrations.migrate(pool, schema: schema, through: 5) == 5)
                try await pool.execute(
                    """
                    INSERT INTO \(schema).run (id, pipeline, org, logical_date, trigger, request_id, params, state, reason, created_at, updated_at)
                    VALUES ('\(run.id)', '\(run.pipeline)', '\(run.org)', '\(run.logicalDate)', '\(run.trigger.rawValue)', '\(run.requestID ?? "")',
                            '\(params.replacingOccurrences(of: "'", with: "''"))', '\(run.state.rawValue)', '\(run.reason)',
                            \(run.createdAt.timeIntervalSince1970), \(run.createdAt.timeIntervalSince1970))
                    """)
                let store = try await PostgresRunStore(pool: pool, schema: schema)
                #expect(store.migrationsApplied == PostgresMigrations.all.count - 5)
                try await body(store)
            }
        }
    }

    /// Opens a fresh, empty run store of this backend, gives it to `body`, then removes it.
    func withRunStore(_ body: (any RunStore) async throws -> Void) async throws {
        try await withStores { try await body($0.runs) }
    }
}

/// Runs `body` with a pool on the test server and the name of a schema no other test uses,
/// dropped afterwards (whether `body` succeeds or not), and closes the pool.
func withFreshSchema(_ settings: PostgresSettings, _ body: (PostgresPool, String) async throws -> Void) async throws {
    let pool = try await PostgresPool.open(settings)
    let schema = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    do {
        try await body(pool, schema)
    } catch {
        try? await pool.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
        await pool.close()
        throw error
    }
    try await pool.execute("DROP SCHEMA IF EXISTS \(schema) CASCADE")
    await pool.close()
}

extension PostgresPool {
    /// Runs a statement the test makes up (a role, a schema to drop), reading its whole result.
    func execute(_ sql: String) async throws {
        let logger = logger
        try await withConnection { connection in try await connection.execute(PostgresQuery(unsafeSQL: sql), logger: logger) }
    }
}

extension Backend {
    /// Opens a fresh, empty warehouse of this backend, gives it to `body`, then removes it:
    /// SQLite in a temp folder; PostgreSQL with a schema prefix no other test uses (its
    /// schemas and sandbox roles dropped afterwards, whether `body` succeeds or not).
    func withWarehouse(_ body: (any Warehouse) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-warehouse-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            try await body(SQLiteWarehouse(root: folder, busyTimeout: .seconds(5)))
        case .postgres:
            guard let settings = try Postgres.settings() else { return }
            try await withFreshSchema(settings) { pool, schema in
                let warehouse = try await PostgresWarehouse(pool: pool, schemaPrefix: schema)
                do {
                    try await body(warehouse)
                } catch {
                    try? await warehouse.removeEverything()
                    throw error
                }
                try await warehouse.removeEverything()
            }
        }
    }
}
