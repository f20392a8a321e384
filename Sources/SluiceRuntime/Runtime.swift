import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage

/// The composition root: the one place that picks a project's backend, opens its stores and
/// puts the processors together. Every command and server starts here and works with the
/// `ProjectServices` it returns; no other module names a backend.
///
/// Today the backend is the embedded one: the run store, credentials, API tokens and webhook
/// audit in `.sluice/runs.sqlite`, each org's warehouse in `.sluice/orgs/<org>/`.
public enum Runtime {
    /// The project's local state folder.
    public static func stateFolder(projectRoot: URL) -> URL {
        projectRoot.appendingPathComponent(".sluice")
    }

    /// Opens the project's stores, with its settings (`sluice.yml` and the `SLUICE_*`
    /// variables of `environment`) read and checked once: a bad value stops here, with a
    /// `SettingsError` naming the key or variable. With `recover` (what every command does), runs whose
    /// process died are marked abandoned and stagings past their retention removed first.
    /// `runCacheBytes` is the page cache one run's warehouse connection gets: all of the
    /// default for a command that executes one run, a share for a server that executes several.
    /// `runExecution` says where the runs the process creates execute (`ProjectServices.runExecution`):
    /// here by default; `.workers` leaves them pending for `sluice worker` processes.
    public static func open(
        projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
        processors: ProcessorEnvironment = .standard, runCacheBytes: Int = SQLiteWarehouse.defaultRunCacheBytes,
        recover: Bool = true, runExecution: RunExecution = .inProcess
    ) async throws -> ProjectServices {
        let state = stateFolder(projectRoot: projectRoot)
        let store = try SQLiteRunStore(path: state.appendingPathComponent("runs.sqlite").path)
        let services = ProjectServices(
            projectRoot: projectRoot, stateFolder: state, processors: processors, runStore: store,
            warehouse: SQLiteWarehouse(root: state, runCacheBytes: runCacheBytes),
            credentialStore: SQLiteCredentialStore(sharing: store), apiTokens: SQLiteAPITokenStore(sharing: store),
            webhookAudit: SQLiteWebhookAuditStore(sharing: store),
            settings: try await ProjectSettings.load(projectRoot: projectRoot, environment: environment),
            runExecution: runExecution)
        if recover { try await services.recover() }
        return services
    }

    /// Whether the project has stores yet: commands that only list create none.
    public static func hasStores(projectRoot: URL) -> Bool {
        FileManager.default.fileExists(atPath: stateFolder(projectRoot: projectRoot).appendingPathComponent("runs.sqlite").path)
    }

    /// The project's warehouse alone, for reading published tables (`sluice query`): opening
    /// it creates nothing.
    public static func warehouse(projectRoot: URL) -> any Warehouse {
        SQLiteWarehouse(root: stateFolder(projectRoot: projectRoot))
    }

    /// The default page cache of one run's warehouse connection.
    public static var defaultRunCacheBytes: Int { SQLiteWarehouse.defaultRunCacheBytes }

    /// Where an org's published tables are, for people: a file under the state folder.
    public static func warehouseLocation(projectRoot: URL, org: String) throws -> String {
        try SQLiteWarehouse(root: stateFolder(projectRoot: projectRoot)).warehousePath(org: org)
    }
}
