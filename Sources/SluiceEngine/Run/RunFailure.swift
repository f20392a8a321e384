import Foundation
import SluiceModel

/// Why a run failed, as its `on_failure` handlers see it: in `StepContext.runFailure`, and in
/// their expressions as `run.failed_step`, `run.error_code` and `run.error`. The message has
/// been through the redactor, like every stored reason.
public struct RunFailure: Sendable, Hashable {
    /// The step that failed; nil when the run failed outside any step (the warehouse could not
    /// be opened, or publishing failed after every step succeeded).
    public var stepID: String?
    /// The failed step's error code, or `warehouse_unavailable`, `publish_failed`.
    public var code: FailureCode
    public var message: String
    public var at: Date

    public init(stepID: String?, code: FailureCode, message: String, at: Date = Date()) {
        self.stepID = stepID
        self.code = code
        self.message = message
        self.at = at
    }

    /// Publishing the run's tables failed after every step succeeded; nothing was changed.
    public static let publishFailedCode = FailureCode.publishFailed
    /// The run's warehouse could not be opened, so no step ran.
    public static let warehouseUnavailableCode = FailureCode.warehouseUnavailable
}
