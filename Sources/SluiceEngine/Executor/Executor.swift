import Foundation
import Logging
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// Settings of the executor that are not part of a pipeline.
public struct ExecutorOptions: Sendable {
    /// How long a step cancelled at its timeout (or by a cancelled run) may take to stop before
    /// it is abandoned.
    public var cancellationGrace: Duration = .seconds(2)
    /// How often a running run marks itself alive in the run store.
    public var heartbeatInterval: Duration = .seconds(5)
    /// How long a run this executor creates may go without a heartbeat before any process
    /// takes it for abandoned; stored with the run.
    public var lease: Duration = .seconds(30)
    /// The timeout of a step when neither it nor the pipeline's `defaults` set one.
    public var fallbackTimeout: Duration = .seconds(3_600)
    /// Told of every transition as it is stored (a progress display, metrics).
    public var observer: (@Sendable (RunEvent) -> Void)?

    public init() {}
}

/// Runs a pipeline's DAG: a task group over the steps whose dependencies have succeeded, at most
/// `max_parallel` at once; each step attempt under its timeout, retried with backoff while its
/// failures are transient; every state change stored with time and reason. When a step fails
/// no new step starts, the steps that did not run are skipped with the reason, and the
/// `on_failure` handlers run, as they do when the warehouse can't be opened or publishing
/// fails. Cancelling the calling task cancels the run, and a cancelled run runs no handler.
public struct Executor: Sendable {
    public var processors: ProcessorEnvironment
    public var store: any RunStore
    /// Where steps read and write tables; a run publishes into it when every step succeeded.
    public var warehouse: (any Warehouse)?
    public var project: ProjectContext?
    public var options: ExecutorOptions
    public var logger: Logger
    /// Where `kms_decrypt` opens an org's stored credentials; nil when there is no keyring.
    public var credentials: Credentials?

    public init(
        processors: ProcessorEnvironment, store: any RunStore, warehouse: (any Warehouse)? = nil,
        project: ProjectContext? = nil, options: ExecutorOptions = ExecutorOptions(),
        logger: Logger = Logger(label: "sluice.executor")
    ) {
        self.processors = processors
        self.store = store
        self.warehouse = warehouse
        self.project = project
        self.options = options
        // Whatever handler the caller set up, nothing this executor (or a processor) logs
        // leaves unredacted.
        var logger = logger
        if !(logger.handler is RedactingLogHandler) { logger.handler = RedactingLogHandler(wrapping: logger.handler) }
        self.logger = logger
    }

    /// What a caller needs to start a run.
    public struct RunRequest: Sendable {
        public var org: String
        public var logicalDate: String
        public var trigger: RunTrigger
        public var params: [String: String]
        public var env: [String: String]
        public var triggerKey: String?
        public var requestID: String?
        /// Whether the run is left for workers to claim (`RunRecord.forWorkers`) rather than
        /// executed by the process that creates it.
        public var forWorkers: Bool
        /// The version of the pipeline the plan was made from (`PipelineVersion.of`), stored
        /// with the run; nil for a plan made from no files.
        public var version: PipelineVersion?

        public init(
            org: String, logicalDate: String, trigger: RunTrigger = .cli, params: [String: String] = [:],
            env: [String: String] = ProcessInfo.processInfo.environment, triggerKey: String? = nil, requestID: String? = nil,
            forWorkers: Bool = false, version: PipelineVersion? = nil
        ) {
            self.org = org
            self.logicalDate = logicalDate
            self.trigger = trigger
            self.params = params
            self.env = env
            self.triggerKey = triggerKey
            self.requestID = requestID
            self.forWorkers = forWorkers
            self.version = version
        }
    }

    /// Creates the run in the store (once per trigger key) and executes it. Returns the run as
    /// it ended; for a trigger key seen before, the earlier run, untouched.
    /// `cancellation` is where whoever cancels the task says why.
    public func start(_ plan: PipelinePlan, _ request: RunRequest, cancellation: CancellationNote? = nil) async throws -> RunRecord {
        let (run, created) = try await create(plan, request)
        guard created else { return run }
        try await execute(plan, run: run, env: request.env, cancellation: cancellation)
        return try await shielded { [store] in try await store.run(run.id) } ?? run
    }

    /// Creates the run in the store, pending, without executing it (once per trigger key:
    /// for a key seen before, the earlier run and `created` false). A server starts runs this
    /// way, answers its caller, and executes the run in a task of its own.
    public func create(_ plan: PipelinePlan, _ request: RunRequest) async throws -> (run: RunRecord, created: Bool) {
        let (record, steps) = records(plan, request)
        return try await store.createRun(record, steps: steps)
    }

    /// Like `create(_:_:)`, but creates nothing while `activeLimit` runs of the pipeline and
    /// org are pending or running (a schedule's `max_active_runs`).
    public func create(_ plan: PipelinePlan, _ request: RunRequest, activeLimit: Int) async throws -> RunCreation {
        try await create(plan, request, activeLimit: activeLimit, orgActiveLimit: nil)
    }

    /// Like `create(_:_:activeLimit:)`, either limit optional; with `orgActiveLimit`, nothing
    /// is created while that many runs of the org are pending or running.
    public func create(_ plan: PipelinePlan, _ request: RunRequest, activeLimit: Int?, orgActiveLimit: Int?) async throws -> RunCreation {
        let (record, steps) = records(plan, request)
        return try await store.createRun(record, steps: steps, activeLimit: activeLimit, orgActiveLimit: orgActiveLimit)
    }

    private func records(_ plan: PipelinePlan, _ request: RunRequest) -> (RunRecord, [StepRunRecord]) {
        let definition = plan.definition
        let pipeline = definition.id?.value ?? "pipeline"
        let record = RunRecord(
            pipeline: pipeline, org: request.org, logicalDate: request.logicalDate, trigger: request.trigger,
            triggerKey: request.triggerKey, requestID: request.requestID, params: request.params,
            lease: options.lease, forWorkers: request.forWorkers, version: request.version,
            plan: plan.recordJSON(fallbackTimeout: options.fallbackTimeout))
        let steps = (definition.steps + definition.onFailure).map {
            StepRunRecord(runID: record.id, stepID: $0.id.value, processor: $0.uses.value)
        }
        return (record, steps)
    }

    /// Runs a failed (or abandoned, or cancelled) run again from the steps that did not
    /// succeed: a new run, with the same params and logical date, that reuses the old run's
    /// staging and the outputs of its succeeded steps. Returns the new run as it ended.
    ///
    /// `version` is the pipeline's version now (`PipelineVersion.of`), stored with the new run.
    /// When the run was created from another version, the resume is refused with
    /// `DefinitionChanged`, creating nothing, unless `force`: then the new definition runs,
    /// the new run's first transition says so, and only steps whose part of the plan is the
    /// same in both versions are reused (none when a schema or procedure changed). A run
    /// stored before versions were is resumed without the check.
    public func resume(
        _ plan: PipelinePlan, runID: String, env: [String: String] = ProcessInfo.processInfo.environment,
        version: PipelineVersion? = nil, force: Bool = false, cancellation: CancellationNote? = nil
    ) async throws -> RunRecord {
        guard let previous = try await store.run(runID) else {
            throw StepFailure(.unknownRun, "no run '\(runID)'")
        }
        guard previous.state == .failed || previous.state == .cancelled else {
            throw StepFailure(.notResumable, "run '\(runID)' is \(previous.state.rawValue); only failed or cancelled runs can be resumed")
        }
        guard previous.pipeline == plan.definition.id?.value else {
            throw StepFailure(.notResumable, "run '\(runID)' is of pipeline '\(previous.pipeline)', not '\(plan.definition.id?.value ?? "?")'")
        }
        let planJSON = plan.recordJSON(fallbackTimeout: options.fallbackTimeout)
        var changes: [PipelineFileChange] = []
        if let version, let recorded = previous.version, recorded.hash != version.hash {
            changes = version.changes(since: recorded)
            guard force else { throw DefinitionChanged(runID: previous.id, recorded: recorded, current: version, changes: changes) }
        }
        let succeeded = Dictionary(
            try await store.steps(of: runID).filter { $0.state == .succeeded }.map { ($0.stepID, $0.outputs) },
            uniquingKeysWith: { first, _ in first })
        // A cancelled run's staging was discarded when it stopped, so its resume runs every step
        // again, with the same params and logical date; so does a forced resume after a schema
        // or procedure changed, which any step may have read.
        let pipelineFileOnly = changes.count == 1 && changes[0].kind == .changed && changes[0].path.hasPrefix("pipelines/")
        let startsOver = previous.state == .cancelled || (!changes.isEmpty && !pipelineFileOnly)
        let changedSteps = changes.isEmpty ? [] : Self.changedSteps(from: previous.plan, to: planJSON)
        let reused = startsOver ? [:] : reusable(plan, succeeded: succeeded, changed: changedSteps)
        // Keyed by the run it resumes: two resumes at once can't both work on its staging.
        let resumeKey = "resume:\(previous.id)"
        if let earlier = try await store.run(pipeline: previous.pipeline, org: previous.org, triggerKey: resumeKey) {
            throw Self.resumedAlready(runID, as: earlier)
        }
        let stagingRun = startsOver ? nil : try await RunRecovery.stagingRun(of: previous, store: store)
        if let warehouse, let stagingRun, !reused.isEmpty, try await !warehouse.hasStaging(org: previous.org, runID: stagingRun) {
            throw StepFailure(
                .notResumable,
                """
                run '\(runID)' can't be resumed: its staging was removed (a failed run keeps it for \
                SLUICE_STAGING_RETENTION, 7 days by default); start a new run instead
                """)
        }
        // A forced resume says so where the run's history is read (and in the log).
        let reason =
            changes.isEmpty
            ? "created"
            : "created with a changed definition (forced): \(changes.map(\.description).joined(separator: ", ")) since run \(previous.id)"
        if !changes.isEmpty {
            logger.notice(
                "resuming run \(previous.id) with a changed definition: \(changes.map(\.description).joined(separator: ", "))",
                metadata: ["run": "\(previous.id)"])
        }
        let record = RunRecord(
            pipeline: previous.pipeline, org: previous.org, logicalDate: previous.logicalDate, trigger: .resume,
            triggerKey: resumeKey, params: previous.params, reason: reason, resumeOf: previous.id, lease: options.lease,
            version: version, plan: planJSON)
        let steps = (plan.definition.steps + plan.definition.onFailure).map {
            StepRunRecord(runID: record.id, stepID: $0.id.value, processor: $0.uses.value)
        }
        let (run, created) = try await store.createRun(record, steps: steps)
        guard created else { throw Self.resumedAlready(runID, as: run) }
        try await execute(plan, run: run, env: env, reuse: reused, stagingOf: stagingRun, cancellation: cancellation)
        return try await shielded { [store] in try await store.run(run.id) } ?? run
    }

    /// Of the steps that succeeded in an earlier attempt at a run (with their outputs), those a
    /// continuation keeps rather than runs again. A step that put secrets into the vault runs
    /// again: the vault ended with that attempt. A step whose result derives from tables runs
    /// again, and so does every step after it: other runs may have published those tables
    /// since, so what it staged may be stale.
    ///
    /// Steps in `changed` (their part of the plan differs from the earlier attempt's) run
    /// again too, and so does every step after them.
    func reusable(
        _ plan: PipelinePlan, succeeded: [String: [String: ExpressionValue]], changed: Set<String> = []
    ) -> [String: [String: ExpressionValue]] {
        var reused: [String: [String: ExpressionValue]] = [:]
        var stale: Set<String> = []
        for id in plan.order {
            guard let outputs = succeeded[id], let step = plan.definition.step(id) else { continue }
            if processors[step.uses.value]?.spec.derivesFromTables == true || changed.contains(id)
                || plan.edges.contains(where: { $0.to == id && stale.contains($0.from) })
            {
                stale.insert(id)
                continue
            }
            if step.io.definesSecrets.isEmpty { reused[id] = outputs }
        }
        return reused
    }

    /// Executes a run that exists in the store. `reuse` holds steps that already succeeded
    /// (in the run whose staging `stagingOf` names) with their outputs; they are not run again.
    /// `cancellation` is where whoever cancels the task says why; the cancelled run is recorded
    /// with that reason. With `lease` (a worker executes a run it claimed), the run is kept by
    /// renewing the worker's lease instead of heartbeats, and a run cancelled after the worker
    /// asked to release it is handed back, its staging kept, rather than ended cancelled.
    /// `startReason` is the reason of the run's `running` transition.
    public func execute(
        _ plan: PipelinePlan, run: RunRecord, env: [String: String],
        reuse: [String: [String: ExpressionValue]] = [:], stagingOf stagingRun: String? = nil,
        cancellation: CancellationNote? = nil, lease: RunLease? = nil, startReason: String = "started"
    ) async throws {
        // The run's secrets: cleared (buffers overwritten) however the run ends.
        let vault = SecretVault(owner: run.id)
        do {
            try await RunRequestID.$current.withValue(run.requestID ?? run.id) {
                try await execute(
                    plan, run: run, env: env, reuse: reuse, stagingOf: stagingRun, vault: vault, cancellation: cancellation,
                    lease: lease, startReason: startReason)
            }
        } catch {
            await vault.clearAll()
            throw error
        }
        await vault.clearAll()
    }

    private func execute(
        _ plan: PipelinePlan, run: RunRecord, env: [String: String],
        reuse: [String: [String: ExpressionValue]], stagingOf stagingRun: String?, vault: SecretVault,
        cancellation: CancellationNote?, lease: RunLease?, startReason: String
    ) async throws {
        var logger = self.logger
        if let lease { logger[metadataKey: "worker"] = "\(lease.worker)" }
        // Kept alive from the start: reading the settings and params can take a while on a busy
        // machine, and a worker's claim must not lapse before the run is under way.
        let ownership = RunOwnership()
        let heartbeat = Task { [self] in
            while !Task.isCancelled {
                if (try? await keepAlive(run, lease: lease)) == false {
                    ownership.lose()
                    return
                }
                try? await Task.sleep(for: lease?.renewalInterval ?? options.heartbeatInterval)
            }
        }
        defer { heartbeat.cancel() }
        logger[metadataKey: "run_id"] = "\(run.id)"
        logger[metadataKey: "pipeline"] = "\(run.pipeline)"
        if let requestID = run.requestID { logger[metadataKey: "request_id"] = "\(requestID)" }

        // A resumed run's params are as trusted as those of the run its chain started from.
        let origin = try await RunRecovery.origin(of: run, store: store).trigger
        // The settings the run's steps go by (input roots, allowed addresses, `public_url`),
        // read once, now, from the run's environment.
        var project = self.project
        let base: ExpressionContext
        do {
            if let root = project?.root {
                project?.settings = try await ProjectSettings.load(projectRoot: root, environment: env)
            }
            base = try RunParameters.context(for: plan.definition, run: run, env: env, origin: origin)
        } catch {
            let problem = error is SettingsError ? "the project's settings are invalid" : "the run's params are invalid"
            let reason = error is SettingsError ? "\(problem): \(error)" : "\(error)"
            try await shielded { [store] in try await store.recordRun(run.id, state: .failed, reason: reason, at: Date()) }
            notify(run.id, step: nil, .failed, reason)
            try await skipAll(plan.definition.steps.map(\.id.value), of: run.id, reason: problem)
            // Handlers read params too; the caller (a command or an API call) hears of the error.
            try await skipAll(plan.definition.onFailure.map(\.id.value), of: run.id, reason: "not run: \(problem)")
            logger.error("run failed before any step: \(reason)")
            return
        }

        // A worker's claim is checked once more before the run is recorded as its own.
        var stillHeld = true
        if lease != nil { stillHeld = (try? await keepAlive(run, lease: lease)) != false }
        if !stillHeld || ownership.isLost {
            ownership.lose()
            logLost(logger, lease: lease)
            return
        }
        try await shielded { [store] in try await store.recordRun(run.id, state: .running, reason: startReason, at: Date()) }
        notify(run.id, step: nil, .running, startReason)
        logger.info("run started", metadata: startReason == "started" ? [:] : ["reason": "\(startReason)"])

        var workspace: (any RunWorkspace)?
        if let warehouse {
            do {
                // Every table a step writes may be held (see `RunWorkspace.holdTargets()`); a
                // resume that reuses steps needs the staging they wrote.
                let targets = plan.order.flatMap { plan.writes[$0] ?? [] }
                workspace = try await warehouse.workspace(
                    org: run.org, runID: stagingRun ?? run.id, targets: targets,
                    existing: stagingRun != nil && !reuse.isEmpty)
            } catch {
                let reason = redactor.redact("the warehouse could not be opened: \(Self.message(of: error))")
                logger.error("\(reason)")
                try await skipAll(plan.definition.steps.map(\.id.value), of: run.id, reason: "not run: the warehouse could not be opened")
                try await fail(
                    plan, run: run, context: base, reason: reason,
                    failure: RunFailure(
                        stepID: nil, code: (error as? StepFailure)?.code ?? RunFailure.warehouseUnavailableCode,
                        message: reason),
                    resources: RunResources(workspace: nil, vault: vault, project: project), logger: logger)
                return
            }
        }

        for (step, outputs) in reuse.sorted(by: { $0.key < $1.key }) {
            try await shielded { [store] in
                try await store.saveOutputs(run.id, step: step, outputs: outputs)
                try await store.recordStep(
                    run.id, step: step, state: .succeeded, attempt: 0,
                    reason: stagingRun == run.id ? "kept from the run's earlier attempt" : "reused from run \(stagingRun ?? "?")",
                    errorCode: nil, at: Date())
            }
        }
        // The run-level timeout: past it the steps are cancelled, and the run fails (it is not
        // a cancellation: nobody asked for it, so the handlers run).
        let deadline = RunDeadline(plan.definition.timeout)
        let resources = RunResources(workspace: workspace, vault: vault, project: project, deadline: deadline, ownership: ownership)
        // The steps stop (cancelled) if another process marks the run abandoned meanwhile.
        let steps = Task { [self] in
            await runSteps(plan, run: run, base: base, resources: resources, reused: reuse, deadline: deadline, logger: logger)
        }
        ownership.onLoss { steps.cancel() }
        let timer = deadline.start { steps.cancel() }
        defer { timer?.cancel() }
        var (outcome, outputs) = await withTaskCancellationHandler {
            await steps.value
        } onCancel: {
            steps.cancel()
        }
        if case .cancelled = outcome, deadline.passed { outcome = .failed(step: nil, deadline.failure) }
        if ownership.isLost {
            await workspace?.close()
            logLost(logger, lease: lease)
            return
        }
        // Handlers see the outputs of the steps that succeeded.
        var handlerContext = base
        handlerContext.stepOutputs = outputs
        switch outcome {
        case .succeeded:
            if let workspace {
                // Other runs may hold the tables this one publishes: waiting for them can take as
                // long as their steps do, so it happens here, where cancelling the run stops it.
                do {
                    try await deadline.bound { try await workspace.holdTargets() }
                } catch {
                    if deadline.passed {
                        await workspace.close()
                        try await fail(
                            plan, run: run, context: handlerContext, reason: deadline.failure.message,
                            failure: RunFailure(stepID: nil, code: deadline.failure.code, message: deadline.failure.message),
                            resources: resources, logger: logger)
                    } else if error is CancellationError || Task.isCancelled {
                        try await endCancelled(plan, run: run, workspace: workspace, reason: cancellation?.reason, lease: lease, logger: logger)
                    } else if (error as? StepFailure)?.code == .stagingSuperseded {
                        // Another process reopened the staging (a worker took the run over):
                        // the run is that process's now.
                        ownership.lose()
                        await workspace.close()
                        logLost(logger, lease: lease)
                    } else {
                        try await failPublish(plan, run: run, error: error, context: handlerContext, resources: resources, logger: logger)
                    }
                    return
                }
            }
            // Every target table changes now, in one transaction, or not at all; and only if the
            // run is still this process's.
            if (try? await shielded { [self] in try await keepAlive(run, lease: lease) }) == false {
                ownership.lose()
                await workspace?.close()
                logLost(logger, lease: lease)
                return
            }
            if let workspace {
                do {
                    let publications = try await shielded { try await workspace.publish() }
                    try await recordPublished(publications, of: run, outputs: outputs, logger: logger)
                } catch let error as StepFailure where error.code == .stagingSuperseded {
                    // Another process reopened the staging (a worker took the run over while
                    // this one stalled past its lease), or the run's publish is in already: the
                    // warehouse refused a second publish. A process that still holds the run
                    // ends it succeeded when the publish is in; any other stops quietly, and
                    // whoever holds the run now ends it.
                    await workspace.close()
                    let publishedBefore = (try? await warehouse?.wasPublished(org: run.org, runID: stagingRun ?? run.id)) == true
                    guard publishedBefore, (try? await shielded { [self] in try await keepAlive(run, lease: lease) }) == true else {
                        ownership.lose()
                        logger.error("\(error.message); stopping without recording anything more")
                        return
                    }
                    logger.notice("\(error.message): an earlier process of this run published it")
                } catch {
                    try await failPublish(plan, run: run, error: error, context: handlerContext, resources: resources, logger: logger)
                    return
                }
            }
            try await skipAll(plan.definition.onFailure.map(\.id.value), of: run.id, reason: "not needed: the run succeeded")
            try await shielded { [store] in try await store.recordRun(run.id, state: .succeeded, reason: "every step succeeded", at: Date()) }
            notify(run.id, step: nil, .succeeded, "every step succeeded")
            logger.info("run succeeded")
        case .failed(let step, let failure):
            let reason = step.map { "step '\($0)' failed: \(failure.message)" } ?? failure.message
            // The staging stays for a resume; nothing of it is published. Other runs need not
            // wait for the handlers to have the tables.
            await workspace?.close()
            try await fail(
                plan, run: run, context: handlerContext, reason: reason,
                failure: RunFailure(stepID: step, code: failure.code, message: failure.message),
                resources: resources, logger: logger)
            logger.error("run failed", metadata: ["step_id": "\(step ?? "")", "error_code": "\(failure.code)"])
        case .cancelled:
            try await endCancelled(plan, run: run, workspace: workspace, reason: cancellation?.reason, lease: lease, logger: logger)
        }
    }

    /// Tells the store the run is still this process's: a worker renews its lease, any other
    /// process beats the run's heartbeat. False once it is no longer (another process marked
    /// it abandoned, or another worker took it over).
    private func keepAlive(_ run: RunRecord, lease: RunLease?) async throws -> Bool {
        guard let lease else { return try await store.heartbeat(run.id, at: Date()) }
        return try await store.renewLease(run.id, worker: lease.worker, lease: lease.duration, at: Date())
    }

    /// Ends a run that was cancelled: its staging discarded, no handler run (whoever cancelled
    /// a run knows; alerting them would be noise), the reason recorded. A run whose worker asked
    /// to release it is handed back instead: its staging kept, so another worker continues it.
    private func endCancelled(
        _ plan: PipelinePlan, run: RunRecord, workspace: (any RunWorkspace)?, reason: String?,
        lease: RunLease?, logger: Logger
    ) async throws {
        if let lease, let release = lease.releaseReason {
            await workspace?.close()
            let released = try await shielded { [store] in
                try await store.releaseRun(run.id, worker: lease.worker, reason: release, at: Date())
            }
            if released {
                notify(run.id, step: nil, .running, RunClaim.releaseReason(worker: lease.worker, release))
                logger.notice("run released: another worker continues it from its staging")
            } else {
                logLost(logger, lease: lease)
            }
            return
        }
        if let workspace {
            do { try await shielded { try await workspace.discard() } } catch { await workspace.close() }
        }
        try await skipAll(plan.definition.onFailure.map(\.id.value), of: run.id, reason: "not run: the run was cancelled")
        let reason = reason ?? "the run was cancelled"
        try await shielded { [store] in try await store.recordRun(run.id, state: .cancelled, reason: reason, at: Date()) }
        notify(run.id, step: nil, .cancelled, reason)
        logger.notice("run cancelled")
    }

    /// Ends a run whose publish failed: nothing of it changed; a full disk or a damaged file
    /// says so in its code, anything else is `publish_failed`.
    private func failPublish(
        _ plan: PipelinePlan, run: RunRecord, error: any Error, context: ExpressionContext,
        resources: RunResources, logger: Logger
    ) async throws {
        let reason = redactor.redact("publishing failed, nothing was changed: \(Self.message(of: error))")
        logger.error("\(reason)")
        let code = (error as? StepFailure).map(\.code).flatMap { Self.storageCodes.contains($0) ? $0 : nil }
        await resources.workspace?.close()
        try await fail(
            plan, run: run, context: context, reason: reason,
            failure: RunFailure(stepID: nil, code: code ?? RunFailure.publishFailedCode, message: reason),
            resources: resources, logger: logger)
    }

    /// Failure codes of the warehouse's own that name what went wrong better than the phase did.
    static let storageCodes: Set<FailureCode> = [.warehouseFull, .warehouseCorrupt, .databaseLocked]

    /// An error in words: a `StepFailure`'s message without its code, anything else as it describes itself.
    static func message(of error: any Error) -> String {
        (error as? StepFailure)?.message ?? "\(error)"
    }

    /// Stores what the publish did to each table with the step that staged it: a step's
    /// `rows_inserted` and `rows_updated` become the figures of the publish, which re-applied
    /// the step's rule against the table as it was then, and the staged rows that lost there
    /// join `rows_unchanged` (the rows the step already found no newer than what was published).
    private func recordPublished(
        _ publications: [TablePublication], of run: RunRecord,
        outputs: [String: [String: ExpressionValue]], logger: Logger
    ) async throws {
        for publication in publications {
            logger.info(
                "published \(publication.table)",
                metadata: [
                    "inserted": "\(publication.inserted)", "updated": "\(publication.updated)",
                    "unchanged": "\(publication.unchanged)", "deleted": "\(publication.deleted)",
                ])
            guard let step = publication.step, var stepOutputs = outputs[step], stepOutputs["rows_inserted"] != nil else { continue }
            stepOutputs["rows_inserted"] = .number(Double(publication.inserted))
            stepOutputs["rows_updated"] = .number(Double(publication.updated))
            var unchangedBefore = 0.0
            if case .number(let count)? = stepOutputs["rows_unchanged"] { unchangedBefore = count }
            stepOutputs["rows_unchanged"] = .number(unchangedBefore + Double(publication.unchanged))
            try await shielded { [store, stepOutputs] in try await store.saveOutputs(run.id, step: step, outputs: stepOutputs) }
        }
    }

    /// The steps whose entry differs between two stored plans (`PipelinePlan.recordJSON`), or
    /// that only the later one has; every step of `later` when `earlier` can't be read.
    static func changedSteps(from earlier: String?, to later: String) -> Set<String> {
        func entries(_ json: String?) -> [String: Data]? {
            guard let json, let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let steps = object["steps"] as? [[String: Any]]
            else { return nil }
            var byID: [String: Data] = [:]
            for step in steps {
                guard let id = step["id"] as? String else { continue }
                byID[id] = try? JSONSerialization.data(withJSONObject: step, options: [.sortedKeys])
            }
            return byID
        }
        let after = entries(later) ?? [:]
        guard let before = entries(earlier) else { return Set(after.keys) }
        return Set(after.keys.filter { before[$0] == nil || before[$0] != after[$0] })
    }

    private static func resumedAlready(_ runID: String, as resumed: RunRecord) -> StepFailure {
        StepFailure(
            .notResumable, "run '\(runID)' was resumed already, as run '\(resumed.id)' (\(resumed.state.rawValue)); resume that one if it failed")
    }

    private func logLost(_ logger: Logger, lease: RunLease?) {
        if let lease {
            logger.error(
                """
                worker \(lease.worker) no longer holds this run's lease (it was not renewed within \(DurationText.format(lease.duration)), \
                and another worker took the run over); stopping without publishing, discarding its staging or recording \
                anything more
                """)
            return
        }
        logger.error(
            """
            another process marked this run abandoned (it had no heartbeat for the lease: this process \
            was suspended or starved); stopping without publishing, discarding its staging or recording \
            anything more. Look at it with sluice runs show, resume it with sluice run --resume
            """)
    }

    /// Ends a run that failed: its `on_failure` handlers run, then the run is stored as failed
    /// with `reason`, whatever the handlers did.
    private func fail(
        _ plan: PipelinePlan, run: RunRecord, context: ExpressionContext, reason: String, failure: RunFailure,
        resources: RunResources, logger: Logger
    ) async throws {
        await runHandlers(plan, run: run, context: context, failure: failure, resources: resources, logger: logger)
        try await shielded { [store] in try await store.recordRun(run.id, state: .failed, reason: reason, at: Date()) }
        notify(run.id, step: nil, .failed, reason)
    }

    private func notify(
        _ runID: String, step: String?, _ state: RunState, attempt: Int = 0, _ reason: String,
        outputs: [String: ExpressionValue]? = nil
    ) {
        options.observer?(
            RunEvent(
                transition: Transition(stepID: step, attempt: attempt, state: state, reason: reason, at: Date()),
                outputs: outputs))
    }

    /// Runs a store write in a task of its own, so that a cancelled run still records that it
    /// was cancelled (GRDB's async writes refuse to start in a cancelled task).
    private func shielded<T: Sendable>(_ write: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await write() }.value
    }

    // MARK: The DAG

    enum Outcome: Sendable {
        case succeeded
        /// A step failed, or (no step) the run passed its timeout.
        case failed(step: String?, StepFailure)
        case cancelled
    }

    enum StepResult: Sendable {
        case succeeded([String: ExpressionValue])
        case failed(StepFailure)
        case cancelled
    }

    /// Runs the DAG; returns how it ended and the outputs of the steps that succeeded.
    private func runSteps(
        _ plan: PipelinePlan, run: RunRecord, base: ExpressionContext, resources: RunResources,
        reused: [String: [String: ExpressionValue]] = [:], deadline: RunDeadline? = nil,
        logger: Logger
    ) async -> (Outcome, [String: [String: ExpressionValue]]) {
        let definition = plan.definition
        var waitingOn: [String: Set<String>] = Dictionary(uniqueKeysWithValues: plan.order.map { ($0, []) })
        var dependents: [String: [String]] = [:]
        for edge in plan.edges {
            waitingOn[edge.to, default: []].insert(edge.from)
            dependents[edge.from, default: []].append(edge.to)
        }
        var started = Set(reused.keys)
        var outputs: [String: [String: ExpressionValue]] = reused
        for id in reused.keys {
            for next in dependents[id] ?? [] { waitingOn[next]?.remove(id) }
        }
        var failure: (step: String, failure: StepFailure)?
        var cancelled = false
        let maxParallel = max(1, definition.defaults.maxParallel)

        await withTaskGroup(of: (String, StepResult).self) { group in
            var running = 0
            func launchReady() {
                guard failure == nil, !cancelled, !Task.isCancelled else { return }
                for id in plan.order where running < maxParallel && !started.contains(id) && waitingOn[id]?.isEmpty == true {
                    guard let step = definition.step(id) else { continue }
                    started.insert(id)
                    running += 1
                    var context = base
                    context.stepOutputs = outputs
                    group.addTask {
                        (id, await self.runStep(step, plan: plan, run: run, context: context, resources: resources, logger: logger))
                    }
                }
            }
            launchReady()
            while let (id, result) = await group.next() {
                running -= 1
                switch result {
                case .succeeded(let published):
                    outputs[id] = published
                    for next in dependents[id] ?? [] { waitingOn[next]?.remove(id) }
                case .failed(let stepFailure):
                    if failure == nil { failure = (id, stepFailure) }
                case .cancelled:
                    cancelled = true
                }
                if Task.isCancelled { cancelled = true }
                launchReady()
            }
        }

        let reason: String
        if let failure {
            reason = "not run: step '\(failure.step)' failed"
        } else if deadline?.passed == true {
            reason = "not run: the run passed its timeout"
        } else if cancelled || Task.isCancelled {
            reason = "not run: the run was cancelled"
        } else {
            reason = "not run"
        }
        let unstarted = plan.order.filter { !started.contains($0) }
        if resources.ownership?.isLost != true { try? await skipAll(unstarted, of: run.id, reason: reason) }

        if let failure { return (.failed(step: failure.step, failure.failure), outputs) }
        if cancelled || Task.isCancelled { return (.cancelled, outputs) }
        return (.succeeded, outputs)
    }

    private func skipAll(_ steps: [String], of runID: String, reason: String) async throws {
        for step in steps {
            try await shielded { [store] in
                try await store.recordStep(runID, step: step, state: .skipped, attempt: 0, reason: reason, errorCode: nil, at: Date())
            }
            notify(runID, step: step, .skipped, reason)
        }
    }

    /// `on_failure` handlers, each once, in order (with their retry policy), with the failure in
    /// `run.failed_step`, `run.error_code` and `run.error`; their own failures are recorded, not
    /// raised, and change nothing about the run's.
    private func runHandlers(
        _ plan: PipelinePlan, run: RunRecord, context: ExpressionContext, failure: RunFailure,
        resources: RunResources, logger: Logger
    ) async {
        var failure = failure
        failure.message = redactor.redact(failure.message)
        var context = context
        context.run["failed_step"] = failure.stepID.map(ExpressionValue.string) ?? .null
        context.run["error_code"] = .string(failure.code.rawValue)
        context.run["error"] = .string(failure.message)
        for handler in plan.definition.onFailure {
            _ = await runStep(handler, plan: plan, run: run, context: context, resources: resources, runFailure: failure, logger: logger)
        }
    }

    // MARK: One step

    /// What every step of a run shares.
    struct RunResources: Sendable {
        var workspace: (any RunWorkspace)?
        var vault: SecretVault
        /// The project, with the settings the run read when it started.
        var project: ProjectContext?
        /// The run's own timeout, which says why its steps were stopped once it has passed.
        var deadline: RunDeadline? = nil
        /// Whether the run is still this process's: once it is not, its steps stop and record
        /// nothing more (another worker may be recording the same steps).
        var ownership: RunOwnership? = nil

        /// Why a step of the run stopped without finishing: the run was cancelled, or its timeout passed.
        var stopReason: String {
            deadline?.passed == true ? "the run passed its timeout" : "the run was cancelled"
        }
    }

    /// The services `spec` declares, from what the run has; the others stay out of the step's reach.
    private func services(
        for spec: ProcessorSpec, run: RunRecord, stepID: String, resources: RunResources,
        secretsTTL: Duration?
    ) -> StepServices {
        var services = StepServices()
        if spec.capabilities.contains(.warehouse) { services.workspace = resources.workspace }
        if spec.capabilities.contains(.stepRecords) { services.records = StepRecorder(store: store, runID: run.id, stepID: stepID) }
        if spec.capabilities.contains(.credentials) {
            services.secrets = StepSecrets(vault: resources.vault, credentials: credentials, ttl: secretsTTL)
        }
        return services
    }

    private var redactor: SecretRedactor { .shared }

    /// A failure whose message has been through the redactor, so that nothing stored, logged
    /// or reported from it carries a secret.
    private func redacted(_ failure: StepFailure) -> StepFailure {
        var failure = failure
        failure.message = redactor.redact(failure.message)
        return failure
    }

    private func redacted(_ value: ExpressionValue) -> ExpressionValue {
        if case .string(let text) = value { return .string(redactor.redact(text)) }
        return value
    }

    private func runStep(
        _ step: StepDefinition, plan: PipelinePlan, run: RunRecord, context: ExpressionContext,
        resources: RunResources, runFailure: RunFailure? = nil, logger parentLogger: Logger
    ) async -> StepResult {
        let id = step.id.value
        var logger = parentLogger
        logger[metadataKey: "step_id"] = "\(id)"
        let definition = plan.definition
        let limit = step.timeout ?? definition.defaults.timeout ?? options.fallbackTimeout
        var generator = SystemRandomNumberGenerator()
        var lastOutputs: [String: ExpressionValue]?

        func record(_ state: RunState, _ attempt: Int, _ text: String, _ code: FailureCode? = nil) async {
            if resources.ownership?.isLost == true { return }
            let reason = redactor.redact(text)
            do {
                try await shielded { [store] in
                    try await store.recordStep(
                        run.id, step: id, state: state, attempt: attempt, reason: reason, errorCode: code?.rawValue, at: Date())
                }
                notify(run.id, step: id, state, attempt: attempt, reason, outputs: state == .succeeded ? lastOutputs : nil)
            } catch {
                logger.error("could not store the step's state \(state.rawValue): \(error)")
            }
        }

        guard let processor = processors[step.uses.value] else {
            let failure = StepFailure(.unknownProcessor, "no processor '\(step.uses.value)' is available to run this step", at: step.uses.location)
            await record(.failed, 0, failure.message, failure.code)
            return .failed(failure)
        }
        // The step's own policy, else the pipeline's, else the one its processor asks for.
        let policy = step.retry ?? definition.defaults.retry ?? processor.spec.defaultRetry ?? .none
        // The step's limits and its org's, the lower of each; requests count over every attempt.
        let orgLimits = resources.project?.settings.limits(for: run.org).step ?? StepLimits()
        let stepLimits = step.limits.tightened(by: orgLimits)
        let budget = stepLimits.isEmpty ? nil : StepBudget(limits: stepLimits)

        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled {
                await record(.cancelled, attempt - 1, resources.stopReason)
                return .cancelled
            }
            await record(.running, attempt, attempt == 1 ? "started" : "attempt \(attempt) of \(policy.attempts)")
            var attemptContext = context
            attemptContext.run["attempt"] = .number(Double(attempt))
            let resolved: ConfigResolver.Resolved
            do {
                // Every secret the step reads must still be alive, now.
                let names = Set(step.io.secretReferences.map(\.value))
                if !names.isEmpty { attemptContext.secrets = try await resources.vault.values(for: names, step: id) }
                resolved = try ConfigResolver.resolve(step.config ?? YAMLNode(.mapping([]), at: step.location), in: attemptContext)
            } catch {
                let failure = error
                await record(.failed, attempt, failure.message, failure.code)
                logger.error("step failed: \(failure.message)", metadata: ["error_code": "\(failure.code)"])
                return .failed(redacted(failure))
            }
            var stepContext = StepContext(
                runID: run.id, pipeline: run.pipeline, org: run.org, stepID: id, attempt: attempt,
                config: processor.spec.withDefaults(resolved.config), logger: logger, project: resources.project)
            stepContext.untrustedFields = resolved.untrustedFields
            stepContext.logicalDate = run.logicalDate
            stepContext.runFailure = runFailure
            stepContext.environment = attemptContext.env
            stepContext.services = services(for: processor.spec, run: run, stepID: id, resources: resources, secretsTTL: definition.secretsTTL)
            let outcome = await AttemptRunner.run(limit: limit, grace: options.cancellationGrace) { [stepContext] in
                // What the step reads must stay as it read it until the run publishes.
                if processor.spec.derivesFromTables, let workspace = stepContext.services.workspace {
                    stepContext.logger.debug("holding the run's target tables")
                    try await workspace.holdTargets()
                }
                return try await StepBudget.$current.withValue(budget) { try await processor.run(stepContext) }
            }
            // Secrets past their time go now, whatever the step did.
            let expired = await resources.vault.clearExpired()
            if !expired.isEmpty { logger.info("cleared expired secrets", metadata: ["secrets": "\(expired.joined(separator: ", "))"]) }

            let failure: StepFailure
            switch outcome {
            case .finished(.success(let outputs)):
                let published = outputs.mapValues(redacted)
                lastOutputs = published
                do {
                    if resources.ownership?.isLost != true {
                        try await shielded { [store] in try await store.saveOutputs(run.id, step: id, outputs: published) }
                    }
                } catch {
                    logger.error("could not store the step's outputs: \(error)")
                }
                await record(.succeeded, attempt, "succeeded")
                logger.info("step succeeded", metadata: ["attempt": "\(attempt)"])
                return .succeeded(published)
            case .finished(.failure(let error)):
                if error is CancellationError || Task.isCancelled {
                    await record(.cancelled, attempt, resources.stopReason)
                    return .cancelled
                }
                if let superseded = error as? StepFailure, superseded.code == .stagingSuperseded, let ownership = resources.ownership {
                    // The warehouse refused a write: another process reopened the staging (a
                    // worker took the run over). The run is that process's now: this one stops
                    // and records nothing more, as when its lease is found lost.
                    logger.error("\(superseded.message)")
                    ownership.lose()
                    return .cancelled
                }
                failure = redacted((error as? StepFailure) ?? StepFailure(.error, "\(error)"))
            case .timedOut(let abandoned):
                failure = .timedOut(after: limit, abandoned: abandoned)
                await record(.timedOut, attempt, failure.message, failure.code)
                logger.warning("step timed out", metadata: ["abandoned": "\(abandoned)"])
            case .cancelled(let abandoned):
                await record(
                    .cancelled, attempt,
                    abandoned
                        ? "\(resources.stopReason); the step ignored cancellation and was abandoned"
                        : resources.stopReason)
                return .cancelled
            }

            if !failure.transient {
                // Where the problem is (a file, line and column) leads the stored reason.
                let reason = failure.location.map { "\($0): \(failure.message)" } ?? failure.message
                await record(.failed, attempt, reason, failure.code)
                logger.error("step failed: \(failure.message)", metadata: ["error_code": "\(failure.code)"])
                return .failed(failure)
            }
            if attempt >= policy.attempts {
                let reason = policy.attempts == 1 ? failure.message : "gave up after \(attempt) attempts: \(failure.message)"
                await record(.deadLettered, attempt, reason, failure.code)
                logger.error("step dead-lettered: \(failure.message)", metadata: ["error_code": "\(failure.code)"])
                return .failed(StepFailure(failure.code, reason, transient: false, at: failure.location))
            }
            var delay = policy.delay(afterFailedAttempts: attempt, using: &generator)
            if let wanted = failure.retryAfter, wanted > delay {
                guard wanted <= policy.maxDelay else {
                    let reason =
                        "\(failure.message); asked to wait \(DurationText.format(wanted)), more than retry.max_delay (\(DurationText.format(policy.maxDelay)))"
                    await record(.failed, attempt, reason, failure.code)
                    logger.error("step failed: \(reason)", metadata: ["error_code": "\(failure.code)"])
                    return .failed(StepFailure(failure.code, reason, transient: false, at: failure.location))
                }
                delay = wanted
            }
            await record(.retrying, attempt, "\(failure.message); retrying in \(DurationText.format(delay))", failure.code)
            logger.warning("step will retry", metadata: ["error_code": "\(failure.code)", "delay": "\(DurationText.format(delay))"])
            do {
                try await Task.sleep(for: delay)
            } catch {
                await record(.cancelled, attempt, "the run was cancelled while waiting to retry")
                return .cancelled
            }
        }
    }
}
