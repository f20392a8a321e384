import Foundation
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// How a worker executes a run it claimed: under a lease it renews, handing the run back when
/// asked to, continuing a run taken over from its staging, and publishing it once.
@Suite struct ClaimedRunTests {
    func executor(_ project: PipelineProject) -> Executor {
        Executor(
            processors: PipelineProject.slowCatalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
    }

    /// `slow_events`, created for workers and claimed by `worker`.
    func claimedRun(_ project: PipelineProject, plan: PipelinePlan, worker: String, lease: Duration) async throws -> RunClaim {
        let (run, _) = try await executor(project).create(
            plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:], forWorkers: true))
        #expect(run.forWorkers)
        let claim = try #require(try await project.store.claimRun(worker: worker, lease: lease, orgs: nil, at: Date()))
        #expect(claim.run.id == run.id && !claim.isTakeover)
        return claim
    }

    func history(_ project: PipelineProject, _ runID: String) async throws -> [String] {
        try await project.store.transitions(of: runID).map { "\($0.stepID ?? "run") \($0.state.rawValue): \($0.reason)" }
    }

    @Test func aReleasedRunIsContinuedFromItsStagingKeepingWhatSucceeded() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let claim = try await claimedRun(project, plan: try project.slowPlan(wait: "30s"), worker: "a", lease: .seconds(30))
        let lease = RunLease(worker: "a", duration: .seconds(30))
        let executing = Task { [self] in
            try await executor(project).execute(claimed: claim, plan: try project.slowPlan(wait: "30s"), env: [:], lease: lease)
        }
        #expect(try await project.slowRunSleeping() == claim.run.id)
        lease.requestRelease("shutting down")
        executing.cancel()
        try await executing.value
        let released = try #require(try await project.store.run(claim.run.id))
        #expect(released.state == .running && released.leaseExpiresAt == nil, "\(released)")
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: claim.run.id), "the staging is kept")
        #expect(try await project.tableExists("events") == false, "nothing published")

        let taken = try #require(try await project.store.claimRun(worker: "b", lease: .seconds(30), orgs: nil, at: Date()))
        #expect(taken.isTakeover && taken.previousWorker == "a")
        try await executor(project).execute(
            claimed: taken, plan: try project.slowPlan(wait: "10ms"), env: [:], lease: RunLease(worker: "b", duration: .seconds(30)))
        #expect(try await project.store.run(claim.run.id)?.state == .succeeded)
        #expect(try await project.rows("SELECT event_id, x_run_id FROM events") == [["e1", claim.run.id]])
        let lines = try await history(project, claim.run.id)
        #expect(lines.contains("run running: released by worker a: shutting down"), "\(lines)")
        #expect(lines.contains("run running: taken over by worker b from worker a: it released the run"), "\(lines)")
        #expect(lines.contains("run running: continued by worker a after worker a stopped; 2 step(s) kept") == false)
        #expect(lines.contains("run running: continued by worker b after worker a stopped; 2 step(s) kept"), "\(lines)")
        #expect(lines.filter { $0.hasPrefix("load running") }.count == 1, "load ran once: \(lines)")
        #expect(lines.contains("load succeeded: kept from the run's earlier attempt"), "\(lines)")
        #expect(lines.filter { $0.hasPrefix("wait running") }.count == 2, "wait ran again: \(lines)")
    }

    @Test func aWorkerThatLostItsLeaseStopsWithoutTouchingTheRun() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let claim = try await claimedRun(project, plan: try project.slowPlan(wait: "30s"), worker: "a", lease: .seconds(1))
        let executing = Task { [self] in
            try await executor(project).execute(
                claimed: claim, plan: try project.slowPlan(wait: "30s"), env: [:], lease: RunLease(worker: "a", duration: .seconds(1)))
        }
        #expect(try await project.slowRunSleeping() == claim.run.id)
        // As if a had been suspended past its lease: b takes the run over.
        let taken = try #require(try await project.store.claimRun(worker: "b", lease: .seconds(600), orgs: nil, at: Date().addingTimeInterval(5)))
        #expect(taken.isTakeover)
        let before = try await history(project, claim.run.id)
        // a finds out at its next renewal and stops, recording nothing more.
        try await executing.value
        let after = try await history(project, claim.run.id)
        #expect(after == before, "a recorded \(after.dropFirst(before.count))")
        let run = try #require(try await project.store.run(claim.run.id))
        #expect(run.state == .running && run.worker == "b")
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: claim.run.id), "the staging is b's now")
        #expect(try await project.tableExists("events") == false)
    }

    /// A worker that stalled past its lease without finding out (its next renewal not due yet)
    /// goes on after another worker took the run over and reopened its staging: its next write
    /// into the staging is refused, and it stops there. It records no failure over the run that
    /// is the other worker's now, and leaves the staging to it.
    @Test(arguments: Backend.all)
    func aWorkerWhoseStagingWasTakenOverStopsAtItsNextWrite(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let loaded = PipelineLoader(registry: PipelineProject.slowCatalog.registry).load(
            Data(
                """
                pipeline: slow_events
                defaults: { timeout: 30m }
                steps:
                  - { id: wait, uses: test_sleep, with: { for: 3s } }
                  - { id: load, uses: ingest, needs: [wait], with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
                  - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
                """.utf8), file: "pipelines/slow_events.yml")
        let plan = try PipelinePlan.build(try #require(loaded.definition)).get()
        // A lease of ten minutes: a renews it every 200 s, so it never hears of the takeover.
        let claim = try await claimedRun(project, plan: plan, worker: "a", lease: .seconds(600))
        let executing = Task { [self] in
            try await executor(project).execute(claimed: claim, plan: plan, env: [:], lease: RunLease(worker: "a", duration: .seconds(600)))
        }
        #expect(try await project.slowRunSleeping() == claim.run.id)
        // b takes the run over (as if a's lease had expired) and opens its staging.
        let taken = try #require(try await project.store.claimRun(worker: "b", lease: .seconds(600), orgs: nil, at: Date().addingTimeInterval(700)))
        #expect(taken.isTakeover)
        let reopened = try await project.warehouse.workspace(org: "acme", runID: claim.run.id, targets: [], existing: true)
        let before = try await history(project, claim.run.id)
        try await executing.value
        await reopened.close()

        let added = try await history(project, claim.run.id).dropFirst(before.count)
        #expect(!added.contains { $0.contains("failed") || $0.hasPrefix("run ") || $0.hasPrefix("merge ") }, "a recorded \(added)")
        let run = try #require(try await project.store.run(claim.run.id))
        #expect(run.state == .running && run.worker == "b", "\(run)")
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: claim.run.id), "the staging is b's")
        let bStaging = try await project.warehouse.workspace(org: "acme", runID: claim.run.id, targets: [], existing: true)
        #expect(try await !bStaging.isStaged("events_raw"), "nothing of a's landed in it")
        await bStaging.close()
        #expect(try await project.tableExists("events") == false)
    }

    /// A worker that died after its publish committed and before recording it: the worker that
    /// takes the run over finds the published marker and only marks the run succeeded.
    @Test func aRunPublishedBeforeItsWorkerDiedIsOnlyMarkedSucceeded() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let plan = try project.slowPlan(wait: "10ms")
        let claim = try await claimedRun(project, plan: plan, worker: "a", lease: .seconds(1))
        try await executor(project).execute(claimed: claim, plan: plan, env: [:], lease: RunLease(worker: "a", duration: .seconds(1)))
        #expect(try await project.store.run(claim.run.id)?.state == .succeeded)
        // Rewound to where a died: published, the run still recorded running.
        try await project.store.recordRun(claim.run.id, state: .running, reason: "started by worker a", at: Date())
        let before = try await history(project, claim.run.id)

        let taken = try #require(try await project.store.claimRun(worker: "b", lease: .seconds(30), orgs: nil, at: Date().addingTimeInterval(5)))
        try await executor(project).execute(claimed: taken, plan: plan, env: [:], lease: RunLease(worker: "b", duration: .seconds(30)))
        let run = try #require(try await project.store.run(claim.run.id))
        #expect(run.state == .succeeded && run.reason == "its changes were published by worker a before it stopped; recorded by worker b")
        let added = try await history(project, claim.run.id).dropFirst(before.count)
        #expect(added.allSatisfy { $0.hasPrefix("run ") }, "no step ran again: \(added)")
        #expect(try await project.rows("SELECT count(*) FROM events") == [["1"]])
    }
}
