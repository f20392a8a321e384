import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `sluice scheduler`: creates runs at their pipelines' cron times, for each configured org,
/// and executes them in this process.
///
/// - A scheduled run's trigger key is its fire time (`schedule:2026-11-22T02:15:00Z`), unique
///   per pipeline and org in the run store, so schedulers running at once (or one restarted,
///   or a backfill) never create the same run twice; only the one that created a run
///   executes it.
/// - Fire times back to `schedule.catchup` before now are due (on start, and for runs that
///   waited); without `catchup`, only the latest fire time at or before now. Older fire times
///   not created by then are skipped, logged and counted.
/// - `max_active_runs`: a due run is created only while fewer runs of the pipeline and org are
///   pending or running (counted in the insert's transaction); it waits for the next look
///   otherwise, and due runs are created oldest first.
/// - Pipeline files are linted again when they change; one that stops linting keeps being
///   scheduled by its last good version, and why is logged once per change.
/// - A watchdog marks runs whose process stopped heartbeating as abandoned (wall clock).
public actor Scheduler: Service {
    public struct Options: Sendable {
        /// The orgs runs are created for (`sluice.yml` `orgs`, or `--org`).
        public var orgs: [String]
        /// The pipelines scheduled; nil for every pipeline of the project.
        public var pipelines: Set<String>?
        /// How often the scheduler looks at files, limits and the watchdog between fire times.
        public var poll: Duration = .seconds(5)
        /// A run without a heartbeat for this long is abandoned; nil for the project's
        /// `run_lease` setting.
        public var lease: Duration?
        /// At most this many runs are created for one pipeline and org in one look (a
        /// minutely schedule with a week of catch-up is worked through over several looks).
        public var maxRunsPerLook = 100

        public init(orgs: [String], pipelines: Set<String>? = nil) {
            self.orgs = orgs
            self.pipelines = pipelines
        }
    }

    /// A run the scheduler created, for callers that watch (tests, `--once`).
    public struct Created: Sendable, Hashable {
        public var run: RunRecord
        public var fireTime: Date
    }

    private let runner: Runner
    private let options: Options
    private let clock: any SchedulerClock
    private let logger: Logger
    private let onStart: @Sendable () -> Void
    /// A pipeline's schedule for one org.
    private struct Slot: Hashable {
        var pipeline: String
        var org: String
    }

    /// Per pipeline and org: the latest fire time handled (created, found created, or
    /// skipped). Fire times after it are due once they pass.
    private var handledThrough: [Slot: Date] = [:]
    /// Per pipeline and org: the fire time waiting for `max_active_runs`, counted once.
    private var deferred: [Slot: Date] = [:]
    /// The last plan of each pipeline that linted, and the file's diagnostics last logged.
    private var lastGood: [String: (entry: LintedPipeline, plan: PipelinePlan)] = [:]
    private var reported: [String: String] = [:]
    private var lastWatchdog: Date?
    /// A due run not created yet because `max_active_runs` runs of its pipeline and org are active.
    public struct Waiting: Sendable, Hashable {
        public var pipeline: String
        public var org: String
        public var fireTime: Date
    }

    /// The due runs waiting for `max_active_runs`, oldest first.
    public var waiting: [Waiting] {
        deferred.map { slot, fire in Waiting(pipeline: slot.pipeline, org: slot.org, fireTime: fire) }.sorted {
            ($0.fireTime, $0.pipeline, $0.org) < ($1.fireTime, $1.pipeline, $1.org)
        }
    }

    /// Whether the last look stopped at `maxRunsPerLook` with fire times left: look again at once.
    public private(set) var backlog = false
    /// The sleep until the next look, which a run ending cuts short.
    private var sleeper: Task<Void, any Error>?
    /// A run ended since the current look began: look again without sleeping.
    private var nudged = false

    /// `onStart` is called as the service starts (when run by a service group, its signal
    /// handlers are in place by then).
    public init(
        runner: Runner, options: Options, clock: any SchedulerClock = SystemSchedulerClock(),
        logger: Logger = Logger(label: "sluice.scheduler"), onStart: @escaping @Sendable () -> Void = {}
    ) {
        self.runner = runner
        self.options = options
        self.clock = clock
        self.logger = logger
        self.onStart = onStart
    }

    // MARK: Service

    public func run() async throws {
        let orgs = options.orgs.joined(separator: ", ")
        logger.info("scheduler started for org(s) \(orgs)")
        onStart()
        do {
            try await cancelWhenGracefulShutdown {
                try await self.loop()
            }
        } catch is CancellationError {
        }
        logger.info("scheduler stopped: no more runs are created")
    }

    private func loop() async throws {
        await runner.launcher.onRunFinished { [weak self] in await self?.nudge() }
        while !Task.isCancelled {
            // A look runs to its end even when shutdown begins during it, so that a run it
            // created is also handed to the launcher.
            let wake = await Task { await self.look() }.value
            await pause(until: wake)
        }
        throw CancellationError()
    }

    /// Sleeps on the scheduler's clock until `wake`, or until a run ends, or the task is
    /// cancelled.
    private func pause(until wake: Date) async {
        if nudged { return }
        let task = Task { [clock] in try await clock.sleep(until: wake) }
        sleeper = task
        await withTaskCancellationHandler {
            _ = try? await task.value
        } onCancel: {
            task.cancel()
        }
        sleeper = nil
    }

    /// Cuts the current sleep short: a run ended, so a run waiting for `max_active_runs` may
    /// be created now.
    func nudge() {
        nudged = true
        sleeper?.cancel()
    }

    /// One look at the schedules: runs the watchdog when due, creates and launches the runs
    /// due now. Returns when to look next: the earliest next fire time, or the poll interval.
    @discardableResult
    func look() async -> Date {
        nudged = false
        let now = clock.now()
        await watchdog()
        _ = await createDueRuns(at: now)
        if backlog { return now }
        var wake = now.addingTimeInterval(options.poll.timeInterval)
        for pipeline in await scheduled() {
            if let next = pipeline.cron.nextFireTime(after: now), next < wake { wake = next }
        }
        return wake
    }

    // MARK: Creating runs

    /// Creates (and launches) the runs due at `now` for every scheduled pipeline and org;
    /// returns those created here.
    @discardableResult
    public func createDueRuns(at now: Date) async -> [Created] {
        backlog = false
        var created: [Created] = []
        for pipeline in await scheduled() {
            for org in options.orgs {
                created += await createDueRuns(pipeline, org: org, now: now)
            }
        }
        return created
    }

    private func createDueRuns(_ pipeline: ScheduledPipeline, org: String, now: Date) async -> [Created] {
        let id = pipeline.id
        let key = Slot(pipeline: id, org: org)
        // Fire times from `windowStart` on are due: back to `catchup`, else only the latest.
        let windowStart: Date
        if let catchup = pipeline.schedule.catchup {
            windowStart = now.addingTimeInterval(-catchup.timeInterval)
        } else {
            guard let latest = pipeline.cron.previousFireTime(atOrBefore: now) else { return [] }
            windowStart = latest
        }
        // Exclusive: fire times after this are due.
        var after = windowStart.addingTimeInterval(-0.001)
        // The last fire time handled, or just before the one that has been waiting.
        if let handled = handledThrough[key] ?? deferred[key].map({ $0.addingTimeInterval(-0.001) }) {
            if handled >= windowStart {
                after = handled
            } else {
                skipped(pipeline, key, between: handled, and: windowStart)
            }
        }
        var created: [Created] = []
        var fireTimes = pipeline.cron.fireTimes(from: after.addingTimeInterval(0.001), to: now.addingTimeInterval(0.001))
        var count = 0
        let maxActive = max(1, pipeline.schedule.maxActiveRuns)
        while let fire = fireTimes.next() {
            guard count < options.maxRunsPerLook else {
                backlog = true
                break
            }
            count += 1
            // Params are checked when the run executes: a run whose params don't check fails,
            // and the run history shows it.
            let request = RunStarter.Request(
                pipeline: pipeline.entry, org: org, trigger: .schedule,
                logicalDate: ScheduledRun.logicalDate(of: fire, in: pipeline.cron.timeZone).description, paramsCheck: .whenExecuting,
                env: runner.configuration.environment, triggerKey: ScheduledRun.triggerKey(fire))
            do {
                let started = try await runner.starter.start(request)
                let run = started.run
                handledThrough[key] = fire
                deferred[key] = nil
                logger.info(
                    "scheduled run created",
                    metadata: [
                        "run_id": "\(run.id)", "pipeline": "\(id)", "org": "\(org)",
                        "fire_time": "\(ScheduledRun.instantText(fire))",
                    ])
                created.append(Created(run: run, fireTime: fire))
                await runner.launch(started)
            } catch RunRefusal.duplicate {
                // Created before: by another scheduler, an earlier start of this one, or a backfill.
                handledThrough[key] = fire
                deferred[key] = nil
            } catch RunRefusal.limited(let limit) {
                if deferred[key] != fire {
                    deferred[key] = fire
                    logger.info(
                        "run of \(id) for org \(org) at \(ScheduledRun.instantText(fire)) waits: \(limit.active) active, max_active_runs \(maxActive)"
                    )
                    runner.metrics.scheduledRunDeferred()
                }
                return created
            } catch {
                logger.error(
                    "could not create the run of \(id) for org \(org) at \(ScheduledRun.instantText(fire)): \(SecretRedactor.shared.redact(String(describing: error))); trying again at the next look"
                )
                break
            }
        }
        return created
    }

    /// Fire times after `handled` and before `windowStart` were never created (they waited for
    /// `max_active_runs`, or the process was stopped or suspended, past `catchup`): they are
    /// skipped for good, and said so.
    private func skipped(_ pipeline: ScheduledPipeline, _ key: Slot, between handled: Date, and windowStart: Date) {
        handledThrough[key] = nil
        if let waiting = deferred[key], waiting < windowStart { deferred[key] = nil }
        // Counted, not collected: a minutely schedule left for months misses many.
        let limit = 100_000
        var first: Date?, last: Date?, missed = 0
        for fire in pipeline.cron.fireTimes(from: handled.addingTimeInterval(0.001), to: windowStart).prefix(limit) {
            if first == nil { first = fire }
            last = fire
            missed += 1
        }
        guard let first, let last else { return }
        runner.metrics.scheduledRunsSkipped(missed)
        let count = missed == limit ? "at least \(limit) fire times" : missed == 1 ? "1 fire time" : "\(missed) fire times"
        let when =
            missed == 1
            ? "at \(ScheduledRun.instantText(first))"
            : "from \(ScheduledRun.instantText(first)) to \(ScheduledRun.instantText(last))"
        let why =
            pipeline.schedule.catchup.map { "older than catchup \(DurationText.format($0))" }
            ?? "without catchup only the latest fire time is due"
        logger.warning(
            "\(count) of \(key.pipeline) for org \(key.org) skipped, \(when): \(why)",
            metadata: ["pipeline": "\(key.pipeline)", "org": "\(key.org)"])
    }

    // MARK: Pipelines

    /// A pipeline with a schedule, as the scheduler goes by it.
    struct ScheduledPipeline: Sendable {
        var id: String
        var entry: LintedPipeline
        var plan: PipelinePlan
        var schedule: Schedule
        var cron: CronSchedule
    }

    /// The pipelines with a schedule: each by its plan as the file is now, or by its last
    /// good plan when the file stopped linting.
    private func scheduled() async -> [ScheduledPipeline] {
        var entries = await runner.catalog.all()
        if let wanted = options.pipelines { entries = entries.filter { wanted.contains($0.id) } }
        let present = Set(entries.map(\.id))
        for id in lastGood.keys where !present.contains(id) {
            lastGood[id] = nil
            reported[id] = nil
            handledThrough = handledThrough.filter { $0.key.pipeline != id }
            deferred = deferred.filter { $0.key.pipeline != id }
            logger.notice("pipelines/\(id).yml is gone: no more runs of \(id) are scheduled")
        }
        var result: [ScheduledPipeline] = []
        for entry in entries {
            guard let (goodEntry, plan) = usable(entry), let schedule = plan.definition.schedule, let expression = schedule.cron,
                let zone = TimeZone(identifier: schedule.timezone)
            else { continue }
            result.append(
                ScheduledPipeline(
                    id: entry.id, entry: goodEntry, plan: plan, schedule: schedule,
                    cron: CronSchedule(expression, timeZone: zone)))
        }
        return result
    }

    /// The entry and plan to schedule by: the file's, when it lints; else the last good one,
    /// with the reason logged once per change of the file's diagnostics.
    private func usable(_ entry: LintedPipeline) -> (LintedPipeline, PipelinePlan)? {
        let id = entry.id
        guard let plan = entry.plan else {
            let errors = entry.diagnostics.filter { $0.severity == .error }
            let summary = "\(errors.count) error\(errors.count == 1 ? "" : "s"); the first: \(errors.first?.description ?? "?")"
            if let good = lastGood[id] {
                report(id, "\(entry.file) no longer lints (\(summary)): scheduling its last good version until it is fixed")
                return (good.entry, good.plan)
            }
            report(id, "\(entry.file) does not lint (\(summary)): it is not scheduled until it is fixed")
            return nil
        }
        if plan.definition.schedule?.cron != nil, runner.keys == nil, runner.services.needsKeys(plan) {
            report(
                id,
                "\(entry.file) decrypts credentials and this scheduler has no keys (set SLUICE_KEYRING or the passphrase variables): its runs are not created"
            )
            return nil
        }
        if reported.removeValue(forKey: id) != nil, lastGood[id] != nil {
            logger.notice("\(entry.file) lints again: scheduling it as it is now", metadata: ["pipeline": "\(id)"])
        }
        lastGood[id] = (entry, plan)
        return (entry, plan)
    }

    private func report(_ id: String, _ message: String) {
        guard reported[id] != message else { return }
        reported[id] = message
        logger.error("\(message)", metadata: ["pipeline": "\(id)"])
    }

    // MARK: Watchdog

    /// Marks runs whose process stopped heartbeating as abandoned, at most once per half
    /// lease (wall clock).
    private func watchdog() async {
        let now = Date()
        let lease = options.lease ?? runner.services.lease
        let interval = lease.timeInterval / 2
        if let lastWatchdog, now.timeIntervalSince(lastWatchdog) < interval { return }
        lastWatchdog = now
        do {
            try await runner.recoverDeadRuns(lease: lease, logger: logger, now: now)
        } catch {
            logger.error("the watchdog could not look for abandoned runs: \(SecretRedactor.shared.redact("\(error)"))")
        }
    }
}

/// How a scheduled run is named: its trigger key and logical date, from its fire time.
public enum ScheduledRun {
    /// `schedule:` and the fire time in UTC, to the second: unique per pipeline and org.
    public static func triggerKey(_ fireTime: Date) -> String {
        "schedule:" + instantText(fireTime)
    }

    /// The fire time as `2026-11-22T02:15:00Z`.
    public static func instantText(_ instant: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: instant)
    }

    /// The calendar date of the fire time in the schedule's time zone: a run at 02:15 in
    /// Europe/Berlin on 22 November has logical date 2026-11-22.
    public static func logicalDate(of fireTime: Date, in timeZone: TimeZone) -> CalendarDate {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: fireTime)
        return CalendarDate(year: parts.year ?? 1970, month: parts.month ?? 1, day: parts.day ?? 1)
    }
}
