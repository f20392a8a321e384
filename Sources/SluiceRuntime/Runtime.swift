import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluicePostgres
import SluiceProviders
import SluiceSQLite
import SluiceStorage

/// The composition root: the one place that picks a project's backend, opens its stores and
/// puts the processors together. Every command and server starts here and works with the
/// `ProjectServices` it returns; no other module names a backend.
///
/// Two backends: the embedded one by default (the run store, credentials, API tokens and
/// webhook audit in `.sluice/runs.sqlite`, each org's warehouse in `.sluice/orgs/<org>/`), and
/// a PostgreSQL server when `sluice.yml` has `database: postgres://…` (or `SLUICE_DATABASE_URL`
/// is set): the stores in its `sluice` schema, each org's tables in a schema of their own.
public enum Runtime {
    /// The project's local state folder.
    public static func stateFolder(projectRoot: URL) -> URL {
        projectRoot.appendingPathComponent(".sluice")
    }

    /// Opens the project's stores, with its settings (`sluice.yml` and the `SLUICE_*`
    /// variables of `environment`) read and checked once: a bad value stops here, with a
    /// `SettingsError` naming the key or variable; a server that can't be reached or refuses
    /// stops with a `BackendUnavailable` naming host:port (never the password). With `recover`
    /// (what every command does), runs whose process died are marked abandoned and stagings
    /// past their retention removed first. `runCacheBytes` is the page cache one run's SQLite
    /// warehouse connection gets: all of the default for a command that executes one run, a
    /// share for a server that executes several. `runExecution` says where the runs the process
    /// creates execute (`ProjectServices.runExecution`); by default the backend decides: in
    /// this process on SQLite, in `sluice worker` processes on PostgreSQL.
    public static func open(
        projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
        processors: ProcessorEnvironment = .standard, runCacheBytes: Int = SQLiteWarehouse.defaultRunCacheBytes,
        recover: Bool = true, runExecution: RunExecution? = nil
    ) async throws -> ProjectServices {
        let settings = try await ProjectSettings.load(projectRoot: projectRoot, environment: environment)
        let state = stateFolder(projectRoot: projectRoot)
        let services: ProjectServices
        if let database = settings.database {
            let pool = try await openPool(database, environment: environment)
            do {
                let store = try await PostgresRunStore(pool: pool)
                let warehouse = try await PostgresWarehouse(pool: pool)
                services = ProjectServices(
                    projectRoot: projectRoot, stateFolder: state, processors: processors, runStore: store,
                    warehouse: warehouse, credentialStore: PostgresCredentialStore(sharing: store),
                    apiTokens: PostgresAPITokenStore(sharing: store), webhookAudit: PostgresWebhookAuditStore(sharing: store),
                    settings: settings, runExecution: runExecution ?? .workers, close: { await pool.close() })
            } catch {
                await pool.close()
                // A user without the permissions the stores need, say: the server's words.
                if let error = error as? PostgresError { throw BackendUnavailable(description: error.description) }
                throw error
            }
        } else {
            let store = try SQLiteRunStore(path: state.appendingPathComponent("runs.sqlite").path)
            services = ProjectServices(
                projectRoot: projectRoot, stateFolder: state, processors: processors, runStore: store,
                warehouse: SQLiteWarehouse(root: state, runCacheBytes: runCacheBytes),
                credentialStore: SQLiteCredentialStore(sharing: store), apiTokens: SQLiteAPITokenStore(sharing: store),
                webhookAudit: SQLiteWebhookAuditStore(sharing: store), settings: settings, runExecution: runExecution ?? .inProcess)
        }
        if recover {
            do {
                try await services.recover()
            } catch {
                await services.close()
                throw error
            }
        }
        return services
    }

    /// Whether the project has stores yet: commands that only list create none. A project on a
    /// server always has them (the server holds them).
    public static func hasStores(
        projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        async throws -> Bool
    {
        if try await ProjectSettings.load(projectRoot: projectRoot, environment: environment).database != nil { return true }
        return FileManager.default.fileExists(atPath: stateFolder(projectRoot: projectRoot).appendingPathComponent("runs.sqlite").path)
    }

    /// The project's warehouse alone, for reading published tables (`sluice query`): opening
    /// it creates nothing. `close` ends its connections.
    public static func warehouse(
        projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        async throws -> (warehouse: any Warehouse, close: @Sendable () async -> Void)
    {
        let settings = try await ProjectSettings.load(projectRoot: projectRoot, environment: environment)
        guard let database = settings.database else {
            return (SQLiteWarehouse(root: stateFolder(projectRoot: projectRoot)), {})
        }
        let pool = try await openPool(database, environment: environment)
        do {
            return (try await PostgresWarehouse(pool: pool), { await pool.close() })
        } catch {
            await pool.close()
            if let error = error as? PostgresError { throw BackendUnavailable(description: error.description) }
            throw error
        }
    }

    /// The default page cache of one run's warehouse connection.
    public static var defaultRunCacheBytes: Int { SQLiteWarehouse.defaultRunCacheBytes }

    /// Where an org's published tables are, for people: a file under the state folder, or a
    /// schema on the server (`schema sluice_warehouse_org_acme on sluice@db:5432/sluice`).
    public static func warehouseLocation(
        projectRoot: URL, org: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> String {
        let settings = try await ProjectSettings.load(projectRoot: projectRoot, environment: environment)
        guard let database = settings.database else {
            return try SQLiteWarehouse(root: stateFolder(projectRoot: projectRoot)).warehousePath(org: org)
        }
        let server = try postgresSettings(database, environment: environment)
        return "schema \(PostgresWarehouse.orgSchema(org)) on \(server)"
    }

    /// The server's settings from the database URL; a URL that can't be used is a settings
    /// error naming where it was given.
    static func postgresSettings(_ database: DatabaseSetting, environment: [String: String]) throws(SettingsError) -> PostgresSettings {
        do {
            return try PostgresSettings(url: database.url, environment: environment)
        } catch {
            throw SettingsError("\(database.source): \(error)")
        }
    }

    /// A pool of connections to the project's server, checked to answer first.
    static func openPool(_ database: DatabaseSetting, environment: [String: String]) async throws -> PostgresPool {
        let settings = try postgresSettings(database, environment: environment)
        do {
            return try await PostgresPool.open(settings, logger: Logger(label: "sluice.postgres"))
        } catch let error as PostgresError {
            throw BackendUnavailable(description: error.description)
        }
    }
}

/// The project's database server can't be used: unreachable, refusing the user, missing the
/// database or a permission. Says which server (host:port) and what went wrong, never the
/// password, so a command can print it as it is.
public struct BackendUnavailable: Error, CustomStringConvertible, Sendable {
    public var description: String
}
