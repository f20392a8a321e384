import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

/// When a project's runs execute in workers, the server, the scheduler and backfill only
/// create runs; a `Worker` claims and executes them.
@Suite struct WorkerServiceTests {
    func worker(for project: URL, id: String, lease: Duration = .seconds(2)) async throws -> (Worker, ServiceGroup, Task<Void, any Error>) {
        let services = try await Runtime.open(projectRoot: project, runExecution: .workers)
        let runner = try Runner(services: services, configuration: ServerConfiguration(), logger: LiveServer.quiet)
        let worker = Worker(
            runner: runner, options: Worker.Options(id: id, concurrency: 2, lease: lease, poll: .milliseconds(100), grace: .zero),
            logger: LiveServer.quiet)
        let group = ServiceGroup(configuration: .init(services: [worker], logger: LiveServer.quiet))
        return (worker, group, Task { try await group.run() })
    }

    @Test func anAPITriggerOnlyCreatesTheRunAndAWorkerExecutesIt() async throws {
        let live = try await LiveServer.start(project: try exampleProject(), runExecution: .workers)
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let trigger = try await live.post(
            "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, json: #"{"logical_date": "2026-03-01"}"#)
        #expect(trigger.status == 202, "\(trigger.text)")
        let id = try #require(trigger.json["id"] as? String)
        // Nobody executes it here: it stays pending, for workers.
        try await Task.sleep(for: .milliseconds(500))
        let pending = try #require(try await live.server.store.run(id))
        #expect(pending.state == .pending && pending.forWorkers && pending.worker == nil)

        let (_, group, task) = try await worker(for: live.project, id: "w-test")
        let ended = try await live.waitForEnd(id, token: token)
        #expect(ended["state"] as? String == "succeeded", "\(ended)")
        let history = try await live.server.store.transitions(of: id).filter { $0.stepID == nil }.map(\.reason)
        #expect(history == ["created", "claimed by worker w-test", "started by worker w-test", "every step succeeded"], "\(history)")
        #expect(try await live.server.store.run(id)?.worker == "w-test")
        await group.triggerGracefulShutdown()
        try await task.value
        try await live.stop()
    }

    /// The schedule's max_active_runs (1) still holds: each run is created once a worker has
    /// executed the one before.
    @Test func backfillOnlyCreatesRunsAndWorkersExecuteThem() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let services = try await Runtime.open(projectRoot: project, runExecution: .workers)
        let runner = try Runner(services: services, configuration: ServerConfiguration(), logger: LiveServer.quiet)
        let backfill = Backfill(runner: runner, logger: LiveServer.quiet)
        let plan = try #require(services.plan(file: "pipelines/genai_costs_daily.yml").plan)
        let slots = try backfill.slots(
            plan, from: CalendarDate(parsing: "2026-03-01")!, to: CalendarDate(parsing: "2026-03-03")!, orgs: ["acme"])
        let (_, group, task) = try await worker(for: project, id: "w-backfill")
        let outcomes = Outcomes()
        try await backfill.run(pipeline: "genai_costs_daily", slots: slots) { _, outcome in await outcomes.add(outcome) }
        let all = await outcomes.all
        let enqueued = all.compactMap { if case .enqueued(let run) = $0 { run } else { nil } }
        #expect(enqueued.count == slots.count, "\(all)")
        for run in enqueued {
            let stored = try #require(try await services.runStore.run(run.id))
            #expect(stored.forWorkers && stored.trigger == .backfill)
        }
        for run in enqueued {
            #expect(try await eventually { try await services.runStore.run(run.id)?.state == .succeeded })
            #expect(try await services.runStore.run(run.id)?.worker == "w-backfill")
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    private actor Outcomes {
        var all: [Backfill.Outcome] = []
        func add(_ outcome: Backfill.Outcome) { all.append(outcome) }
    }
}
