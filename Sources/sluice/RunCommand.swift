import ArgumentParser
import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceRuntime
import SluiceSecrets
import SluiceStorage
import Synchronization

extension Sluice {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a pipeline on the embedded SQLite warehouse.",
            discussion: """
                Lints the pipeline first and runs nothing if it has errors. Target tables change \
                only if every step succeeds, all in one transaction. Ctrl-C cancels the run; \
                nothing is published. Exit status 0 when the run succeeded, 1 otherwise. \
                The run executes in this process, also when the project's runs execute in workers; \
                with --enqueue it is only created, pending, for a sluice worker to claim.
                """)

        @Argument(help: "A pipeline file, or a pipeline id found as pipelines/<id>.yml.")
        var pipeline: String?

        @Option(help: "Run a failed run again from its failed steps, reusing what succeeded (same params and logical date).")
        var resume: String?

        @Flag(
            help: """
                With --resume: resume even though the pipeline file, a schema or a procedure it uses \
                changed since the run; the new definition runs, and steps whose part of the plan changed run again.
                """)
        var force = false

        @Option(name: .customLong("param"), help: "A param value, as name=value (repeatable).")
        var params: [String] = []

        @Option(help: "The org (tenant) the run belongs to.")
        var org: String = "default"

        @Option(help: "The day the run is for, YYYY-MM-DD (default: today, UTC).")
        var logicalDate: String?

        @Flag(help: "Check and plan the pipeline, run nothing.")
        var dryRun = false

        @Flag(help: "Create the run, pending, for a sluice worker to execute; print its id and exit.")
        var enqueue = false

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard (pipeline == nil) != (resume == nil) else {
                throw ValidationError("give a pipeline to run, or --resume RUN_ID, not both")
            }
            if enqueue, resume != nil || dryRun {
                throw ValidationError("--enqueue creates a new run; it does not go with \(resume != nil ? "--resume" : "--dry-run")")
            }
            if force, resume == nil {
                throw ValidationError("--force goes with --resume RUN_ID: it resumes a run whose pipeline changed since")
            }
            if resume != nil, !params.isEmpty || logicalDate != nil {
                throw ValidationError("--resume reuses the run's params and logical date; --param and --logical-date don't apply")
            }
            for param in params where !param.contains("=") {
                throw ValidationError("--param takes name=value, not '\(param)'")
            }
            if let logicalDate, CalendarDate(parsing: logicalDate) == nil {
                throw ValidationError("--logical-date takes a YYYY-MM-DD date, not '\(logicalDate)'")
            }
            guard Identifier.isValid(org) else { throw ValidationError("--org takes a name (letters, digits, _), not '\(org)'") }
        }

        func run() async throws {
            let root = project.root
            let processors = ProcessorEnvironment.standard
            // The stores are opened once the pipeline lints (a resume needs them to find it).
            var opened: ProjectServices?
            var previous: RunRecord?
            if let resume {
                let services = try await openProject("run", root: root, processors: processors)
                opened = services
                guard let record = try await services.runStore.run(resume) else {
                    writeError("sluice run: no run '\(resume)'")
                    throw ExitCode(1)
                }
                previous = record
            }
            let path = try resolvePipeline(pipeline ?? previous!.pipeline, project: project)
            let (planned, diagnostics) = processors.plan(file: path, projectRoot: root)
            let linted = LintedPipeline(id: planned?.definition.id?.value ?? path, file: path, plan: planned, diagnostics: diagnostics)
            let plan: PipelinePlan
            do {
                plan = try RunStarter.plan(of: linted)
            } catch {
                throw refused(error, pipeline: path)
            }
            if dryRun {
                print(PlanOutputFormat.text.render(plan), terminator: "")
                print("(dry run: nothing was run)")
                return
            }
            // On a terminal, a live view of the steps; elsewhere (CI, files) plain log lines.
            let interactive = isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1
            bootstrapLogging(defaultLevel: interactive ? .warning : .info)
            let services: ProjectServices
            if let opened { services = opened } else { services = try await openProject("run", root: root, processors: processors) }
            let store = services.runStore
            let starter = RunStarter(services: services)
            var options = ExecutorOptions()
            let printer = interactive ? ProgressPrinter(plan) : nil
            if let printer { options.observer = { printer.apply($0) } }

            // Ctrl-C or SIGTERM cancels the run; the executor records it and publishes nothing.
            // The handlers are in place before the run's task starts: a signal that came after
            // the run had begun but before they were would be ignored, and the run would go on
            // to publish.
            let note = CancellationNote()
            let cancel = PendingCancel()
            let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                let name = number == SIGINT ? "Ctrl-C (SIGINT)" : "SIGTERM"
                source.setEventHandler {
                    note.set("cancelled by \(name); nothing was published, resume it with sluice run --resume")
                    cancel.fire()
                }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            let task: Task<RunRecord, any Error>
            if let previous {
                // A pipeline that decrypts credentials needs the keys; refuse before anything runs.
                let keys: Keyring?
                do {
                    keys = try starter.keys(for: plan)
                } catch {
                    throw refused(error, pipeline: path)
                }
                // The version the resume records, and checks against the one the run recorded.
                let version = linted.currentVersion(projectRoot: root)
                if let version {
                    if let recorded = previous.version {
                        if recorded.hash != version.hash, force {
                            let changes = version.changes(since: recorded).map(\.description).joined(separator: ", ")
                            print(
                                "resuming run \(previous.id) with the new definition (--force): version \(recorded.short) → \(version.short): \(changes)"
                            )
                        }
                    } else {
                        print(
                            "note: run \(previous.id) was stored before runs recorded their pipeline's version, so what changed since can't be told; resuming with version \(version.short)"
                        )
                    }
                }
                let executor = services.executor(options: options, keys: keys)
                let force = force
                task = Task { try await executor.resume(plan, runID: previous.id, version: version, force: force, cancellation: note) }
            } else {
                var values: [String: String] = [:]
                for param in params {
                    let parts = param.split(separator: "=", maxSplits: 1)
                    values[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
                }
                let started: RunStarter.Started
                do {
                    started = try await starter.start(
                        RunStarter.Request(
                            pipeline: linted, org: org, trigger: .cli, logicalDate: logicalDate,
                            params: values, execution: enqueue ? .workers : .inProcess))
                } catch let refusal as RunRefusal {
                    throw refused(refusal, pipeline: plan.definition.id?.value ?? path)
                }
                if enqueue {
                    print("\(started.run.id)  \(started.run.pipeline)  org \(started.run.org)  pending: a sluice worker executes it")
                    return
                }
                let executor = services.executor(options: options, keys: started.keys)
                task = Task {
                    try await executor.execute(started.plan, run: started.run, env: started.env, cancellation: note)
                    return try await store.run(started.run.id) ?? started.run
                }
            }
            cancel.attach { task.cancel() }
            // Keep the elapsed times moving between events.
            let ticker = Task {
                while !Task.isCancelled, let printer {
                    try? await Task.sleep(for: .milliseconds(500))
                    printer.redraw()
                }
            }
            let record: RunRecord
            do {
                record = try await task.value
            } catch let changed as DefinitionChanged {
                ticker.cancel()
                writeError(
                    """
                    sluice run: run \(changed.runID) can't be resumed: its pipeline changed since it ran \
                    (version \(changed.recorded.short), now \(changed.current.short)):
                    \(changed.changes.map { "  \($0)" }.joined(separator: "\n"))
                    Its succeeded steps ran the old definition. To resume it with the new one: \
                    sluice run --resume \(changed.runID) --force; or start a new run. Nothing was run.
                    """)
                throw ExitCode(1)
            }
            ticker.cancel()
            printer?.redraw()
            if printer != nil { print("") }

            print(try await RunReport.render(record, store: store))
            if record.state == .succeeded {
                let warehouse = try await Runtime.warehouseLocation(projectRoot: root, org: record.org)
                print("\nResults are in \(relative(warehouse, to: root)); look with: sluice query \(record.org) \"SELECT * FROM <table> LIMIT 10\"")
            } else {
                print("\nTo run it again from the failed steps, reusing what succeeded: sluice run --resume \(record.id)")
                throw ExitCode(1)
            }
        }

        /// Says why no run was started; exit status 1.
        private func refused(_ refusal: RunRefusal, pipeline: String) -> ExitCode {
            switch refusal {
            case .pipelineInvalid(_, let diagnostics):
                writeError(LintOutputFormat.text.render(LintReport(diagnostics: diagnostics, filesChecked: 1)))
                writeError("sluice run: fix the errors above first; nothing was run")
            case .keysUnavailable(let reason):
                writeError("sluice run: the pipeline decrypts credentials, and the keys could not be loaded: \(reason)")
            case .invalidParam(let problem):
                writeError("sluice run: \(problem.message()); nothing was run")
            case .limited(let limit):
                // A pipeline with a schedule allows at most its max_active_runs at once, whoever starts them.
                let active = limit.active
                writeError(
                    """
                    sluice run: pipeline '\(pipeline)' has \(active) run\(active == 1 ? "" : "s") \
                    pending or running in org '\(org)', its schedule's max_active_runs; nothing was run. \
                    Try again when \(active == 1 ? "it ends" : "one ends") (sluice runs list shows them).
                    """)
            case .pipelineNotFound, .shuttingDown, .duplicate:
                writeError("sluice run: \(refusal); nothing was run")
            }
            return ExitCode(1)
        }

        private func relative(_ path: String, to root: URL) -> String {
            let base = root.standardizedFileURL.path + "/"
            return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
        }
    }
}

/// A pipeline argument as a path inside the project: a file, or an id under pipelines/.
func resolvePipeline(_ pipeline: String, project: ProjectOptions) throws -> String {
    let root = project.root
    var path = project.projectPath(pipeline)
    if !FileManager.default.fileExists(atPath: URL(fileURLWithPath: path, relativeTo: root).path), Identifier.isValid(pipeline) {
        path = "pipelines/\(pipeline).yml"
    }
    guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: path, relativeTo: root).path) else {
        writeError("sluice: no pipeline file '\(pipeline)' (looked for \(path))")
        throw ExitCode(1)
    }
    return path
}

/// A cancellation that may be asked for before there is anything to cancel: a signal that
/// arrives before the run's task exists cancels it as soon as it is attached.
final class PendingCancel: Sendable {
    private let state = Mutex<(fired: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    func fire() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            state.fired = true
            return state.action
        }
        action?()
    }

    func attach(_ action: @escaping @Sendable () -> Void) {
        let fired = state.withLock { state -> Bool in
            state.action = action
            return state.fired
        }
        if fired { action() }
    }
}
