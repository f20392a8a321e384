import ArgumentParser
import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceRuntime
import SluiceServer
import SluiceStorage

extension Sluice {
    struct BackfillCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backfill",
            abstract: "Create and execute the runs a pipeline's schedule would have created between two dates.",
            discussion: """
                For a scheduled pipeline: a run per fire time on the days --from to --to (both \
                included, in the schedule's time zone), keyed like the scheduler's runs, so a run \
                the scheduler created (or an earlier backfill) is not created again. Without a \
                schedule: one run per day. For each org given with --org, else sluice.yml's orgs. \
                Runs execute one after another, oldest first, within the schedule's \
                max_active_runs (when the project's runs execute in workers, they are only \
                created, pending, for sluice worker). Ctrl-C cancels the run executing (nothing of it is published) \
                and stops. Exit status 0 when every run created succeeded, 1 otherwise.
                """)

        @Argument(help: "A pipeline file, or a pipeline id found as pipelines/<id>.yml.")
        var pipeline: String

        @Option(help: "The first day, YYYY-MM-DD.")
        var from: String

        @Option(help: "The last day, YYYY-MM-DD (included).")
        var to: String

        @Option(name: .customLong("org"), help: "An org to backfill for (repeatable; default: sluice.yml's orgs).")
        var orgs: [String] = []

        @Option(help: "Keyring file, for pipelines that decrypt credentials (default: SLUICE_KEYRING, else .sluice/keyring.json).")
        var keyring: String?

        @Flag(help: "List the runs that would be created, create none.")
        var dryRun = false

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard CalendarDate(parsing: from) != nil else { throw ValidationError("--from takes a YYYY-MM-DD date, not '\(from)'") }
            guard CalendarDate(parsing: to) != nil else { throw ValidationError("--to takes a YYYY-MM-DD date, not '\(to)'") }
            try validateOrgs(orgs)
        }

        func run() async throws {
            let root = project.root
            let path = try resolvePipeline(pipeline, project: project)
            bootstrapLogging(defaultLevel: .warning)
            let configuration = ServerConfiguration.command(keyring: keyring)
            let runner: Runner
            let services = try await openProject(
                "backfill", root: root, environment: configuration.environment,
                runCacheBytes: configuration.runCacheBytesPerRun)
            let orgs = self.orgs.isEmpty ? services.settings.orgs : self.orgs
            do {
                runner = try Runner(services: services, configuration: configuration, logger: Logger(label: "sluice.backfill"))
            } catch {
                writeError("sluice backfill: \(error)")
                throw ExitCode(1)
            }
            let (planned, diagnostics) = runner.services.plan(file: path)
            guard let plan = planned, let id = plan.definition.id?.value else {
                writeError(LintOutputFormat.text.render(LintReport(diagnostics: diagnostics, filesChecked: 1)))
                writeError("sluice backfill: fix the errors above first; nothing was run")
                throw ExitCode(1)
            }
            let backfill = Backfill(runner: runner)
            let slots: [Backfill.Slot]
            do {
                slots = try backfill.slots(plan, from: CalendarDate(parsing: from)!, to: CalendarDate(parsing: to)!, orgs: orgs)
            } catch {
                writeError("sluice backfill: \(error)")
                throw ExitCode(2)
            }
            if slots.isEmpty {
                print("No runs: the schedule of \(id) does not fire from \(from) to \(to).")
                return
            }
            if dryRun {
                for slot in slots {
                    print("\(id)  org \(slot.org)  \(slot.logicalDate)  \(slot.fireTime.map(ScheduledRun.instantText) ?? "-")  \(slot.triggerKey)")
                }
                print("(dry run: \(slots.count) run(s) would be created where none exists yet)")
                return
            }
            let tally = Tally()
            // The handlers are in place before the task starts, so no signal falls between.
            let cancel = PendingCancel()
            let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { cancel.fire() }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            let task = Task {
                try await backfill.run(pipeline: id, slots: slots) { slot, outcome in
                    let when = slot.fireTime.map(ScheduledRun.instantText) ?? slot.logicalDate.description
                    switch outcome {
                    case .ran(let run):
                        await tally.add(run.state == .succeeded ? .succeeded : .failed)
                        print("\(run.id)  org \(slot.org)  \(when)  \(run.state.rawValue)\(run.state == .succeeded ? "" : ": \(run.reason)")")
                    case .existed(let run):
                        await tally.add(.existed)
                        print("\(run.id)  org \(slot.org)  \(when)  exists already (\(run.state.rawValue)); left as it is")
                    case .enqueued(let run):
                        await tally.add(.enqueued)
                        print("\(run.id)  org \(slot.org)  \(when)  pending: a sluice worker executes it")
                    }
                }
            }
            cancel.attach { task.cancel() }
            do {
                try await task.value
            } catch is CancellationError {
                writeError("sluice backfill: stopped; the runs not listed above were not created")
                throw ExitCode(1)
            } catch {
                writeError("sluice backfill: \(error)")
                throw ExitCode(1)
            }
            let counts = await tally.counts
            if let enqueued = counts[.enqueued] {
                print("\(enqueued) created for workers (sluice worker), \(counts[.existed, default: 0]) existed already")
                return
            }
            print(
                "\(counts[.succeeded, default: 0]) succeeded, \(counts[.failed, default: 0]) failed, \(counts[.existed, default: 0]) existed already")
            if counts[.failed, default: 0] > 0 {
                print("Resume a failed run from its failed steps with: sluice run --resume RUN_ID")
                throw ExitCode(1)
            }
        }
    }
}

/// How the runs of a backfill ended.
private actor Tally {
    enum Kind { case succeeded, failed, existed, enqueued }
    private(set) var counts: [Kind: Int] = [:]
    func add(_ kind: Kind) { counts[kind, default: 0] += 1 }
}
