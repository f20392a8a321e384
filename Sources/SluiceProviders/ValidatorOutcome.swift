import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// What a credential check found, as the validators' `status` output and failure messages
/// say it. `valid` and `partiallyValid` end the step successfully; the others fail it with one
/// of the `ValidatorErrorCode`s.
public enum ValidatorOutcome: String, Sendable, CaseIterable {
    case valid
    case invalid
    case rateLimited = "rate_limited"
    case unavailable
    case partiallyValid = "partially_valid"
    case expired
}

/// The error codes a validator step fails with. They are stable: tools and alerts match on
/// them, and docs/pipeline-format.md ("Validator outcomes and error codes") lists them. Add
/// new ones; never rename or reuse one.
public enum ValidatorErrorCode: String, Sendable, CaseIterable {
    /// 401 or 403: the provider refused the credential. Permanent.
    case credentialInvalid = "credential_invalid"
    /// The credential was valid once and is no more (GCP `invalid_grant`: key disabled, deleted
    /// or expired). Permanent.
    case credentialExpired = "credential_expired"
    /// The secret can't be what it claims to be (a service-account JSON without `private_key`,
    /// a key with line breaks). Permanent; the value is never shown.
    case credentialMalformed = "credential_malformed"
    /// 429. Transient; the retry waits at least the provider's Retry-After.
    case rateLimited = "rate_limited"
    /// 5xx, a timeout, a refused connection or one closed mid-response. Transient.
    case providerUnavailable = "provider_unavailable"
    /// A success whose body is not the JSON the check needs (a proxy's page, a truncated
    /// document). Transient: it is usually a gateway or an outage page, not the credential.
    case providerBadResponse = "provider_bad_response"
    /// Any other status (3xx, which is not followed, or a 4xx such as 400 or 404). Permanent:
    /// usually a wrong base URL, model or project.
    case providerUnexpectedStatus = "provider_unexpected_status"

    /// The outcome a failure with this code stands for.
    public var outcome: ValidatorOutcome? {
        switch self {
        case .credentialInvalid, .credentialMalformed: return .invalid
        case .credentialExpired: return .expired
        case .rateLimited: return .rateLimited
        case .providerUnavailable, .providerBadResponse: return .unavailable
        case .providerUnexpectedStatus: return nil
        }
    }

    /// Whether the executor retries a step that failed with this code.
    public var isTransient: Bool {
        switch self {
        case .rateLimited, .providerUnavailable, .providerBadResponse: return true
        case .credentialInvalid, .credentialExpired, .credentialMalformed, .providerUnexpectedStatus: return false
        }
    }
}

extension StepFailure {
    /// A validator's failure: the code decides whether it is retried; the message says the
    /// outcome first so that a stored reason reads on its own.
    static func validator(
        _ code: ValidatorErrorCode, _ message: String, retryAfter: Duration? = nil,
        at location: SourceLocation? = nil
    ) -> StepFailure {
        let prefix = code.outcome.map { "\($0.rawValue): " } ?? ""
        return StepFailure(FailureCode(code), prefix + message, transient: code.isTransient, at: location, retryAfter: retryAfter)
    }

    /// The same failure with every occurrence of the secrets masked, as a last guard: no
    /// message is built from a secret, but a provider could echo one back.
    func masking(_ secrets: [String]) -> StepFailure {
        var copy = self
        for secret in secrets where secret.count >= 4 {
            copy.message = copy.message.replacingOccurrences(of: secret, with: "(secret)")
        }
        return copy
    }
}

extension ValidatorOutcome {
    /// The outputs of a step that ended with this outcome.
    func outputs(httpStatus: Int, extra: [String: ExpressionValue] = [:]) -> [String: ExpressionValue] {
        ["status": .string(rawValue), "http_status": .number(Double(httpStatus))].merging(extra) { _, new in new }
    }
}

/// The provider module's codes join the engine's: a validator's or notify's code is a
/// `FailureCode` like any other.
extension FailureCode {
    public init(_ code: ValidatorErrorCode) {
        self.init(rawValue: code.rawValue)
    }

    public init(_ code: NotifyErrorCode) {
        self.init(rawValue: code.rawValue)
    }
}
