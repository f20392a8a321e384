import Foundation
import SluiceModel

/// Run history: runs, their steps, every transition, step outputs, heartbeats. The executor
/// writes through this protocol; SluiceSQLite implements it on SQLite, and a PostgreSQL
/// implementation can follow without changing the engine.
public protocol RunStore: Sendable {
    /// Creates a run, or returns the existing one when a run with the same trigger key
    /// exists (enforced by a unique key, so two callers at once still create one run).
    func createRun(_ run: RunRecord, steps: [StepRunRecord]) async throws -> (run: RunRecord, created: Bool)

    /// Stores a new state for the run, with its reason, as a transition.
    func recordRun(_ runID: String, state: RunState, reason: String, at: Date) async throws

    /// Stores a new state for a step, with its attempt, reason and error code, as a transition.
    func recordStep(_ runID: String, step: String, state: RunState, attempt: Int, reason: String,
                    errorCode: String?, at: Date) async throws

    /// Stores the outputs a step published.
    func saveOutputs(_ runID: String, step: String, outputs: [String: ExpressionValue]) async throws

    /// Marks the run alive; a run whose heartbeat is older than its lease is abandoned.
    func heartbeat(_ runID: String, at: Date) async throws

    /// Marks runs that are `running` but whose last heartbeat is before `cutoff` as failed,
    /// with the reason, and their unfinished steps as failed. Returns those runs.
    func abandonRuns(heartbeatBefore cutoff: Date, reason: String, at: Date) async throws -> [RunRecord]

    func run(_ id: String) async throws -> RunRecord?
    func steps(of runID: String) async throws -> [StepRunRecord]
    func transitions(of runID: String) async throws -> [Transition]
    /// Newest first.
    func runs(pipeline: String?, org: String?, limit: Int) async throws -> [RunRecord]
}
