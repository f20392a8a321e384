import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceSQLite
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

/// The scheduler over a real project and run store, on a clock the tests move by hand.
struct SchedulerTests {
    /// A small pipeline every quarter hour, with the schedule given.
    static func project(schedule: String, extra: [String: String] = [:]) throws -> URL {
        try exampleProject(
            extra: [
                "schemas/ticks_raw.json": #"[{"name": "tick_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "INT64"}]"#,
                "data/ticks.csv": "tick_id,amount\nt1,1\nt2,2\nt3,3\n",
                "pipelines/ticks.yml": """
                pipeline: ticks
                schedule: \(schedule)
                defaults: { timeout: 5m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/ticks.csv }, table: ticks_raw, schema: schemas/ticks_raw.json } }
                  - { id: merge, uses: merge_dedupe, with: { from: ticks_raw, into: ticks, key: [tick_id], latest_by: amount } }
                """,
            ].merging(extra) { $1 })
    }

    static func runner(_ project: URL, logger: Logger = LiveServer.quiet) async throws -> Runner {
        try Runner(services: try await Runtime.open(projectRoot: project), configuration: ServerConfiguration(), logger: logger)
    }

    static func scheduler(
        _ runner: Runner, orgs: [String] = ["acme"], clock: ManualSchedulerClock,
        logger: Logger = LiveServer.quiet
    ) -> Scheduler {
        Scheduler(runner: runner, options: Scheduler.Options(orgs: orgs, pipelines: ["ticks"]), clock: clock, logger: logger)
    }

    static func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text)!
    }

    /// A run of the pipeline for acme that is running (in another process, say), heartbeating.
    static func runningElsewhere(_ runner: Runner, heartbeat: Date = Date()) async throws -> RunRecord {
        let busy = RunRecord(pipeline: "ticks", org: "acme", logicalDate: "2026-03-04", trigger: .api)
        _ = try await runner.store.createRun(busy, steps: [])
        try await runner.store.recordRun(busy.id, state: .running, reason: "started", at: heartbeat)
        try await runner.store.heartbeat(busy.id, at: heartbeat)
        return busy
    }

    /// The version of `ticks` as its files are now.
    static func version(_ runner: Runner, _ project: URL) throws -> PipelineVersion {
        let (plan, _) = runner.services.plan(file: project.appendingPathComponent("pipelines/ticks.yml").path)
        return PipelineVersion.of(try #require(plan), file: "pipelines/ticks.yml", projectRoot: project, schemas: SchemaCatalog(projectRoot: project))
    }

    static func scheduledRuns(_ runner: Runner, org: String? = nil) async throws -> [RunRecord] {
        try await runner.store.runs(pipeline: "ticks", org: org, limit: 1000).sorted { $0.triggerKey ?? "" < $1.triggerKey ?? "" }
    }

    @Test func catchUpCreatesTheMissedFireTimesOldestFirstWithinMaxActiveRuns() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, catchup: 1h, max_active_runs: 1 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let clock = ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z"))
        let scheduler = Self.scheduler(runner, clock: clock)

        // Due: 09:15, 09:30, 09:45, 10:00 (an hour back from 10:07). One at a time.
        var fireTimes: [Date] = []
        for _ in 0..<10 {
            let created = await scheduler.createDueRuns(at: clock.now())
            #expect(created.count <= 1, "max_active_runs 1 lets one run be active at a time")
            guard let first = created.first else { break }
            fireTimes.append(first.fireTime)
            await runner.waitForRuns()
        }
        #expect(fireTimes == ["09:15", "09:30", "09:45", "10:00"].map { Self.date("2026-03-04T\($0):00Z") })
        let runs = try await Self.scheduledRuns(runner)
        #expect(runs.map(\.triggerKey) == ["09:15", "09:30", "09:45", "10:00"].map { "schedule:2026-03-04T\($0):00Z" })
        #expect(runs.allSatisfy { $0.state == .succeeded && $0.trigger == .schedule && $0.logicalDate == "2026-03-04" && $0.org == "acme" })
        // Each records the version of the pipeline it ran, as every front end's runs do.
        let version = try Self.version(runner, project)
        #expect(version.files.keys.sorted() == ["pipelines/ticks.yml", "schemas/ticks_raw.json"])
        #expect(runs.allSatisfy { $0.version == version && $0.plan?.contains(#""id":"merge""#) == true })

        // Nothing more is due until 10:15.
        #expect(await scheduler.createDueRuns(at: Self.date("2026-03-04T10:14:59Z")).isEmpty)
        let next = await scheduler.createDueRuns(at: Self.date("2026-03-04T10:15:00Z"))
        #expect(next.map(\.fireTime) == [Self.date("2026-03-04T10:15:00Z")])
        await runner.waitForRuns()
    }

    @Test func withoutCatchUpOnlyTheLatestFireTimeIsDueAndOlderOnesAreSkippedAndSaidSo() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, max_active_runs: 5 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let clock = ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z"))
        let logs = LogCapture()
        let scheduler = Self.scheduler(runner, clock: clock, logger: logs.logger)
        // Started just after 10:00 (a restart, say): 10:00 is still due, 09:45 and before are not.
        #expect(await scheduler.createDueRuns(at: clock.now()).map(\.fireTime) == [Self.date("2026-03-04T10:00:00Z")])
        #expect(await scheduler.createDueRuns(at: Self.date("2026-03-04T10:14:59Z")).isEmpty)
        // No look between 10:07 and 10:31 (the process was suspended): 10:15 is skipped, 10:30 is due.
        let created = await scheduler.createDueRuns(at: Self.date("2026-03-04T10:31:00Z"))
        #expect(created.map(\.fireTime) == [Self.date("2026-03-04T10:30:00Z")])
        await runner.waitForRuns()
        #expect(try await Self.scheduledRuns(runner).map(\.triggerKey) == ["10:00", "10:30"].map { "schedule:2026-03-04T\($0):00Z" })
        #expect(
            logs.all.contains {
                $0.hasPrefix(
                    "warning 1 fire time of ticks for org acme skipped, at 2026-03-04T10:15:00Z: without catchup only the latest fire time is due")
            },
            "\(logs.text)")
        #expect(runner.metrics.exposition().text.contains("sluice_scheduled_runs_skipped_total 1"))
    }

    @Test func runsThatWaitedPastTheCatchUpWindowAreSkippedNotCreatedLate() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, catchup: 30m, max_active_runs: 1 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let busy = try await Self.runningElsewhere(runner)
        let logs = LogCapture()
        let scheduler = Self.scheduler(runner, clock: ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z")), logger: logs.logger)
        // 09:45 and 10:00 are due; 09:45 waits for the run elsewhere.
        #expect(await scheduler.createDueRuns(at: Self.date("2026-03-04T10:07:00Z")).isEmpty)
        try await runner.store.recordRun(busy.id, state: .succeeded, reason: "done", at: Date())
        // The next look is at 10:50 (the process was suspended): the window reaches back to 10:20,
        // so 10:30 and 10:45 are created, one at a time; 09:45 to 10:15 fell out of it.
        var fireTimes: [Date] = []
        for _ in 0..<5 {
            let created = await scheduler.createDueRuns(at: Self.date("2026-03-04T10:50:00Z"))
            fireTimes += created.map(\.fireTime)
            await runner.waitForRuns()
        }
        #expect(fireTimes == [Self.date("2026-03-04T10:30:00Z"), Self.date("2026-03-04T10:45:00Z")])
        #expect(
            logs.all.filter { $0.contains("skipped") } == [
                "warning 3 fire times of ticks for org acme skipped, from 2026-03-04T09:45:00Z to 2026-03-04T10:15:00Z: older than catchup 30m org=acme pipeline=ticks"
            ], "\(logs.text)")
        let metrics = runner.metrics.exposition().text
        #expect(metrics.contains("sluice_scheduled_runs_skipped_total 3"))
        #expect(metrics.contains("sluice_scheduled_runs_deferred_total 2"), "09:45 waited for the run elsewhere, 10:45 for 10:30")
    }

    @Test func aLongCatchUpIsWorkedThroughAFewFireTimesPerLook() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, catchup: 1h, max_active_runs: 10 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        var options = Scheduler.Options(orgs: ["acme"], pipelines: ["ticks"])
        options.maxRunsPerLook = 3
        let now = Self.date("2026-03-04T10:07:00Z")
        let scheduler = Scheduler(runner: runner, options: options, clock: ManualSchedulerClock(now), logger: LiveServer.quiet)
        #expect(await scheduler.createDueRuns(at: now).count == 3)
        #expect(await scheduler.backlog)
        #expect(await scheduler.createDueRuns(at: now).map(\.fireTime) == [Self.date("2026-03-04T10:00:00Z")])
        #expect(await !scheduler.backlog)
        await runner.waitForRuns()
    }

    @Test func twoSchedulersAtOnceCreateEveryRunExactlyOnce() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, catchup: 1h, max_active_runs: 10 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        // Two processes' worth: each its own run store connection, pipeline catalog and launcher.
        let first = try await Self.runner(project), second = try await Self.runner(project)
        let clock = ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z"))
        let one = Self.scheduler(first, orgs: ["acme", "globex"], clock: clock)
        let other = Self.scheduler(second, orgs: ["acme", "globex"], clock: clock)
        async let a = one.createDueRuns(at: clock.now())
        async let b = other.createDueRuns(at: clock.now())
        let (fromOne, fromOther) = await (a, b)
        await first.waitForRuns()
        await second.waitForRuns()

        let created = (fromOne + fromOther).map(\.run.id)
        #expect(created.count == 8, "4 fire times × 2 orgs")
        #expect(Set(created).count == created.count)
        let runs = try await Self.scheduledRuns(first)
        #expect(runs.count == 8)
        for org in ["acme", "globex"] {
            #expect(
                runs.filter { $0.org == org }.map(\.triggerKey)
                    == ["09:15", "09:30", "09:45", "10:00"].map { "schedule:2026-03-04T\($0):00Z" })
        }
        #expect(runs.allSatisfy { $0.state == .succeeded }, "\(runs.map { "\($0.id) \($0.state) \($0.reason)" })")
        // A third look, by either, creates nothing.
        #expect(await one.createDueRuns(at: clock.now()).isEmpty)
        #expect(await Self.scheduler(second, orgs: ["acme", "globex"], clock: clock).createDueRuns(at: clock.now()).isEmpty)
    }

    @Test func maxActiveRunsCountsRunsStartedElsewhere() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC, catchup: 20m, max_active_runs: 1 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let busy = try await Self.runningElsewhere(runner)

        let clock = ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z"))
        let scheduler = Self.scheduler(runner, clock: clock)
        #expect(await scheduler.createDueRuns(at: clock.now()).isEmpty, "the 10:00 run waits while another is active")
        #expect(await scheduler.createDueRuns(at: Self.date("2026-03-04T10:07:30Z")).isEmpty)
        #expect(runner.metrics.exposition().text.contains("sluice_scheduled_runs_deferred_total 1"), "counted once per fire time")
        let waiting = await scheduler.waiting
        #expect(waiting.map { "\($0.pipeline) \($0.org)" } == ["ticks acme"])
        #expect(waiting.map(\.fireTime) == [Self.date("2026-03-04T10:00:00Z")])

        try await runner.store.recordRun(busy.id, state: .succeeded, reason: "done", at: Date())
        let created = await scheduler.createDueRuns(at: Self.date("2026-03-04T10:08:00Z"))
        #expect(created.map(\.fireTime) == [Self.date("2026-03-04T10:00:00Z")], "the waiting run is created once the other ended")
        #expect(await scheduler.waiting.isEmpty)
        await runner.waitForRuns()
    }

    @Test func aPipelineThatStopsLintingIsScheduledByItsLastGoodVersionAndSaysWhy() async throws {
        let project = try Self.project(schedule: #"{ cron: "*/15 * * * *", timezone: UTC }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let clock = ManualSchedulerClock(Self.date("2026-03-04T10:07:00Z"))
        let logs = LogCapture()
        let scheduler = Self.scheduler(runner, clock: clock, logger: logs.logger)
        #expect(await scheduler.createDueRuns(at: clock.now()).count == 1, "10:00, the latest fire time")
        await runner.waitForRuns()
        let goodVersion = try Self.version(runner, project)

        // The file is broken (an unknown processor); the catalog looks at files at most once a second.
        let file = project.appendingPathComponent("pipelines/ticks.yml")
        let good = try String(contentsOf: file, encoding: .utf8)
        try good.replacingOccurrences(of: "uses: merge_dedupe", with: "uses: merge_dedupee").write(to: file, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(1100))
        let created = await scheduler.createDueRuns(at: Self.date("2026-03-04T10:15:00Z"))
        #expect(created.count == 1, "the last good version is still scheduled")
        await runner.waitForRuns()
        let createdID = try #require(created.first).run.id
        let run = try #require(try await runner.store.run(createdID))
        #expect(run.state == .succeeded)
        #expect(try await runner.store.steps(of: run.id).map(\.processor).sorted() == ["ingest", "merge_dedupe"])
        #expect(run.version == goodVersion, "the version it ran is the last good one, not the broken file's")
        let why = logs.all.filter { $0.contains("no longer lints") }
        #expect(why.count == 1, "logged once per change: \(logs.text)")
        #expect(why.first?.hasPrefix("error pipelines/ticks.yml no longer lints (1 error; the first: pipelines/ticks.yml:6:") == true)
        #expect(why.first?.contains("unknown processor 'merge_dedupee'") == true)
        #expect(why.first?.contains("scheduling its last good version until it is fixed") == true)

        // A scheduler that never saw it lint does not schedule it.
        let fresh = Self.scheduler(try await Self.runner(project), clock: clock)
        #expect(await fresh.createDueRuns(at: Self.date("2026-03-04T10:30:00Z")).isEmpty)

        // Fixed: scheduled as it is, and said so.
        try good.write(to: file, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(await scheduler.createDueRuns(at: Self.date("2026-03-04T10:30:00Z")).count == 1)
        #expect(logs.all.contains { $0.hasPrefix("notice pipelines/ticks.yml lints again") })
        await runner.waitForRuns()
    }

    @Test func theWatchdogMarksARunWithoutAHeartbeatAbandoned() async throws {
        let project = try Self.project(schedule: #"{ cron: "0 0 1 1 *", timezone: UTC }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let dead = RunRecord(pipeline: "ticks", org: "acme", logicalDate: "2026-03-04", trigger: .schedule)
        _ = try await runner.store.createRun(dead, steps: [StepRunRecord(runID: dead.id, stepID: "load", processor: "ingest")])
        try await runner.store.recordRun(dead.id, state: .running, reason: "started", at: Date())
        try await runner.store.heartbeat(dead.id, at: Date().addingTimeInterval(-120))

        var options = Scheduler.Options(orgs: ["acme"], pipelines: ["ticks"])
        options.lease = .seconds(60)
        let clock = ManualSchedulerClock(Date())
        let scheduler = Scheduler(runner: runner, options: options, clock: clock, logger: LiveServer.quiet)
        let group = ServiceGroup(configuration: .init(services: [runner.launcherService, scheduler], logger: LiveServer.quiet))
        let task = Task { try await group.run() }
        var run: RunRecord?
        try await eventually(every: .milliseconds(50)) {
            run = try await runner.store.run(dead.id)
            return run?.state != .running
        }
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(run?.state == .failed)
        #expect(run?.reason.hasPrefix("abandoned: no heartbeat for 1m") == true, "\(run?.reason ?? "")")
        #expect(try await runner.store.steps(of: dead.id).first?.errorCode == "abandoned")
        #expect(runner.metrics.exposition().text.contains("sluice_runs_abandoned_total 1"))
    }

    @Test func backfillDaysAreTheScheduleTimeZoneDays() async throws {
        // 00:15 in Berlin is 23:15 UTC the evening before: 4 to 5 March in Berlin starts on 3 March in UTC.
        let project = try Self.project(schedule: #"{ cron: "15 0 * * *", timezone: Europe/Berlin }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let plan = try #require(runner.services.plan(file: project.appendingPathComponent("pipelines/ticks.yml").path).plan)
        let slots = try Backfill(runner: runner).slots(
            plan, from: CalendarDate(parsing: "2026-03-04")!, to: CalendarDate(parsing: "2026-03-05")!,
            orgs: ["acme"])
        #expect(slots.map { $0.triggerKey } == ["schedule:2026-03-03T23:15:00Z", "schedule:2026-03-04T23:15:00Z"])
        #expect(slots.map { $0.logicalDate.description } == ["2026-03-04", "2026-03-05"])
    }

    @Test func aBackfillWaitingForARunWhoseProcessDiedMarksItAbandonedAndGoesOn() async throws {
        let project = try Self.project(schedule: #"{ cron: "0 3 * * *", timezone: UTC, max_active_runs: 1 }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        // Left running by a process that was killed an hour ago (after this one started, so
        // recovery on start did not see it).
        let dead = try await Self.runningElsewhere(runner, heartbeat: Date().addingTimeInterval(-3600))

        let logs = LogCapture()
        let backfill = Backfill(runner: runner, logger: logs.logger)
        let plan = try #require(runner.services.plan(file: project.appendingPathComponent("pipelines/ticks.yml").path).plan)
        let slots = try backfill.slots(plan, from: CalendarDate(parsing: "2026-03-02")!, to: CalendarDate(parsing: "2026-03-02")!, orgs: ["acme"])
        // Bounded, so a backfill that waits for good fails the test instead of hanging it.
        let ran = try await withThrowingTaskGroup(of: [Backfill.Outcome].self) { group in
            group.addTask {
                let outcomes = Outcomes()
                try await backfill.run(pipeline: "ticks", slots: slots) { _, outcome in outcomes.append(outcome) }
                return outcomes.all
            }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return []
            }
            let first = try await group.next() ?? []
            group.cancelAll()
            return first
        }
        guard case .ran(let run)? = ran.first else {
            Issue.record("the backfill did not run its slot: \(ran)\n\(logs.text)")
            return
        }
        #expect(run.state == .succeeded)
        // A backfilled run records its version as every other run does.
        #expect(try await runner.store.run(run.id)?.version == Self.version(runner, project))
        #expect(try await runner.store.run(dead.id)?.state == .failed)
        #expect(try await runner.store.run(dead.id)?.reason.hasPrefix("abandoned") == true)
        #expect(logs.all.filter { $0.contains("the backfill waits for them") }.count == 1, "\(logs.text)")
        #expect(logs.all.contains { $0.hasPrefix("warning run found without a heartbeat: marked abandoned") && $0.contains("run_id=\(dead.id)") })
    }

    @Test func theServiceCreatesRunsAsTheClockReachesFireTimesInTheScheduleTimeZoneAndStopsGracefully() async throws {
        // 00:15 in Berlin (UTC+1 in March) is 23:15 UTC the day before: the fire times and the
        // logical dates both differ from what the same cron would give in UTC.
        let project = try Self.project(schedule: #"{ cron: "15 0 * * *", timezone: Europe/Berlin }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let runner = try await Self.runner(project)
        let clock = ManualSchedulerClock(Self.date("2026-03-04T23:10:00Z"))
        let scheduler = Self.scheduler(runner, clock: clock)
        let group = ServiceGroup(configuration: .init(services: [runner.launcherService, scheduler], logger: LiveServer.quiet))
        let task = Task { try await group.run() }

        func waitUntilAsleep() async throws {
            try await eventually { clock.sleeperCount > 0 }
            #expect(clock.sleeperCount == 1)
        }
        func runs(_ count: Int) async throws -> [RunRecord] {
            var runs: [RunRecord] = []
            try await eventually {
                runs = try await Self.scheduledRuns(runner)
                return runs.count >= count
            }
            return runs
        }
        // On start the latest fire time, 00:15 Berlin on 4 March, is due (no catchup).
        var created = try await runs(1)
        #expect(created.map(\.triggerKey) == ["schedule:2026-03-03T23:15:00Z"])
        #expect(created.map(\.logicalDate) == ["2026-03-04"])
        await runner.waitForRuns()
        try await waitUntilAsleep()
        #expect(try await Self.scheduledRuns(runner).count == 1, "nothing more before 23:15 UTC")

        clock.advance(to: Self.date("2026-03-04T23:15:00Z"))
        created = try await runs(2)
        #expect(created.map(\.triggerKey) == ["schedule:2026-03-03T23:15:00Z", "schedule:2026-03-04T23:15:00Z"])
        #expect(created.map(\.logicalDate) == ["2026-03-04", "2026-03-05"], "the Berlin day of the fire time")
        await group.triggerGracefulShutdown()
        try await task.value
        let ended = try await Self.scheduledRuns(runner)
        #expect(ended.allSatisfy { $0.state == .succeeded || $0.state == .cancelled }, "\(ended.map(\.state))")
    }
}

/// What a backfill reported, in order.
final class Outcomes: Sendable {
    private let list = Mutex<[Backfill.Outcome]>([])
    func append(_ outcome: Backfill.Outcome) { list.withLock { $0.append(outcome) } }
    var all: [Backfill.Outcome] { list.withLock { $0 } }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}
