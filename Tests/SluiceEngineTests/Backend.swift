import Foundation
import Logging
import SluicePostgres
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

/// How an engine test opens each backend for a project (`PipelineProject(backend)`).
extension Backend {
    /// The run store and warehouse of a project on this backend: SQLite files under `root`;
    /// on PostgreSQL a run store schema and a warehouse schema prefix no other test uses, on
    /// the process's one pool. `remove` drops what it made.
    func open(root: URL) async throws -> (store: any RunStore, warehouse: any Warehouse, remove: @Sendable () -> Void) {
        switch self {
        case .sqlite:
            let store = try SQLiteRunStore(path: root.appendingPathComponent(".sluice/runs.sqlite").path)
            return (store, SQLiteWarehouse(root: root.appendingPathComponent(".sluice")), {})
        case .postgres:
            let pool = try await TestServer.shared.pool()
            let prefix = "e" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            let server = pool.url
            // On a thread of its own, not waited for: called from `defer`, it would otherwise
            // block a thread that runs the tests' async code while DROP SCHEMA waits for locks
            // that a transaction of this very process may still hold (and needs that thread to end).
            let remove: @Sendable () -> Void = {
                Thread.detachNewThread { _ = try? PostgresTestDatabase.psql(server, TestServer.dropStatement(prefix: prefix)) }
            }
            do {
                let store = try await PostgresRunStore(pool: pool.pool, schema: prefix + "_runs")
                let warehouse = try await PostgresWarehouse(pool: pool.pool, schemaPrefix: prefix)
                return (store, warehouse, remove)
            } catch {
                remove()
                throw error
            }
        }
    }
}

/// The test PostgreSQL server, and one pool on it for every engine test of the process (a
/// pool per test would leave its connections open until the process ends, since a test's
/// `defer` can't wait for `close()`).
actor TestServer {
    static let shared = TestServer()

    private var opening: Task<(pool: PostgresPool, url: String), any Error>?

    func pool() async throws -> (pool: PostgresPool, url: String) {
        if let opening { return try await opening.value }
        let task = Task<(pool: PostgresPool, url: String), any Error> {
            guard let url = try PostgresTestDatabase.serverURL else { throw PostgresTestDatabase.MissingServer() }
            var settings = try PostgresSettings(url: url, environment: [:])
            // Tests run side by side; runs hold connections of their own besides (advisory locks).
            settings.maximumConnections = 40
            var logger = Logger(label: "sluice.test.postgres")
            logger.logLevel = .critical
            return (try await PostgresPool.open(settings, logger: logger), url)
        }
        opening = task
        return try await task.value
    }

    /// Drops every schema and sandbox role whose name starts with `prefix`: the run store's
    /// schema, the org schemas, the stagings, the roles (what they were granted first).
    static func dropStatement(prefix: String) -> String {
        let pattern = prefix + "\\_%"
        return """
            DO $$ DECLARE item record; BEGIN
              FOR item IN SELECT nspname FROM pg_namespace WHERE nspname = '\(prefix)' OR nspname LIKE '\(pattern)' LOOP
                EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', item.nspname);
              END LOOP;
              FOR item IN SELECT rolname FROM pg_roles WHERE rolname LIKE '\(pattern)' LOOP
                EXECUTE format('DROP OWNED BY %I', item.rolname);
                EXECUTE format('DROP ROLE IF EXISTS %I', item.rolname);
              END LOOP;
            END $$;
            """
    }
}
