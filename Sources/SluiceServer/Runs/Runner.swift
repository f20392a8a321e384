import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// What executes a project's runs in a long-running process, shared by the HTTP API and the
/// scheduler: the run store, the linted pipelines, the keys, the metrics, and the launcher
/// that runs each run in a task of its own. `sluice serve` and `sluice scheduler` each build
/// one; `sluice serve --scheduler` shares one between the two.
public struct Runner: Sendable {
    public let configuration: ServerConfiguration
    /// The project's stores, processors and settings (from the composition root).
    public let services: ProjectServices
    public var store: any RunStore { services.runStore }
    public let metrics: ServerMetrics
    /// The key-encryption keys, when configured: needed by pipelines that decrypt credentials.
    let keys: Keyring?
    let launcher: RunLauncher
    let catalog: PipelineCatalog
    /// Starts the runs of the API, webhooks, the scheduler and backfill: with this process's
    /// keys, refusing once the launcher stopped taking runs.
    let starter: RunStarter
    let logger: Logger

    /// Works with the project's stores as the composition root opened them (with the page
    /// cache of each run sized for `configuration.maxExecutingRuns`), and loads the keys if
    /// there are any. A keyring that exists but can't be read is an error.
    public init(
        services: ProjectServices, configuration: ServerConfiguration,
        metrics: ServerMetrics = ServerMetrics(), logger: Logger
    ) throws {
        self.configuration = configuration
        self.services = services
        self.metrics = metrics
        self.logger = logger
        let keys = try Self.loadKeys(services, configuration, logger)
        let launcher = RunLauncher(
            logger: logger, shutdownGrace: configuration.shutdownGrace, maxExecuting: configuration.maxExecutingRuns,
            metrics: metrics)
        self.keys = keys
        self.launcher = launcher
        catalog = PipelineCatalog(services: services)
        starter = RunStarter(services: services, pipelines: catalog, keys: .loaded(keys), isAccepting: { await launcher.isAccepting })
    }

    /// The keys, or nil when none are configured (no keyring file, no passphrase).
    private static func loadKeys(_ services: ProjectServices, _ configuration: ServerConfiguration, _ logger: Logger) throws -> Keyring? {
        let result = Result { () throws(SecretsError) -> Keyring in
            try services.keys(keyringPath: configuration.keyringPath, environment: configuration.environment)
        }
        switch result {
        case .success(let keys):
            return keys
        case .failure(let error) where error.code == .keyringMissing && configuration.keyringPath == nil:
            logger.notice("no keys: pipelines that decrypt credentials won't be started, and webhooks can't be verified")
            return nil
        case .failure(let error):
            throw error
        }
    }

    /// An executor for one run of the pipeline's plan, its transitions counted in the metrics.
    func executor(for entry: LintedPipeline, plan: PipelinePlan) -> Executor {
        var options = ExecutorOptions()
        options.observer = metrics.observer(for: plan, processors: services.processors.registry)
        var executorLogger = logger
        executorLogger[metadataKey: "component"] = "executor"
        return services.executor(options: options, keys: keys, logger: executorLogger, project: entry.project)
    }

    /// Counts a run the starter created and hands it to the launcher, which executes it now or
    /// once a slot is free. False, the run recorded cancelled, when shutdown began after the
    /// starter looked. A run left for workers is only counted: a `sluice worker` claims it.
    @discardableResult
    func launch(_ started: RunStarter.Started) async -> Bool {
        metrics.runCreated(trigger: started.run.trigger)
        if started.run.forWorkers {
            logger.info(
                "run created, pending for a worker",
                metadata: ["run_id": "\(started.run.id)", "pipeline": "\(started.run.pipeline)", "org": "\(started.run.org)"])
            return true
        }
        return await launcher.launch(
            started.run, plan: started.plan, executor: executor(for: started.pipeline, plan: started.plan),
            env: started.env)
    }

    /// Marks the runs without a heartbeat for `lease` abandoned (or succeeded, when the
    /// warehouse shows their publish committed), each logged and counted.
    @discardableResult
    func recoverDeadRuns(lease: Duration, logger: Logger, now: Date = Date()) async throws -> [RunRecord] {
        let runs = try await RunRecovery.recover(store: store, warehouse: services.warehouse, lease: lease, now: now)
        for run in runs {
            metrics.runAbandoned()
            logger.warning(
                "run found without a heartbeat: marked \(run.state == .succeeded ? "succeeded (its publish had committed)" : "abandoned")",
                metadata: ["run_id": "\(run.id)", "pipeline": "\(run.pipeline)", "org": "\(run.org)"])
        }
        return runs
    }

    /// The launcher as a service, for a service group that stops it after the scheduler (it
    /// stops taking runs, gives those executing the shutdown grace, then cancels them).
    public var launcherService: any Service { launcher }

    /// Returns when no run is executing in this process.
    public func waitForRuns() async {
        await launcher.waitUntilIdle()
    }

    /// Stops taking runs, waits for those executing up to the shutdown grace, cancels the
    /// rest and waits for them.
    public func stopRuns() async {
        await launcher.stop()
    }
}

extension Runner: CustomStringConvertible {
    /// The project, and nothing of the environment or the keys: service groups log the
    /// services they run (a watchdog holds a runner) at debug level.
    public var description: String { "Runner(project: \(services.projectRoot.path))" }
}
