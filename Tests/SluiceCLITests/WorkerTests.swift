import Foundation
import SluiceTestSupport
import Testing

/// `sluice worker` processes sharing a project's runs, end to end: the built binary, real
/// processes, real signals. Everything is read through the CLI (`sluice runs`, `sluice query`),
/// so the same tests run on another backend by giving the project its settings
/// (`WorkerProject.Backend`).
@Suite struct WorkerTests {
    /// A project whose pipeline ingests `rows` events, merges them and rolls them up: slow
    /// enough (about a second or more in a debug build) that a worker can be stopped in the
    /// middle of a step.
    struct WorkerProject {
        /// Where the project keeps its runs and tables: SQLite files under `.sluice/` here.
        /// Another backend adds its `sluice.yml` lines and the variables its commands need.
        struct Backend: Sendable {
            var name: String
            var settings: String = ""
            var environment: [String: String] = [:]

            static let sqlite = Backend(name: "sqlite")

            /// The backends these tests run on here: SQLite, and PostgreSQL (a database of the
            /// test's own) when the test server is there or required.
            enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
                case sqlite, postgres

                var testDescription: String { rawValue }

                static var all: [Kind] { PostgresTestDatabase.isAvailable ? [.sqlite, .postgres] : [.sqlite] }

                /// Gives `body` a backend of this kind, removed afterwards.
                func with(_ body: (Backend) async throws -> Void) async throws {
                    switch self {
                    case .sqlite: try await body(.sqlite)
                    case .postgres:
                        try await PostgresTestDatabase.with { database in
                            try await body(Backend(name: "postgres", settings: "database: \(database.url)\n"))
                        }
                    }
                }
            }
        }

        let root: URL
        let backend: Backend

        init(rows: Int, backend: Backend = .sqlite) throws {
            root = try temporaryFolder()
            self.backend = backend
            var files = eventsPipelineFiles(id: "events")
            files["sluice.yml"] = "orgs: [acme, globex]\n" + backend.settings
            try writeFiles(files, in: root)
            var text = "event_id,ts,day,org,amount\n"
            text.reserveCapacity(rows * 50)
            for index in 0..<rows {
                text += "e\(index),2026-03-0\(index % 7 + 1)T10:00:00Z,2026-03-0\(index % 7 + 1),org\(index % 13),\(index % 5 + 1)\n"
            }
            try FileManager.default.createDirectory(at: root.appendingPathComponent("data"), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: root.appendingPathComponent("data/events.csv"))
        }

        func remove() { try? FileManager.default.removeItem(at: root) }

        func sluice(_ arguments: String...) async throws -> CommandResult {
            try await run(sluiceBinary, arguments, in: root, environment: ProcessInfo.processInfo.environment.merging(backend.environment) { $1 })
        }

        /// Creates a run of `events` for workers; returns its id.
        func enqueue(org: String = "acme") async throws -> String {
            let result = try await sluice("run", "events", "--org", org, "--enqueue")
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let id = String(result.stdout.split(separator: " ").first ?? "")
            #expect(id.hasPrefix("r") && result.stdout.contains("pending: a sluice worker executes it"), "\(result.stdout)")
            return id
        }

        /// A worker with a short lease, polling often; its id is in `firstLine`.
        func startWorker(_ extra: [String] = [], lease: String = "2s", errors: URL? = nil, logLevel: String? = nil) async throws -> LongRunningCommand
        {
            var environment = backend.environment
            if let logLevel { environment["SLUICE_LOG_LEVEL"] = logLevel }
            return try await LongRunningCommand.start(
                ["worker", "--lease", lease, "--poll", "200ms"] + extra, in: root, errors: errors, environment: environment)
        }

        /// What `sluice runs show` prints for the run.
        func show(_ runID: String) async throws -> String {
            let shown = try await sluice("runs", "show", runID)
            if shown.status != 0 { Issue.record("sluice runs show \(runID) ended with \(shown.status): \(shown.stderr)") }
            return shown.stdout
        }

        /// The run's state, from its first line (`run ID: … for org …: STATE — reason`).
        func state(_ runID: String) async throws -> String {
            let first = try await show(runID).split(separator: "\n").first.map(String.init) ?? ""
            guard let colon = first.range(of: "logical date ") else { return "?" }
            let rest = first[colon.upperBound...]
            return rest.split(separator: ":", maxSplits: 1).dropFirst().first?.split(separator: " ").first.map(String.init) ?? "?"
        }

        /// Waits until every run is succeeded, failed or cancelled (for as long as `patience`:
        /// hundreds of runs on two cores that the rest of the suite shares take minutes).
        func waitUntilEnded(_ runIDs: [String], patience: Duration = TestTime.patience) async throws -> [String: String] {
            var states: [String: String] = [:]
            let ended = try await eventually(within: patience, every: .milliseconds(300)) {
                for id in runIDs where !["succeeded", "failed", "cancelled"].contains(states[id] ?? "") {
                    states[id] = try await state(id)
                }
                return states.count == runIDs.count && states.values.allSatisfy { ["succeeded", "failed", "cancelled"].contains($0) }
            }
            #expect(ended, "runs still active: \(states.filter { !["succeeded", "failed", "cancelled"].contains($0.value) })")
            return states
        }

        /// The org's target tables, without lineage: what one clean run leaves.
        func targets(org: String) async throws -> String {
            let events = try await sluice("query", org, "SELECT count(*), sum(amount), count(DISTINCT event_id) FROM events")
            let daily = try await sluice("query", org, "SELECT count(*), sum(total) FROM daily")
            return events.stdout + daily.stdout
        }
    }

    @Test(arguments: WorkerProject.Backend.Kind.all)
    func threeWorkersExecuteEveryEnqueuedRunExactlyOnce(_ kind: WorkerProject.Backend.Kind) async throws {
        try await kind.with { backend in try await threeWorkersExecuteEveryEnqueuedRunExactlyOnceOn(backend) }
    }

    func threeWorkersExecuteEveryEnqueuedRunExactlyOnceOn(_ backend: WorkerProject.Backend) async throws {
        let project = try WorkerProject(rows: 200, backend: backend)
        defer { project.remove() }
        let workers = try await withThrowingTaskGroup(of: LongRunningCommand.self) { group in
            for _ in 0..<3 { group.addTask { try await project.startWorker(["--concurrency", "2"]) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        defer { workers.forEach { $0.stop() } }
        let ids = workers.map {
            $0.firstLine.replacingOccurrences(of: "sluice worker: ", with: "").replacingOccurrences(of: " claiming runs\n", with: "")
        }
        #expect(Set(ids).count == 3, "\(ids)")

        // Enqueued four at a time, from both orgs, while the workers claim.
        var runs: [String] = []
        for batch in 0..<6 {
            runs += try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<4 { group.addTask { try await project.enqueue(org: (batch + index).isMultiple(of: 2) ? "acme" : "globex") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(Set(runs).count == 24)
        let states = try await project.waitUntilEnded(runs)
        #expect(states.values.filter { $0 == "succeeded" }.count == 24, "0 lost: \(states)")

        var executedBy: [String: Int] = [:]
        for run in runs {
            let shown = try await project.show(run)
            let started = shown.split(separator: "\n").filter { $0.contains("run → running: started by worker ") }
            #expect(started.count == 1, "executed once: \(shown)")
            #expect(!shown.contains("taken over") && !shown.contains("released by"), "\(shown)")
            #expect(shown.split(separator: "\n").filter { $0.contains("step load (attempt 1) → running") }.count == 1, "\(shown)")
            if let worker = ids.first(where: { id in started.first?.hasSuffix(id) == true }) { executedBy[worker, default: 0] += 1 }
        }
        #expect(executedBy.values.reduce(0, +) == 24, "every run names one of the workers: \(executedBy)")

        // Twelve runs of the same input in each org leave what one does.
        let acme = try await project.targets(org: "acme")
        #expect(acme.contains("200"), "\(acme)")
        #expect(try await project.targets(org: "globex") == acme)

        for worker in workers {
            let (status, rest) = try await worker.terminate()
            #expect(status == 0 && rest.contains("sluice worker: stopped"), "\(rest)")
        }
    }

    /// A worker killed in the middle of a step (at three points) loses its lease; another
    /// worker takes the run over, continues it from its staging and publishes it once: the
    /// targets equal those of one clean run.
    @Test(arguments: WorkerProject.Backend.Kind.all)
    func aKilledWorkersRunIsTakenOverAndCompleted(_ kind: WorkerProject.Backend.Kind) async throws {
        try await kind.with { backend in try await aKilledWorkersRunIsTakenOverAndCompletedOn(backend) }
    }

    func aKilledWorkersRunIsTakenOverAndCompletedOn(_ backend: WorkerProject.Backend) async throws {
        let project = try WorkerProject(rows: 150_000, backend: backend)
        defer { project.remove() }
        // The reference: one clean run in another org.
        let clean = try await project.sluice("run", "events", "--org", "globex")
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        let reference = try await project.targets(org: "globex")

        var outcomes: [String] = []
        for delay in [0.0, 0.4, 1.2] {
            let first = try await project.startWorker()
            defer { first.stop() }
            let run = try await project.enqueue()
            // Killed once the run's first step is under way, `delay` later.
            let underWay = try await eventually(every: .milliseconds(30)) {
                try await project.show(run).contains("step load (attempt 1) → running")
            }
            #expect(underWay)
            if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
            kill(first.process.processIdentifier, SIGKILL)
            try await waitForExit(of: first.process)

            let second = try await project.startWorker()
            defer { second.stop() }
            let states = try await project.waitUntilEnded([run])
            let shown = try await project.show(run)
            #expect(states[run] == "succeeded", "\(shown)")
            let takenOver = shown.contains("taken over by worker") && shown.contains("its lease expired at")
            let publishedBefore = shown.contains("were published by worker")
            outcomes.append("\(delay)s: \(takenOver ? "taken over" : publishedBefore ? "published before the kill" : "finished before the kill")")
            #expect(try await project.targets(org: "acme") == reference, "killed \(delay)s into the run: \(shown)")
            if takenOver {
                #expect(shown.contains("continued by worker"), "\(shown)")
                #expect(shown.split(separator: "\n").filter { $0.contains("run → succeeded") }.count == 1, "\(shown)")
            }
            _ = try await second.terminate()
        }
        #expect(outcomes.contains { $0.hasSuffix("taken over") }, "no kill landed mid-run: \(outcomes)")
    }

    /// SIGTERM: the worker stops claiming, gives its run the grace, then releases it with its
    /// staging; another worker continues it at once (long before the lease would expire).
    @Test(arguments: WorkerProject.Backend.Kind.all)
    func sigtermReleasesTheRunForAnotherWorkerToContinue(_ kind: WorkerProject.Backend.Kind) async throws {
        try await kind.with { backend in try await sigtermReleasesTheRunForAnotherWorkerToContinueOn(backend) }
    }

    func sigtermReleasesTheRunForAnotherWorkerToContinueOn(_ backend: WorkerProject.Backend) async throws {
        let project = try WorkerProject(rows: 300_000, backend: backend)
        defer { project.remove() }
        let clean = try await project.sluice("run", "events", "--org", "globex")
        #expect(clean.status == 0)
        let reference = try await project.targets(org: "globex")

        // A lease far longer than the test: only the release lets another worker in.
        let first = try await project.startWorker(["--grace", "0s"], lease: "10m")
        defer { first.stop() }
        let run = try await project.enqueue()
        #expect(try await eventually(every: .milliseconds(30)) { try await project.show(run).contains("step load (attempt 1) → running") })
        let (status, rest) = try await first.terminate()
        #expect(status == 0 && rest.contains("sluice worker: stopped"), "\(rest)")

        var shown = try await project.show(run)
        // 300,000 rows take seconds to load: the grace of 0 s ends the run mid-step.
        #expect(!shown.contains("run → succeeded"), "the run ended before SIGTERM: \(shown)")
        if !shown.contains("run → succeeded") {
            #expect(shown.contains("released by worker"), "\(shown)")
            #expect(try await project.state(run) == "running", "released, not failed or cancelled: \(shown)")
            #expect(try await project.sluice("query", "acme", "SELECT count(*) FROM events").status == 1, "nothing published")
            let second = try await project.startWorker(lease: "10m")
            defer { second.stop() }
            #expect(try await project.waitUntilEnded([run])[run] == "succeeded")
            shown = try await project.show(run)
            #expect(shown.contains("taken over by worker") && shown.contains("it released the run"), "\(shown)")
            _ = try await second.terminate()
        }
        #expect(try await project.targets(org: "acme") == reference, "\(shown)")
    }

    /// The team set-up on PostgreSQL: a server creating runs from API calls, two schedulers
    /// looking at once, three workers executing. Every run is executed exactly once, none is
    /// lost, and the schedulers together create each scheduled run once.
    @Test(.enabled(if: PostgresTestDatabase.isAvailable))
    func threeWorkersTwoSchedulersAndTwoHundredAPIRunsOnPostgreSQL() async throws {
        try await WorkerProject.Backend.Kind.postgres.with { backend in
            let project = try WorkerProject(rows: 20, backend: backend)
            defer { project.remove() }
            // A scheduled copy of the pipeline: three days missed, caught up by the schedulers.
            let scheduled = try String(contentsOf: project.root.appendingPathComponent("pipelines/events.yml"), encoding: .utf8)
                .replacingOccurrences(
                    of: "pipeline: events\n",
                    with: "pipeline: events_daily\nschedule: { cron: \"0 3 * * *\", timezone: UTC, catchup: 3d, max_active_runs: 10 }\n")
            try Data(scheduled.utf8).write(to: project.root.appendingPathComponent("pipelines/events_daily.yml"))

            let token = try await project.sluice("tokens", "create", "acme").stdout.trimmingCharacters(in: .newlines)
            let server = try await LongRunningCommand.start(
                ["serve", "--port", "0", "--max-active-runs-per-org", "1000"], in: project.root, environment: backend.environment)
            defer { server.stop() }
            let port = try #require(server.firstLine.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
            let workers = try await withThrowingTaskGroup(of: LongRunningCommand.self) { group in
                for _ in 0..<3 { group.addTask { try await project.startWorker(["--concurrency", "4"], lease: "5s") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            defer { workers.forEach { $0.stop() } }

            // Two schedulers at once, and 200 API calls, 20 at a time, meanwhile.
            async let schedulers = withThrowingTaskGroup(of: CommandResult.self) { group in
                for _ in 0..<2 { group.addTask { try await project.sluice("scheduler", "--once", "pipelines/events_daily.yml", "--org", "acme") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var apiRuns: [String] = []
            for _ in 0..<10 {
                apiRuns += try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            let (status, body) = try await httpCall(
                                port: port, "POST", "/v1/orgs/acme/pipelines/events/runs", token: token, body: "{}")
                            return status == 202 ? body["id"] as? String : nil
                        }
                    }
                    return try await group.reduce(into: []) { if let id = $1 { $0.append(id) } }
                }
            }
            #expect(apiRuns.count == 200 && Set(apiRuns).count == 200, "every call created a run of its own: \(apiRuns.count)")
            for result in try await schedulers { #expect(result.status == 0, "\(result.stdout)\(result.stderr)") }

            // The scheduled runs: one per fire time, whoever created it.
            let listed = try await project.sluice("runs", "list", "--pipeline", "events_daily", "--limit", "100")
            let scheduledRuns = listed.stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
            let days = listed.stdout.split(separator: "\n").dropFirst().compactMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.map(String.init)
            }
            #expect(scheduledRuns.count >= 3 && Set(days).count == days.count, "one run per fire time: \(listed.stdout)")

            let states = try await project.waitUntilEnded(apiRuns + scheduledRuns, patience: TestTime.never)
            #expect(
                states.values.filter { $0 == "succeeded" }.count == apiRuns.count + scheduledRuns.count,
                "0 lost: \(states.filter { $0.value != "succeeded" })")
            var starts = 0
            for run in apiRuns + scheduledRuns {
                let shown = try await project.show(run)
                let started = shown.split(separator: "\n").filter { $0.contains("run → running: started by worker ") }.count
                #expect(started == 1, "executed once: \(shown)")
                starts += started
            }
            #expect(starts == apiRuns.count + scheduledRuns.count, "0 duplicates")
            #expect(try await project.targets(org: "acme").contains("20"))
            for worker in workers { _ = try await worker.terminate() }
            _ = try await server.terminate()
        }
    }

    @Test func enqueueDoesNotGoWithResumeOrDryRun() async throws {
        let project = try WorkerProject(rows: 10)
        defer { project.remove() }
        let resume = try await project.sluice("run", "--resume", "r1", "--enqueue")
        #expect(resume.status == 2 && resume.stderr.contains("--enqueue creates a new run; it does not go with --resume"), "\(resume.stderr)")
        let dry = try await project.sluice("run", "events", "--dry-run", "--enqueue")
        #expect(dry.status == 2 && dry.stderr.contains("--dry-run"))
    }
}
