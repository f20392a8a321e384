import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `sluice backfill`: the runs a pipeline's schedule would have created between two dates,
/// for each org, created and executed one after another, oldest first. A scheduled pipeline
/// gets a run per fire time in those days (in the schedule's time zone), keyed like the
/// scheduler's, so a backfill and a scheduler never both create the run for one fire time. A
/// pipeline without a schedule gets one run per day (`backfill:YYYY-MM-DD`). Runs that exist
/// already are reported and left as they are.
public struct Backfill: Sendable {
    /// One run to create: its org, logical date, fire time (scheduled pipelines) and key.
    public struct Slot: Sendable, Hashable {
        public var org: String
        public var logicalDate: CalendarDate
        public var fireTime: Date?
        public var triggerKey: String
    }

    /// What became of a slot.
    public enum Outcome: Sendable, Hashable {
        /// Created and executed here; the run as it ended.
        case ran(RunRecord)
        /// A run for the slot existed already (scheduled, or an earlier backfill).
        case existed(RunRecord)
        /// Created, pending, for a `sluice worker` to execute (the project's runs execute in
        /// workers).
        case enqueued(RunRecord)
    }

    /// The most runs one backfill creates; a longer range is refused, to be split.
    public static let maxSlots = 10_000

    let runner: Runner
    let logger: Logger

    public init(runner: Runner, logger: Logger = Logger(label: "sluice.backfill")) {
        self.runner = runner
        self.logger = logger
    }

    /// The slots of `pipeline` from `from` to `to` (both included) for `orgs`, oldest first,
    /// or why there are none.
    public func slots(_ plan: PipelinePlan, from: CalendarDate, to: CalendarDate, orgs: [String]) throws(BackfillError) -> [Slot] {
        guard from <= to else { throw BackfillError("--from \(from) is after --to \(to)") }
        var times: [(CalendarDate, Date?, String)] = []
        if let schedule = plan.definition.schedule, let expression = schedule.cron {
            guard let zone = TimeZone(identifier: schedule.timezone) else {
                throw BackfillError("the schedule's time zone \(shown(schedule.timezone)) is unknown")
            }
            let cron = CronSchedule(expression, timeZone: zone)
            let start = Self.midnight(of: from, in: zone)
            let end = Self.midnight(of: to.adding(days: 1), in: zone)
            for fire in cron.fireTimes(from: start, to: end) {
                times.append((ScheduledRun.logicalDate(of: fire, in: zone), fire, ScheduledRun.triggerKey(fire)))
                if times.count > Self.maxSlots { break }
            }
        } else {
            var day = from
            while day <= to, times.count <= Self.maxSlots {
                times.append((day, nil, "backfill:\(day)"))
                day = day.adding(days: 1)
            }
        }
        let total = times.count * orgs.count
        guard total <= Self.maxSlots else {
            throw BackfillError("\(from) to \(to) is more than \(Self.maxSlots) runs; backfill a shorter range at a time")
        }
        return times.flatMap { date, fire, key in orgs.map { Slot(org: $0, logicalDate: date, fireTime: fire, triggerKey: key) } }
    }

    /// Creates and executes the slots' runs one at a time, waiting while the schedule's
    /// `max_active_runs` are busy. `report` hears of each slot as it ends.
    public func run(pipeline id: String, slots: [Slot], report: @Sendable (Slot, Outcome) async -> Void) async throws {
        guard let entry = try? await runner.starter.pipeline(id), let plan = entry.plan else {
            throw BackfillError("pipeline \(shown(id)) is not in this project or does not lint")
        }
        let executor = runner.executor(for: entry, plan: plan)
        let env = runner.configuration.environment
        for slot in slots {
            try Task.checkCancellation()
            // One run at a time, also of a pipeline without a schedule; params are checked when
            // the run executes, as the scheduler's are. Runs left for workers are all created
            // at once (a schedule's max_active_runs still holds), for the workers to share.
            let forWorkers = runner.services.runExecution == .workers
            let request = RunStarter.Request(
                pipeline: entry, org: slot.org, trigger: .backfill, logicalDate: slot.logicalDate.description,
                paramsCheck: .whenExecuting, env: env, triggerKey: slot.triggerKey,
                activeLimitWithoutSchedule: forWorkers ? nil : 1)
            var warned = false
            var lastRecovery = Date.distantPast
            while true {
                let run: RunRecord
                do {
                    run = try await runner.starter.start(request).run
                } catch RunRefusal.duplicate(let existing) {
                    await report(slot, .existed(existing))
                    break
                } catch RunRefusal.limited(let limit) {
                    let now = Date()
                    if !warned {
                        warned = true
                        logger.warning(
                            "\(limit.active) run(s) of \(id) for org \(slot.org) are active elsewhere (max_active_runs \(limit.maximum)): the backfill waits for them"
                        )
                    }
                    // A run whose process died holds its place until it is found without a
                    // heartbeat, which no scheduler may be around to do.
                    let lease = runner.services.lease
                    if now.timeIntervalSince(lastRecovery) >= lease.timeInterval / 2 {
                        lastRecovery = now
                        try await runner.recoverDeadRuns(lease: lease, logger: logger, now: now)
                    }
                    try await Task.sleep(for: .seconds(1))
                    continue
                } catch RunRefusal.keysUnavailable {
                    throw BackfillError(
                        "pipeline \(shown(id)) decrypts credentials, and there are no keys (give --keyring, or set SLUICE_KEYRING or the passphrase variables)"
                    )
                } catch let refusal as RunRefusal {
                    throw BackfillError("\(refusal)")
                }
                if run.forWorkers {
                    await report(slot, .enqueued(run))
                    break
                }
                try await executor.execute(plan, run: run, env: env)
                await report(slot, .ran(try await runner.store.run(run.id) ?? run))
                break
            }
        }
    }

    static func midnight(of date: CalendarDate, in zone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(year: date.year, month: date.month, day: date.day)
        // A day that starts inside a DST gap starts at the first instant that exists.
        return calendar.date(from: components) ?? Date(timeIntervalSince1970: Double(date.daysSinceEpoch) * 86_400)
    }
}

public struct BackfillError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
