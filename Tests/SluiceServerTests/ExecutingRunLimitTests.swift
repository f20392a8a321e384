import Foundation
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceServer

/// The server-wide limit on executing runs: the rest wait, pending and alive, start oldest
/// first as slots free up, can be cancelled while they wait, and stay pending at shutdown.
struct ExecutingRunLimitTests {
    /// A run store in a temp folder and an executor of a pipeline whose one step naps for 15
    /// minutes (until cancelled), heartbeating every `heartbeat`.
    struct Setup {
        let folder: URL
        let store: SQLiteRunStore
        let plan: PipelinePlan
        let executor: Executor

        init(heartbeat: Duration = .seconds(5)) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-limit-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
            let catalog = ProcessorEnvironment([NapProcessor()])
            let loaded = PipelineLoader(registry: catalog.registry).load(
                Data(
                    """
                    pipeline: naps
                    defaults: { timeout: 30m }
                    steps:
                      - { id: nap, uses: test_nap, with: { for: 15m } }
                    """.utf8), file: "pipelines/naps.yml")
            plan = try PipelinePlan.build(try #require(loaded.definition)).get()
            var options = ExecutorOptions()
            options.heartbeatInterval = heartbeat
            executor = Executor(processors: catalog, store: store, options: options, logger: LiveServer.quiet)
        }

        func create(_ day: Int, createdAt: Date = Date()) async throws -> RunRecord {
            let run = RunRecord(pipeline: "naps", org: "acme", logicalDate: "2026-03-\(10 + day)", trigger: .api, createdAt: createdAt)
            return try await store.createRun(run, steps: [StepRunRecord(runID: run.id, stepID: "nap", processor: "test_nap")]).run
        }

        func state(_ run: RunRecord) async throws -> RunState? {
            try await store.run(run.id)?.state
        }
    }

    @Test func runsPastTheLimitWaitPendingAndStartOldestFirstAsSlotsFree() async throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.folder) }
        let launcher = RunLauncher(logger: LiveServer.quiet, maxExecuting: 2)
        var runs: [RunRecord] = []
        for day in 0..<5 { runs.append(try await setup.create(day)) }
        // Handed over out of order (requests that created runs together may arrive so).
        for index in [0, 1, 4, 2, 3] {
            #expect(await launcher.launch(runs[index], plan: setup.plan, executor: setup.executor, env: [:]))
        }
        #expect(
            try await eventually {
                let (first, second) = (try await setup.state(runs[0]), try await setup.state(runs[1]))
                return first == .running && second == .running
            })
        #expect(await launcher.waitingRuns == [runs[2].id, runs[3].id, runs[4].id])
        for run in runs[2...] {
            let stored = try #require(try await setup.store.run(run.id))
            #expect(stored.state == .pending)
            #expect(stored.reason == "waiting for a slot: 2 runs are executing in this server (--max-executing-runs)")
        }

        // A slot frees: the oldest waiting run takes it.
        #expect(await launcher.cancel(runs[0].id, reason: "test"))
        #expect(try await eventually { try await setup.state(runs[2]) == .running })
        #expect(try await setup.state(runs[3]) == .pending)
        #expect(try await setup.state(runs[4]) == .pending)

        // A waiting run is cancelled at once, nothing of it executed.
        #expect(await launcher.cancel(runs[3].id, reason: "cancelled through the API (request r-3)"))
        let cancelled = try #require(try await setup.store.run(runs[3].id))
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.reason == "cancelled through the API (request r-3)")
        let steps = try await setup.store.steps(of: runs[3].id)
        #expect(steps.map(\.state) == [.skipped], "\(steps)")
        #expect(steps.first?.startedAt == nil)
        #expect(await launcher.waitingRuns == [runs[4].id])

        #expect(await launcher.cancel(runs[1].id, reason: "test"))
        #expect(try await eventually { try await setup.state(runs[4]) == .running })
        #expect(await launcher.waitingRuns.isEmpty)
        await launcher.stop()
        for run in runs { #expect(try await setup.state(run) == .cancelled) }
    }

    @Test func aWaitingRunIsKeptAliveAndStaysPendingAtShutdown() async throws {
        let setup = try Setup(heartbeat: .milliseconds(50))
        defer { try? FileManager.default.removeItem(at: setup.folder) }
        let launcher = RunLauncher(logger: LiveServer.quiet, maxExecuting: 1)
        let executing = try await setup.create(0)
        #expect(await launcher.launch(executing, plan: setup.plan, executor: setup.executor, env: [:]))
        #expect(try await eventually { try await setup.state(executing) == .running })
        // Created an hour ago and never heartbeated: a watchdog would take it for dead at once,
        // unless the launcher keeps it alive while it waits.
        let waiting = try await setup.create(1, createdAt: Date().addingTimeInterval(-3600))
        #expect(await launcher.launch(waiting, plan: setup.plan, executor: setup.executor, env: [:]))
        #expect(try await eventually { try await setup.store.run(waiting.id)?.heartbeatAt != nil })
        let abandoned = try await RunRecovery.recover(store: setup.store, warehouse: nil, lease: .seconds(30))
        #expect(abandoned.isEmpty, "\(abandoned.map(\.id))")
        #expect(try await setup.state(waiting) == .pending)

        await launcher.stop()
        #expect(try await setup.state(executing) == .cancelled)
        let left = try #require(try await setup.store.run(waiting.id))
        #expect(left.state == .pending, "\(left.reason)")
        #expect(left.reason.hasPrefix("not started: the server stopped while the run waited for a slot"), "\(left.reason)")
        // Without heartbeats now, the watchdog marks it abandoned once the lease has passed, as
        // any run whose process stopped: then it can be resumed.
        let later = try await RunRecovery.recover(store: setup.store, warehouse: nil, lease: .seconds(30), now: Date().addingTimeInterval(60))
        #expect(later.map(\.id) == [waiting.id])
        #expect(try await setup.state(waiting) == .failed)
    }

    @Test func aRunWaitingInTheServerIsCancelledThroughTheAPI() async throws {
        let live = try await LiveServer.start(project: try exampleProject(extra: slowPipeline)) { $0.maxExecutingRuns = 1 }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let first = try #require(try await live.post("/v1/orgs/acme/pipelines/slow/runs", token: token).json["id"] as? String)
        let second = try await live.post("/v1/orgs/acme/pipelines/slow/runs", token: token)
        #expect(second.status == 202, "\(second.text)")
        let waiting = try #require(second.json["id"] as? String)
        #expect(try await eventually { try await live.get("/v1/runs/\(first)", token: token).json["state"] as? String == "running" })
        #expect(try await live.get("/v1/runs/\(waiting)", token: token).json["state"] as? String == "pending")

        let cancel = try await live.post("/v1/runs/\(waiting)/cancel", token: token, headers: ["X-Request-Id": "stop-waiting"])
        #expect(cancel.status == 202, "\(cancel.text)")
        #expect(cancel.json["state"] as? String == "cancelled", "\(cancel.text)")
        #expect(cancel.json["reason"] as? String == "cancelled through the API (request stop-waiting)")
        #expect(try await live.post("/v1/runs/\(first)/cancel", token: token).status == 202)
        #expect(try await live.waitForEnd(first, token: token)["state"] as? String == "cancelled")
        try await live.stop()
    }
}
