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

    /// Stores the results of a `validate_data` step's checks.
    func saveCheckResults(_ results: [CheckResult]) async throws

    func checkResults(of runID: String) async throws -> [CheckResult]

    /// Keeps rows an `ingest` step quarantined: their raw text, line and reason.
    func saveQuarantined(_ rows: [QuarantinedRow]) async throws

    func quarantined(of runID: String) async throws -> [QuarantinedRow]

    func run(_ id: String) async throws -> RunRecord?
    func steps(of runID: String) async throws -> [StepRunRecord]
    func transitions(of runID: String) async throws -> [Transition]
    /// Newest first.
    func runs(pipeline: String?, org: String?, limit: Int) async throws -> [RunRecord]

    /// Runs that are `pending` or `running`, oldest first.
    func activeRuns() async throws -> [RunRecord]
}

/// One data test's outcome, stored with the run.
public struct CheckResult: Sendable, Hashable, Codable {
    public var runID: String
    public var stepID: String
    public var name: String
    public var table: String
    public var passed: Bool
    /// `error` fails the step when the check fails; `warn` only records it.
    public var severity: String
    /// What was measured (offending rows, the row count, the newest value), in words.
    public var observed: String

    public init(runID: String, stepID: String, name: String, table: String, passed: Bool, severity: String, observed: String) {
        self.runID = runID
        self.stepID = stepID
        self.name = name
        self.table = table
        self.passed = passed
        self.severity = severity
        self.observed = observed
    }
}

/// A source row that did not fit its schema under `on_bad_row: quarantine`.
public struct QuarantinedRow: Sendable, Hashable, Codable {
    public var runID: String
    public var stepID: String
    public var file: String
    public var line: Int
    public var column: Int
    public var reason: String
    public var raw: String

    public init(runID: String, stepID: String, file: String, line: Int, column: Int, reason: String, raw: String) {
        self.runID = runID
        self.stepID = stepID
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
        self.raw = raw
    }
}
