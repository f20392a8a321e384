import SluiceModel
import Synchronization

/// What one step has consumed against its limits (the step's `limits` tightened by its org's),
/// and the check that stops it before it passes one. The executor gives each step one, for all
/// its attempts, as a task-local for the attempt: the HTTP client counts requests through it,
/// whatever processor sends them, and sources count rows and bytes before they write them.
public final class StepBudget: Sendable {
    @TaskLocal public static var current: StepBudget?

    public let limits: StepLimits
    private let requests = Mutex(0)

    public init(limits: StepLimits) {
        self.limits = limits
    }

    /// Counts a request about to be sent; fails, sending nothing, when it would be one more than
    /// `max_requests`. `what` names the request in the message.
    public func spendRequest(_ what: String) throws(StepFailure) {
        guard let limit = limits.maxRequests else { return }
        let sent = requests.withLock { count -> Int? in
            guard count < limit else { return nil }
            count += 1
            return count
        }
        guard sent == nil else { return }
        throw StepFailure(
            .budgetExceeded,
            "\(what) would be request \(limit + 1), past limits.max_requests (\(limit)); nothing was published")
    }

    /// Requests counted so far.
    public var requestsSent: Int { requests.withLock { $0 } }

    /// Checks rows and bytes read in this attempt before they are written: fails when either
    /// has passed its limit. `source` names what was being read.
    public func check(rows: Int, bytes: Int64, reading source: String) throws(StepFailure) {
        if let limit = limits.maxRows, rows > limit {
            throw StepFailure(
                .budgetExceeded,
                "reading \(source) reached \(rows) rows, past limits.max_rows (\(limit)); the step stopped before writing them and nothing was published"
            )
        }
        if let limit = limits.maxBytes, bytes > limit {
            throw StepFailure(
                .budgetExceeded,
                "reading \(source) reached \(bytes) bytes, past limits.max_bytes (\(limit)); the step stopped before writing them and nothing was published"
            )
        }
    }
}
