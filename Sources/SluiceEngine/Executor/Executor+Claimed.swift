import Foundation
import SluiceModel
import SluiceStorage

extension Executor {
    /// Executes a run a worker claimed, holding `lease` (renewed while the run executes; when
    /// a renewal fails, the run is another worker's and this one stops without touching it).
    ///
    /// A pending run starts. A running run was taken over from a worker that stopped (its lease
    /// expired, or it released the run at shutdown) and continues in its staging: the steps
    /// that succeeded keep their outputs (those `reusable(_:succeeded:)` allows), the others run
    /// again. If the warehouse shows the run's publish committed, the previous worker died
    /// after publishing and before recording it, and the run is only marked succeeded: a run
    /// publishes once whatever happens.
    public func execute(
        claimed claim: RunClaim, plan: PipelinePlan, env: [String: String], lease: RunLease,
        cancellation: CancellationNote? = nil
    ) async throws {
        let run = claim.run
        guard claim.isTakeover else {
            try await execute(plan, run: run, env: env, cancellation: cancellation, lease: lease, startReason: "started by worker \(lease.worker)")
            return
        }
        var logger = self.logger
        logger[metadataKey: "run_id"] = "\(run.id)"
        logger[metadataKey: "worker"] = "\(lease.worker)"
        let previous = claim.previousWorker.map { "worker \($0)" } ?? "the worker that held it"
        let stagingRun = try await RunRecovery.stagingRun(of: run, store: store)
        if let warehouse, try await warehouse.wasPublished(org: run.org, runID: stagingRun) {
            let now = Date()
            for step in try await store.steps(of: run.id) where !step.state.isFinal {
                try await store.recordStep(
                    run.id, step: step.stepID, state: .skipped, attempt: step.attempt, reason: "not needed: the run succeeded",
                    errorCode: nil, at: now)
            }
            let reason = "its changes were published by \(previous) before it stopped; recorded by worker \(lease.worker)"
            try await store.recordRun(run.id, state: .succeeded, reason: reason, at: now)
            options.observer?(RunEvent(transition: Transition(stepID: nil, attempt: 0, state: .succeeded, reason: reason, at: now), outputs: nil))
            logger.notice("run taken over after its publish had committed: marked succeeded")
            return
        }
        let succeeded = Dictionary(
            try await store.steps(of: run.id).filter { $0.state == .succeeded }.map { ($0.stepID, $0.outputs) },
            uniquingKeysWith: { first, _ in first })
        var reuse = reusable(plan, succeeded: succeeded)
        // Without its staging (removed by hand, or lost with a machine's disk), what the steps
        // staged is gone: every step runs again, in a new staging.
        if !reuse.isEmpty, let warehouse, try await !warehouse.hasStaging(org: run.org, runID: stagingRun) {
            logger.warning("the run's staging is gone: every step runs again")
            reuse = [:]
        }
        logger.notice("continuing a run taken over from \(previous)", metadata: ["steps_kept": "\(reuse.count)"])
        try await execute(
            plan, run: run, env: env, reuse: reuse, stagingOf: stagingRun, cancellation: cancellation, lease: lease,
            startReason: "continued by worker \(lease.worker) after \(previous) stopped; \(reuse.count) step(s) kept")
    }
}
