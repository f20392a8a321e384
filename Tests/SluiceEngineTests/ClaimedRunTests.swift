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
