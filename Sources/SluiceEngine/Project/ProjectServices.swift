import Foundation
import Logging
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// What a process needs to plan and execute a project's runs, whatever holds its data: the
/// project's folder and settings, its processors, and the stores of the backend it runs on.
/// Built once by the composition root (`Runtime` in SluiceRuntime, which picks the backend)
/// and handed to every front end: the commands, the HTTP API and webhooks, the scheduler and
/// backfill. Nothing here names a backend.
public struct ProjectServices: Sendable {
    public let projectRoot: URL
    /// The project's local state folder (`.sluice/`): where the default keyring lives.
    public let stateFolder: URL
    public let processors: ProcessorEnvironment
    public let runStore: any RunStore
    public let warehouse: any Warehouse
    public let credentialStore: any CredentialStore
    public let apiTokens: any APITokenStore
    public let webhookAudit: any WebhookAuditStore
    /// `sluice.yml` and the `SLUICE_*` variables, read and checked once when the project was
    /// opened.
    public let settings: ProjectSettings
    /// Where the runs this process creates execute: here (the default), or in `sluice worker`
    /// processes, which claim them. The composition root sets it; `sluice run` executes its run
    /// here whatever it says, unless asked to enqueue it.
    public var runExecution: RunExecution
    /// How long a run this process creates may go without a heartbeat before any process takes
    /// it for abandoned (stored with each run).
    public var lease: Duration { settings.runLease }
    /// How long a failed run's staging is kept for a resume.
    public var stagingRetention: Duration { settings.stagingRetention }
    /// Ends the backend's connections (a server's pool); nothing for files.
    private let closing: @Sendable () async -> Void

    public init(
        projectRoot: URL, stateFolder: URL, processors: ProcessorEnvironment, runStore: any RunStore,
        warehouse: any Warehouse, credentialStore: any CredentialStore, apiTokens: any APITokenStore,
        webhookAudit: any WebhookAuditStore, settings: ProjectSettings, runExecution: RunExecution = .inProcess,
        close: @escaping @Sendable () async -> Void = {}
    ) {
        self.projectRoot = projectRoot
        self.stateFolder = stateFolder
        self.processors = processors
        self.runStore = runStore
        self.warehouse = warehouse
        self.credentialStore = credentialStore
        self.apiTokens = apiTokens
        self.webhookAudit = webhookAudit
        self.settings = settings
        self.runExecution = runExecution
        closing = close
    }

    /// Lets the backend's connections go: a process that opened the project calls this once
    /// it is done with every store (queries after it fail).
    public func close() async {
        await closing()
    }

    /// Lints the pipeline file at `path` (relative to the project root) into a plan with the
    /// project's processors, or returns the diagnostics that stop it.
    public func plan(file path: String) -> (plan: PipelinePlan?, diagnostics: [Diagnostic]) {
        processors.plan(file: path, projectRoot: projectRoot)
    }

    /// Whether running the plan needs the key-encryption keys: a step opens stored credentials.
    public func needsKeys(_ plan: PipelinePlan) -> Bool {
        processors.plan(plan, needs: .credentials)
    }

    /// The keys: `keyringPath`, else `SLUICE_KEYRING`, else the passphrase variables, else the
    /// keyring in the state folder.
    public func keys(
        keyringPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretsError) -> Keyring {
        try KeySource.resolve(
            keyringPath: keyringPath, environment: environment,
            defaultKeyringPath: stateFolder.appendingPathComponent("keyring.json").path
        ).load()
    }

    /// An executor over the project's stores, with heartbeats well inside the lease (so a live
    /// run is never taken for a dead one), and, given keys, the org credentials steps open.
    /// `project` is the project's schemas as read before (a server keeps them between runs);
    /// by default they are read now.
    public func executor(
        options: ExecutorOptions = ExecutorOptions(), keys: Keyring? = nil,
        logger: Logger = Logger(label: "sluice.executor"), project: ProjectContext? = nil
    ) -> Executor {
        var options = options
        options.lease = lease
        options.heartbeatInterval = min(.seconds(5), lease / 4)
        var executor = Executor(
            processors: processors, store: runStore, warehouse: warehouse,
            project: project ?? ProjectContext(root: projectRoot), options: options, logger: logger)
        if let keys {
            executor.credentials = Credentials(store: credentialStore, keys: keys, logger: Logger(label: "sluice.credentials"))
        }
        return executor
    }

    /// Marks runs whose process died abandoned (each by its own lease; `fallbackLease` for runs
    /// stored without one) and removes stagings past their retention: what every process does
    /// when it opens a project's stores.
    @discardableResult
    public func recover(fallbackLease: Duration? = nil, now: Date = Date()) async throws -> [RunRecord] {
        let recovered = try await RunRecovery.recover(store: runStore, warehouse: warehouse, lease: fallbackLease ?? lease, now: now)
        try await StagingRetention.prune(store: runStore, warehouse: warehouse, keep: stagingRetention, now: now)
        return recovered
    }
}
