import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// Where a project keeps its run history and warehouse: `.sluice/` at the project root. The
/// one place that `sluice run`, `sluice serve` and the other commands open the run store,
/// plan a pipeline and build an executor, so a run started from a terminal and one started
/// over HTTP are set up the same way.
public struct LocalState: Sendable {
    public let projectRoot: URL
    /// The `.sluice` folder.
    public let root: URL
    /// The page cache each run's warehouse connection gets: all of the default for a command
    /// that executes one run, a share for a server that executes several at once.
    public var runCacheBytes = SQLiteWarehouse.defaultRunCacheBytes

    public init(projectRoot: URL) {
        self.projectRoot = projectRoot
        root = projectRoot.appendingPathComponent(".sluice")
    }

    /// The run store database file.
    public var runStorePath: String { root.appendingPathComponent("runs.sqlite").path }

    /// The run store, after marking runs whose process died as abandoned and removing the
    /// staging of failed runs past their retention.
    public func runStore() async throws -> SQLiteRunStore {
        let store = try SQLiteRunStore(path: runStorePath)
        try await RunRecovery.recover(store: store, warehouse: warehouse, lease: RunRecovery.lease())
        try await StagingRetention.prune(store: store, warehouse: warehouse, keep: try StagingRetention.period())
        return store
    }

    public var warehouse: SQLiteWarehouse { SQLiteWarehouse(root: root, runCacheBytes: runCacheBytes) }

    /// Lints the pipeline file at `path` (relative to the project root) into a plan, or
    /// returns the diagnostics that stop it.
    public func plan(file path: String) -> (plan: PipelinePlan?, diagnostics: [Diagnostic]) {
        Linter(projectRoot: projectRoot, registry: .builtIn).plan(file: path)
    }

    /// Whether running the plan needs the key-encryption keys (it decrypts credentials).
    public static func needsKeys(_ plan: PipelinePlan) -> Bool {
        plan.definition.steps.contains { $0.uses.value == "kms_decrypt" }
    }

    /// The keys: `keyringPath`, else `SLUICE_KEYRING`, else the passphrase variables, else
    /// `.sluice/keyring.json`.
    public func keys(keyringPath: String? = nil,
                     environment: [String: String] = ProcessInfo.processInfo.environment) throws(SecretsError) -> Keyring {
        try KeySource.resolve(keyringPath: keyringPath, environment: environment,
                              defaultKeyringPath: root.appendingPathComponent("keyring.json").path).load()
    }

    /// An executor over the project's warehouse and `store`, with heartbeats well inside the
    /// lease (so a live run is never taken for a dead one), and, given keys, the org
    /// credentials `kms_decrypt` opens. `project` is the project's schemas as read before
    /// (a server keeps them between runs); by default they are read now.
    public func executor(store: SQLiteRunStore, options: ExecutorOptions = ExecutorOptions(), keys: Keyring? = nil,
                         logger: Logger = Logger(label: "sluice.executor"), project: ProjectContext? = nil,
                         processors: ProcessorCatalog = .builtIn) -> Executor {
        var options = options
        options.lease = RunRecovery.lease()
        options.heartbeatInterval = min(.seconds(5), options.lease / 4)
        var executor = Executor(processors: processors, store: store, warehouse: warehouse, project: project ?? ProjectContext(root: projectRoot),
                                options: options, logger: logger)
        if let keys {
            executor.credentials = Credentials(store: SQLiteCredentialStore(sharing: store), keys: keys,
                                               logger: Logger(label: "sluice.credentials"))
        }
        return executor
    }
}
