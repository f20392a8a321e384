import Foundation
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceStorage
import Synchronization
import Testing

/// The run starter every front end goes through, on a real project: its SQLite run store opened
/// by the composition root, its pipelines read from files. Each refusal carries what a front
/// end needs to say it, and a refused start creates nothing.
struct RunStarterTests {
    static let files = [
        "schemas/events.json": #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "day", "type": "DATE"}]"#,
        "pipelines/plain.yml": """
        pipeline: plain
        defaults: { timeout: 1m }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events, schema: schemas/events.json } }
        """,
        "pipelines/needs_day.yml": """
        pipeline: needs_day
        defaults: { timeout: 1m }
        params:
          day: { type: date, required: true }
          file: { type: string, default: "data/${{ run.logical_date }}.csv", pattern: ".+\\\\.csv" }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: "${{ params.file }}" }, table: events, schema: schemas/events.json } }
        """,
        "pipelines/hourly.yml": """
        pipeline: hourly
        schedule: { cron: "0 * * * *", timezone: UTC, max_active_runs: 1 }
        defaults: { timeout: 1m }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events, schema: schemas/events.json } }
        """,
        "pipelines/broken.yml": """
        pipeline: broken
        steps:
          - { id: a, uses: no_such_processor }
        """,
        "pipelines/decrypts.yml": """
        pipeline: decrypts
        defaults: { timeout: 1m }
        steps:
          - { id: decrypt, uses: kms_decrypt, with: { credential: openai/admin_key, as: openai_key, expect: openai } }
          - { id: check, uses: validate_openai, needs: [decrypt], with: { api_key: "${{ secrets.openai_key }}" } }
        """,
    ]

    /// A project with the pipelines above, its stores opened as every command opens them.
    struct Project {
        let root: URL
        let services: ProjectServices

        init() async throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-starter-\(UUID().uuidString)")
            for (path, text) in RunStarterTests.files {
                let url = root.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: url)
            }
            services = try await Runtime.open(projectRoot: root, environment: [:])
        }

        func starter(
            keys: RunStarter.Keys = .loaded(nil), isAccepting: @escaping @Sendable () async -> Bool = { true },
            now: @escaping @Sendable () -> Date = { Date() }
        ) -> RunStarter {
            RunStarter(services: services, keys: keys, isAccepting: isAccepting, now: now)
        }

        func request(
            _ starter: RunStarter, _ pipeline: String, trigger: RunTrigger = .api, logicalDate: String? = "2026-03-04",
            params: [String: String] = [:], triggerKey: String? = nil
        ) async throws -> RunStarter.Request {
            RunStarter.Request(
                pipeline: try await starter.pipeline(pipeline), org: "acme", trigger: trigger, logicalDate: logicalDate,
                params: params, env: [:], triggerKey: triggerKey)
        }

        func runs() async throws -> [RunRecord] {
            try await services.runStore.runs(pipeline: nil, org: nil, limit: 100)
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// The refusal `start` throws, or nil when it started a run.
    static func refusal(_ starter: RunStarter, _ request: RunStarter.Request) async throws -> RunRefusal? {
        do {
            _ = try await starter.start(request)
            return nil
        } catch let refusal as RunRefusal {
            return refusal
        }
    }

    @Test func aStartCreatesThePendingRunTheRequestDescribes() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter()
        var request = try await project.request(starter, "needs_day", params: ["day": "2026-03-04"], triggerKey: "api:first")
        request.requestID = "req_1"
        let started = try await starter.start(request)
        #expect(started.run.pipeline == "needs_day")
        #expect(started.run.org == "acme")
        #expect(started.run.state == .pending)
        #expect(started.run.trigger == .api)
        #expect(started.run.triggerKey == "api:first")
        #expect(started.run.requestID == "req_1")
        #expect(started.run.params == ["day": "2026-03-04"])
        #expect(started.run.logicalDate == "2026-03-04")
        #expect(started.keys == nil)
        #expect(started.plan.definition.id?.value == "needs_day")
        #expect(try await project.runs().map(\.id) == [started.run.id])
        #expect(try await project.services.runStore.steps(of: started.run.id).map(\.stepID) == ["load"])
    }

    @Test func aPipelineTheProjectDoesNotHaveIsRefusedByItsID() async throws {
        let project = try await Project()
        defer { project.remove() }
        do {
            _ = try await project.starter().pipeline("nope")
            Issue.record("a pipeline that is not there was found")
        } catch {
            guard case .pipelineNotFound(let id) = error else { Issue.record("\(error)"); return }
            #expect(id == "nope")
        }
    }

    @Test func aPipelineThatDoesNotLintIsRefusedWithItsDiagnosticsAndCreatesNothing() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter()
        let refusal = try await Self.refusal(starter, try await project.request(starter, "broken"))
        guard case .pipelineInvalid(let file, let diagnostics)? = refusal else { Issue.record("\(String(describing: refusal))"); return }
        #expect(file == "pipelines/broken.yml")
        #expect(diagnostics.contains { $0.rule == .unknownProcessor && $0.location.line == 3 }, "\(diagnostics)")
        #expect(refusal?.errors.count == diagnostics.errorCount)
        #expect(try await project.runs().isEmpty)
    }

    @Test func aPipelineThatDecryptsCredentialsIsRefusedWithoutKeys() async throws {
        let project = try await Project()
        defer { project.remove() }
        // A server that has none.
        let server = project.starter(keys: .loaded(nil))
        let refusal = try await Self.refusal(server, try await project.request(server, "decrypts"))
        guard case .keysUnavailable(let reason)? = refusal else { Issue.record("\(String(describing: refusal))"); return }
        #expect(reason == "none are configured")
        // A command, which loads them when a run needs them: why they could not be loaded.
        let command = project.starter(keys: .load(environment: [:]))
        let loaded = try await Self.refusal(command, try await project.request(command, "decrypts"))
        guard case .keysUnavailable(let why)? = loaded else { Issue.record("\(String(describing: loaded))"); return }
        #expect(why.contains("keyring"), "\(why)")
        #expect(try await project.runs().isEmpty)
        // A pipeline that decrypts nothing needs no keys.
        #expect(try await server.start(try await project.request(server, "plain")).keys == nil)
    }

    @Test func aParamThatDoesNotCheckIsRefusedWithItsNameAndProblem() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter()
        func problem(_ params: [String: String]) async throws -> InvalidParam? {
            let refusal = try await Self.refusal(starter, try await project.request(starter, "needs_day", params: params))
            guard case .invalidParam(let problem)? = refusal else { Issue.record("\(String(describing: refusal))"); return nil }
            return problem
        }
        let missing = try await problem([:])
        #expect(missing == InvalidParam(name: "day", problem: .missing))
        // Each front end says how its caller gives it; the executor says it as `sluice run` does.
        #expect(missing?.message { "give it in params as \($0)=…" } == "param 'day' is required; give it in params as day=…")
        #expect(missing?.message() == "param 'day' is required; give it with --param day=…")
        #expect(
            try await problem(["day": "2026-02-30"]) == InvalidParam(name: "day", problem: .invalidValue("'2026-02-30' is not a YYYY-MM-DD date")))
        #expect(try await problem(["dya": "2026-03-04"]) == InvalidParam(name: "dya", problem: .undeclared(closest: "day")))
        #expect(try await problem(["dya": "2026-03-04"])?.message() == "the pipeline has no param 'dya'; did you mean 'day'?")
        #expect(
            try await problem(["day": "2026-03-04", "file": "data/x.txt"])
                == InvalidParam(name: "file", problem: .invalidValue("'data/x.txt' does not match its pattern .+\\.csv")))
        #expect(try await project.runs().isEmpty)

        // The scheduler and backfill leave the check to the executor: the run is created, and fails.
        var unattended = try await project.request(starter, "needs_day", trigger: .schedule)
        unattended.paramsCheck = .whenExecuting
        #expect(try await starter.start(unattended).run.state == .pending)
    }

    @Test func aStartBeyondALimitOnActiveRunsIsRefusedWithTheCountAndTheLimit() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter()
        // A scheduled pipeline: its max_active_runs, whoever starts the run.
        _ = try await starter.start(try await project.request(starter, "hourly"))
        let second = try await Self.refusal(starter, try await project.request(starter, "hourly", trigger: .cli))
        guard case .limited(let limit)? = second else { Issue.record("\(String(describing: second))"); return }
        #expect(limit == ActiveRunsLimit(scope: .pipeline, active: 1, maximum: 1))

        // Without a schedule: no limit, unless the request sets one.
        let plain = try await starter.start(try await project.request(starter, "plain"))
        #expect(plain.run.state == .pending)
        var bounded = try await project.request(starter, "plain")
        bounded.activeLimitWithoutSchedule = 1
        guard case .limited(let pipelineLimit)? = try await Self.refusal(starter, bounded) else { Issue.record("not limited"); return }
        #expect(pipelineLimit == ActiveRunsLimit(scope: .pipeline, active: 1, maximum: 1))

        // The org's limit counts every pipeline of the org.
        var org = try await project.request(starter, "needs_day", params: ["day": "2026-03-04"])
        org.orgActiveLimit = 2
        guard case .limited(let orgLimit)? = try await Self.refusal(starter, org) else { Issue.record("not limited"); return }
        #expect(orgLimit == ActiveRunsLimit(scope: .org, active: 2, maximum: 2))
        #expect(try await project.runs().count == 2)
    }

    @Test func aProcessShuttingDownStartsNothing() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter(isAccepting: { false })
        let refusal = try await Self.refusal(starter, try await project.request(starter, "plain"))
        guard case .shuttingDown? = refusal else { Issue.record("\(String(describing: refusal))"); return }
        #expect(try await project.runs().isEmpty)
    }

    @Test func aTriggerKeyMakesOneRunAndARepeatFindsItWhateverChangedSince() async throws {
        let project = try await Project()
        defer { project.remove() }
        let starter = project.starter()
        let request = try await project.request(starter, "plain", triggerKey: "webhook:msg_1")
        // Delivered twice at once: one run, and the other start finds it.
        async let first = Self.refusal(starter, request)
        async let second = Self.refusal(starter, request)
        let refusals = try await [first, second]
        let runs = try await project.runs()
        #expect(runs.count == 1)
        #expect(refusals.filter { $0 == nil }.count == 1, "\(refusals)")
        guard case .duplicate(let earlier)?? = refusals.first(where: { $0 != nil }) else { Issue.record("\(refusals)"); return }
        #expect(earlier.id == runs.first?.id)

        // A repeat gets the run back even when the pipeline no longer lints.
        var broken = request
        broken.pipeline.plan = nil
        guard case .duplicate(let again)? = try await Self.refusal(starter, broken) else { Issue.record("not a duplicate"); return }
        #expect(again.id == earlier.id)
        // Another org, or another key, is another run.
        var other = request
        other.org = "globex"
        #expect(try await Self.refusal(starter, other) == nil)
        #expect(try await project.runs().count == 2)
    }

    @Test func aRunWithoutALogicalDateIsForTheStartersTodayInUTC() async throws {
        let project = try await Project()
        defer { project.remove() }
        let clock = Clock(Date(timeIntervalSince1970: 1_772_668_799))  // 2026-03-04T23:59:59Z
        let starter = project.starter(now: clock.read)
        let late = try await starter.start(try await project.request(starter, "plain", logicalDate: nil))
        #expect(late.run.logicalDate == "2026-03-04")
        clock.set(Date(timeIntervalSince1970: 1_772_668_800))  // a second later: 2026-03-05T00:00:00Z
        let next = try await starter.start(try await project.request(starter, "plain", trigger: .cli, logicalDate: nil))
        #expect(next.run.logicalDate == "2026-03-05")
        #expect(clock.reads == 2)
        // A date given is the run's, and the clock is not read for it.
        let given = try await starter.start(try await project.request(starter, "plain", logicalDate: "2026-01-31"))
        #expect(given.run.logicalDate == "2026-01-31")
        #expect(clock.reads == 2)
        #expect(RunStarter.logicalDate(today: Date(timeIntervalSince1970: 0)).description == "1970-01-01")
    }
}

/// A clock that says how often it was read.
private final class Clock: Sendable {
    private let state: Mutex<(now: Date, reads: Int)>

    init(_ now: Date) { state = Mutex((now, 0)) }

    @Sendable func read() -> Date {
        state.withLock {
            $0.reads += 1; return $0.now
        }
    }
    func set(_ now: Date) { state.withLock { $0.now = now } }
    var reads: Int { state.withLock { $0.reads } }
}
