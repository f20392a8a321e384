import Foundation
import SluiceModel
import SluiceStorage

extension Executor {
    /// Records a run that was created but never started as cancelled, with `reason`: its steps
    /// (and `on_failure` handlers) skipped, nothing executed, no staging made. A server
    /// cancels a run this way while it waits for an executing-run slot.
    public func cancelUnstarted(_ plan: PipelinePlan, run: RunRecord, reason: String) async throws {
        let at = Date()
        for step in plan.definition.steps + plan.definition.onFailure {
            let stepReason = "not run: the run was cancelled before it started"
            try await store.recordStep(run.id, step: step.id.value, state: .skipped, attempt: 0, reason: stepReason, errorCode: nil, at: at)
            options.observer?(
                RunEvent(
                    transition: Transition(stepID: step.id.value, attempt: 0, state: .skipped, reason: stepReason, at: at),
                    outputs: nil))
        }
        try await store.recordRun(run.id, state: .cancelled, reason: reason, at: at)
        options.observer?(RunEvent(transition: Transition(stepID: nil, attempt: 0, state: .cancelled, reason: reason, at: at), outputs: nil))
        var logger = self.logger
        logger[metadataKey: "run_id"] = "\(run.id)"
        logger.notice("run cancelled before it started")
    }
}
