/// Why a step failed, in words a person can act on, with a stable code for tools and whether
/// trying again could help. Transient failures (timeouts, 429, 5xx, a locked database) are
/// retried by the step's policy; permanent ones (bad config, 401, bad data) are not.
public struct StepFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: FailureCode
    public var message: String
    public var transient: Bool
    /// Where in the pipeline or input file the problem is, when it has a place.
    public var location: SourceLocation?
    /// For a transient failure, the least the retry should wait (a provider's `Retry-After`);
    /// the retry waits this or the policy's backoff, whichever is longer, and fails the step
    /// now if this is beyond the policy's `max_delay`.
    public var retryAfter: Duration?

    public init(
        _ code: FailureCode, _ message: String, transient: Bool = false, at location: SourceLocation? = nil,
        retryAfter: Duration? = nil
    ) {
        self.code = code
        self.message = message
        self.transient = transient
        self.location = location
        self.retryAfter = retryAfter
    }

    public var description: String {
        if let location { return "\(location): \(message) [\(code)]" }
        return "\(message) [\(code)]"
    }

    /// A step's config could not be evaluated or does not fit the processor.
    public static func config(_ message: String, at location: SourceLocation? = nil) -> StepFailure {
        StepFailure(.invalidConfig, message, at: location)
    }

    /// The step used more than its timeout.
    public static func timedOut(after limit: Duration, abandoned: Bool) -> StepFailure {
        StepFailure(
            .timedOut,
            abandoned
                ? "the step ran past its \(DurationText.format(limit)) timeout and ignored cancellation; it was abandoned"
                : "the step ran past its \(DurationText.format(limit)) timeout and was cancelled", transient: true)
    }
}
