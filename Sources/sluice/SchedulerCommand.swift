import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceRuntime
import SluiceServer
import SluiceStorage
import UnixSignals

extension Sluice {
    struct SchedulerCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scheduler",
            abstract: "Create and execute runs at the pipelines' cron times, for each configured org.",
            discussion: """
                Schedules every pipeline of the project that has a schedule (or the one PATH \
                names), for the orgs in sluice.yml (orgs: [...]; SLUICE_ORGS overrides; default: \
                default) or --org. A scheduled run's key is its fire time, so schedulers running \
                at once never create the same run; missed fire times are caught up as far back \
                as the schedule's catchup (without one, only the latest is run). Edited pipeline files are linted again; \
                one that stops linting keeps its last good version (the reason is logged). \
                Runs whose process died are marked abandoned. SIGTERM or Ctrl-C stops creating \
                runs, gives the runs executing --shutdown-grace to finish, cancels the rest \
                (nothing of theirs is published) and exits. See docs/scheduling.md.
                """)

        @Argument(help: "The project folder, its pipelines/ folder, or one pipeline file (default: the project found from here).")
        var path: String?

        @Option(name: .customLong("org"), help: "An org to schedule for (repeatable; default: sluice.yml's orgs).")
        var orgs: [String] = []

        @Option(help: "How often to look at files, max_active_runs and dead runs between fire times.")
        var poll = "5s"

        @Option(help: "On SIGTERM, how long executing runs may go on before they are cancelled.")
        var shutdownGrace = "30s"

        @Option(help: "Keyring file, for pipelines that decrypt credentials (default: SLUICE_KEYRING, else .sluice/keyring.json).")
        var keyring: String?

        @Flag(help: "Look once: create the runs due now (with catch-up), wait for them, print them and exit (1 if one failed).")
        var once = false

        @OptionGroup var execution: ExecutionOptions

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            try validateOrgs(orgs)
            _ = try parsePoll(poll)
            _ = try parseDuration(shutdownGrace, "--shutdown-grace", allowZero: true)
        }

        func run() async throws {
            let target = try SchedulerTarget(path: path, project: project)
            bootstrapLogging(defaultLevel: .info)
            let logger = Logger(label: "sluice.scheduler")
            var configuration = ServerConfiguration.command(keyring: keyring)
            configuration.shutdownGrace = try parseDuration(shutdownGrace, "--shutdown-grace", allowZero: true)
            execution.apply(to: &configuration)
            let runner: Runner
            let options: Scheduler.Options
            let services = try await openProject(
                "scheduler", root: target.root, environment: configuration.environment,
                runCacheBytes: configuration.runCacheBytesPerRun)
            do {
                options = schedulerOptions(settings: services.settings, orgs: orgs, pipelines: target.pipelines, poll: try parsePoll(poll))
                runner = try Runner(services: services, configuration: configuration, logger: logger)
            } catch {
                writeError("sluice scheduler: \(error)")
                throw ExitCode(1)
            }
            let scheduler = Scheduler(runner: runner, options: options, logger: logger) {
                // Unbuffered, so a script waiting for this line sees it at once.
                FileHandle.standardOutput.write(Data("sluice scheduler: scheduling for org(s) \(options.orgs.joined(separator: ", "))\n".utf8))
            }
            if once {
                // Due runs that wait for max_active_runs are created as the earlier ones end.
                let now = Date()
                var created: [Scheduler.Created] = []
                while true {
                    let batch = await scheduler.createDueRuns(at: now)
                    created += batch
                    // Runs left for workers end when a worker has executed them: looking once is all.
                    if services.runExecution == .workers { break }
                    if batch.isEmpty, await !scheduler.backlog { break }
                    await runner.waitForRuns()
                }
                var failed = false
                let waiting = await scheduler.waiting
                if created.isEmpty, waiting.isEmpty { print("No runs were due.") }
                for item in created {
                    let run = try await runner.store.run(item.run.id) ?? item.run
                    failed = failed || (run.state != .succeeded && !run.forWorkers)
                    print("\(run.id)  \(run.pipeline)  org \(run.org)  \(ScheduledRun.instantText(item.fireTime))  \(run.state.rawValue)")
                }
                // Runs active elsewhere (another scheduler, the API, `sluice run`) hold these back;
                // a later look creates them while they are within catchup.
                for item in waiting {
                    print(
                        "-  \(item.pipeline)  org \(item.org)  \(ScheduledRun.instantText(item.fireTime))  not created: max_active_runs are active elsewhere"
                    )
                }
                if failed { throw ExitCode(1) }
                return
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: [runner.launcherService, scheduler],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            FileHandle.standardOutput.write(Data("sluice scheduler: stopped\n".utf8))
        }
    }
}

/// What `sluice scheduler PATH` schedules: a project, or one pipeline file in it.
struct SchedulerTarget {
    var root: URL
    var pipelines: Set<String>?

    init(path: String?, project: ProjectOptions) throws {
        guard let path else {
            root = project.root
            return
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let url = URL(fileURLWithPath: path, relativeTo: cwd).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ValidationError("no file or folder '\(path)'")
        }
        if isDirectory.boolValue {
            root = url.lastPathComponent == "pipelines" ? url.deletingLastPathComponent() : url
        } else {
            guard url.pathExtension == "yml", url.deletingLastPathComponent().lastPathComponent == "pipelines" else {
                throw ValidationError("'\(path)' is not a pipeline file (pipelines/<id>.yml) or a folder")
            }
            root = url.deletingLastPathComponent().deletingLastPathComponent()
            pipelines = [url.deletingPathExtension().lastPathComponent]
        }
    }
}

/// The scheduler's options: the orgs from `--org`, else the project's settings.
func schedulerOptions(settings: ProjectSettings, orgs: [String], pipelines: Set<String>?, poll: Duration) -> Scheduler.Options {
    let configured = orgs.isEmpty ? settings.orgs : orgs
    var options = Scheduler.Options(orgs: configured, pipelines: pipelines)
    options.poll = poll
    return options
}

/// `--poll` of the scheduler (in `sluice scheduler` and `sluice serve --scheduler`).
func parsePoll(_ text: String) throws -> Duration {
    let poll = try parseDuration(text, "--poll")
    guard poll >= .milliseconds(100) else { throw ValidationError("--poll must be at least 100ms") }
    return poll
}

/// A duration option; `allowZero` also takes `0s` (a shutdown grace of none).
func parseDuration(_ text: String, _ option: String, allowZero: Bool = false) throws -> Duration {
    do {
        return try DurationText.parse(text, allowZero: allowZero)
    } catch {
        throw ValidationError("\(option) takes a duration like 5s, 2m or 1h: \(error)")
    }
}
