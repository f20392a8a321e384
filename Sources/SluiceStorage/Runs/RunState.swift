import Foundation

/// Where a run or a step is in its life. Every change is stored as a `Transition` with a time
/// and a reason.
///
///     pending → running → succeeded | failed | retrying | timed_out | skipped | cancelled | dead_lettered
///
/// `retrying` and `timed_out` are passing states of a step between attempts; the others are
/// final. A run ends `succeeded`, `failed` (a step failed or was dead-lettered, or the process
/// died and the run was found abandoned) or `cancelled`.
public enum RunState: String, Sendable, Codable, CaseIterable {
    case pending
    case running
    case succeeded
    case failed
    case retrying
    case timedOut = "timed_out"
    case skipped
    case cancelled
    case deadLettered = "dead_lettered"

    /// No transition leaves a final state (except a resume, which starts a new attempt).
    public var isFinal: Bool {
        switch self {
        case .succeeded, .failed, .skipped, .cancelled, .deadLettered: true
        case .pending, .running, .retrying, .timedOut: false
        }
    }
}

/// One stored change of state.
public struct Transition: Sendable, Hashable, Codable {
    /// nil for the run itself.
    public var stepID: String?
    public var attempt: Int
    public var state: RunState
    public var reason: String
    public var at: Date

    public init(stepID: String?, attempt: Int, state: RunState, reason: String, at: Date) {
        self.stepID = stepID
        self.attempt = attempt
        self.state = state
        self.reason = reason
        self.at = at
    }
}
