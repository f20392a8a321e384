import Foundation
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// The one way a run is started, whoever starts it (`sluice run`, the HTTP API, a webhook
/// delivery, the scheduler, a backfill): it finds the pipeline, checks that it lints, that the
/// process is taking runs, that the keys are there if the pipeline decrypts credentials, gives
/// the run its logical date (today, UTC, unless the request says) and checks its params; then
/// creates the run, pending, under the request's trigger key (a unique key in the run store,
/// so a trigger delivered twice makes one run) within the limits on active runs. What stops a
/// start is a `RunRefusal`, which each front end turns into its own exit status, HTTP answer
/// or log line. Counting and executing the run are the front end's. Every run it creates
/// records the version of its pipeline (`RunRecord.version`) and its plan.
public struct RunStarter: Sendable {
    /// Where the keys come from for a pipeline that decrypts credentials.
    public enum Keys: Sendable {
        /// Loaded when a run needs them (a command): `keyringPath`, else the keyring or
        /// passphrase variables in `environment`, else the project's keyring.
        case load(keyringPath: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment)
        /// Loaded when the process started (a server); nil when none are configured.
        case loaded(Keyring?)
    }

    /// When a run's params are checked against the pipeline's declaration.
    public enum ParamsCheck: Sendable {
        /// Before the run is created: a param that does not check is refused, and nothing is
        /// created (the caller is there to hear it).
        case beforeCreating
        /// When the run executes: it fails the run, which the run history shows (the scheduler
        /// and backfill, whose runs nobody waits for).
        case whenExecuting
    }

    /// A run to start.
    public struct Request: Sendable {
        /// The pipeline, as linted (`RunStarter.pipeline(_:)` finds one by id).
        public var pipeline: LintedPipeline
        public var org: String
        public var trigger: RunTrigger
        /// YYYY-MM-DD; nil for today (UTC).
        public var logicalDate: String?
        /// As given. The trigger says whose they are: an API or webhook caller's are untrusted
        /// (`RunTrigger.passesCallerValues`), so values made from them stay in the tenant's confines.
        public var params: [String: String]
        public var paramsCheck: ParamsCheck
        /// The environment the run reads (`env.*`, project settings).
        public var env: [String: String]
        /// Unique per pipeline and org: a second start with it finds the first run (`.duplicate`).
        public var triggerKey: String?
        /// The HTTP request that started the run.
        public var requestID: String?
        /// The most runs of the org pending or running at once (a server's limit per org).
        public var orgActiveLimit: Int?
        /// The most runs of the pipeline and org pending or running at once when the pipeline
        /// has no schedule (whose `max_active_runs` applies otherwise).
        public var activeLimitWithoutSchedule: Int?
        /// Where the run executes; nil for the project's choice (`ProjectServices.runExecution`).
        /// `.workers` creates it pending for `sluice worker` processes to claim
        /// (`RunRecord.forWorkers`); the front end then executes nothing.
        public var execution: RunExecution?

        public init(
            pipeline: LintedPipeline, org: String, trigger: RunTrigger, logicalDate: String? = nil,
            params: [String: String] = [:], paramsCheck: ParamsCheck = .beforeCreating,
            env: [String: String] = ProcessInfo.processInfo.environment, triggerKey: String? = nil,
            requestID: String? = nil, orgActiveLimit: Int? = nil, activeLimitWithoutSchedule: Int? = nil,
            execution: RunExecution? = nil
        ) {
            self.pipeline = pipeline
            self.org = org
            self.trigger = trigger
            self.logicalDate = logicalDate
            self.params = params
            self.paramsCheck = paramsCheck
            self.env = env
            self.triggerKey = triggerKey
            self.requestID = requestID
            self.orgActiveLimit = orgActiveLimit
            self.activeLimitWithoutSchedule = activeLimitWithoutSchedule
            self.execution = execution
        }
    }

    /// A run created, pending, and what executing it takes.
    public struct Started: Sendable {
        public var run: RunRecord
        public var pipeline: LintedPipeline
        public var plan: PipelinePlan
        /// The keys, when the pipeline decrypts credentials.
        public var keys: Keyring?
        /// The environment the run executes with.
        public var env: [String: String]
    }

    public let services: ProjectServices
    /// The project's pipelines by id.
    public let pipelines: PipelineCatalog
    public let keys: Keys
    private let isAccepting: @Sendable () async -> Bool
    private let now: @Sendable () -> Date
    /// Writes the records of a run it creates (no warehouse, no schemas: it executes nothing),
    /// with the lease every executor of the project stores.
    private let creator: Executor

    /// `isAccepting` says whether the process takes runs (false once a server's shutdown
    /// began); `now` is the clock a run's default logical date is read from.
    public init(
        services: ProjectServices, pipelines: PipelineCatalog? = nil, keys: Keys = .load(),
        isAccepting: @escaping @Sendable () async -> Bool = { true }, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.services = services
        self.pipelines = pipelines ?? PipelineCatalog(services: services)
        self.keys = keys
        self.isAccepting = isAccepting
        self.now = now
        var options = ExecutorOptions()
        options.lease = services.lease
        creator = Executor(processors: services.processors, store: services.runStore, options: options)
    }

    /// The pipeline `id` (`pipelines/<id>.yml`), linted.
    public func pipeline(_ id: String) async throws(RunRefusal) -> LintedPipeline {
        guard let pipeline = await pipelines.entry(id) else { throw .pipelineNotFound(id) }
        return pipeline
    }

    /// Creates the run the request asks for, pending, or says why not. Errors other than a
    /// `RunRefusal` are the run store's.
    public func start(_ request: Request) async throws -> Started {
        let pipeline = request.pipeline
        // A trigger repeated gets its run back, whatever has changed since (the pipeline may no
        // longer lint, its max_active_runs may be reached).
        if let key = request.triggerKey,
            let earlier = try await services.runStore.run(pipeline: pipeline.id, org: request.org, triggerKey: key)
        {
            throw RunRefusal.duplicate(earlier)
        }
        let plan = try Self.plan(of: pipeline)
        guard await isAccepting() else { throw RunRefusal.shuttingDown }
        let keys = try keys(for: plan)
        let created = Executor.RunRequest(
            org: request.org, logicalDate: request.logicalDate ?? Self.logicalDate(today: now()).description, trigger: request.trigger,
            params: request.params, env: request.env, triggerKey: request.triggerKey, requestID: request.requestID,
            forWorkers: (request.execution ?? services.runExecution) == .workers,
            version: pipeline.version ?? pipeline.currentVersion(projectRoot: services.projectRoot))
        if request.paramsCheck == .beforeCreating {
            // The run as it will be created, so defaults that read `run.*` see what the run will.
            let probe = RunRecord(
                pipeline: plan.definition.id?.value ?? pipeline.id, org: created.org, logicalDate: created.logicalDate,
                trigger: created.trigger, requestID: created.requestID, params: created.params)
            do {
                _ = try RunParameters.check(for: plan.definition, run: probe, env: created.env)
            } catch {
                throw RunRefusal.invalidParam(error)
            }
        }
        // The limits are counted with the insert, in one transaction, and a refused start
        // creates nothing (so the same trigger may come again).
        let activeLimit = plan.definition.schedule.map { max(1, $0.maxActiveRuns) } ?? request.activeLimitWithoutSchedule
        switch try await creator.create(plan, created, activeLimit: activeLimit, orgActiveLimit: request.orgActiveLimit) {
        case .created(let run):
            return Started(run: run, pipeline: pipeline, plan: plan, keys: keys, env: created.env)
        case .existing(let run):
            throw RunRefusal.duplicate(run)
        case .limited(let active):
            throw RunRefusal.limited(ActiveRunsLimit(scope: .pipeline, active: active, maximum: activeLimit ?? active))
        case .orgLimited(let active):
            throw RunRefusal.limited(ActiveRunsLimit(scope: .org, active: active, maximum: request.orgActiveLimit ?? active))
        }
    }

    /// The pipeline's plan, or `.pipelineInvalid` when it does not lint.
    public static func plan(of pipeline: LintedPipeline) throws(RunRefusal) -> PipelinePlan {
        guard let plan = pipeline.plan else { throw .pipelineInvalid(file: pipeline.file, diagnostics: pipeline.diagnostics) }
        return plan
    }

    /// The keys a run of the plan needs: nil when it decrypts no credentials, else the keys
    /// or `.keysUnavailable`.
    public func keys(for plan: PipelinePlan) throws(RunRefusal) -> Keyring? {
        guard services.needsKeys(plan) else { return nil }
        switch keys {
        case .loaded(let keys?):
            return keys
        case .loaded(nil):
            throw .keysUnavailable(reason: "none are configured")
        case .load(let keyringPath, let environment):
            do {
                return try services.keys(keyringPath: keyringPath, environment: environment)
            } catch {
                throw .keysUnavailable(reason: "\(error)")
            }
        }
    }

    /// The logical date of a run started without one: the day `now` falls on, in UTC.
    public static func logicalDate(today now: Date) -> CalendarDate {
        CalendarDate(daysSinceEpoch: Int(now.timeIntervalSince1970 / 86_400))
    }
}
