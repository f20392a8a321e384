import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// How an answer becomes an outcome; the one mapping every validator uses.
extension ProviderResponse {
    /// The failure an answer that is not a success means, for a check of `credential` ("the
    /// key", "the secret"): 401/403 invalid, 429 rate limited, 5xx unavailable, the rest
    /// unexpected. Messages say the provider, the status and the provider's error type or
    /// code (shown masked and truncated), never the credential or the provider's free text.
    func failure(checking credential: String) -> StepFailure {
        let detail = errorDetail.map { " (\($0))" } ?? ""
        switch status {
        case 401, 403:
            return .validator(.credentialInvalid, "\(provider) refused \(credential): HTTP \(status)\(detail)")
        case 429:
            let wait = RetryAfter.wait(header("Retry-After"))
            let asked = wait.map { "; it asked to wait \(DurationText.format($0))" } ?? ""
            return .validator(
                .rateLimited, "\(provider) rate-limited the check: HTTP 429\(detail)\(asked); \(credential) is not known to be invalid",
                retryAfter: wait)
        case 500...599:
            return .validator(
                .providerUnavailable, "\(provider) (\(shownURL)) is unavailable: HTTP \(status)\(detail)",
                retryAfter: status == 503 ? RetryAfter.wait(header("Retry-After")) : nil)
        case 300...399:
            return .validator(
                .providerUnexpectedStatus,
                """
                \(provider) (\(shownURL)) answered HTTP \(status), a redirect, which is not followed so that \(credential) \
                never goes to another address; point the URL at where it redirects
                """)
        default:
            let hint = status == 404 ? "; check the base URL (the check calls \(shownURL))" : ""
            return .validator(
                .providerUnexpectedStatus,
                "\(provider) (\(shownURL)) answered HTTP \(status)\(detail), which says nothing about \(credential)\(hint)")
        }
    }

    /// A success whose body is not the JSON the check needs.
    func badBody(_ expected: String) -> StepFailure {
        .validator(
            .providerBadResponse,
            "\(provider) (\(shownURL)) answered HTTP \(status) but the body is not \(expected) (\(body.count) bytes); a proxy or an outage page answered, or the base URL is wrong"
        )
    }

    /// The provider's machine-readable error fields, as shown in messages:
    /// `{"error": {"type", "code", "status"}}` (OpenAI, Anthropic, Google APIs) or OAuth's
    /// `{"error": "invalid_grant", "error_description": …}`. Free-text messages are left out:
    /// some providers quote part of the key in them. Nil when the run's caller chose the URL.
    var errorDetail: String? {
        guard quotesBody, let json = jsonObject else { return nil }
        var parts: [String] = []
        if let error = json["error"] as? [String: Any] {
            for field in ["type", "code", "status"] {
                if let value = error[field] as? String, !value.isEmpty { parts.append("\(field) \(shown(value))") }
            }
        } else if let error = json["error"] as? String {
            parts.append("error \(shown(error))")
            if let description = json["error_description"] as? String, !description.isEmpty {
                parts.append(shown(description))
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    /// The OAuth `error` of a token endpoint's answer.
    var oauthError: String? { jsonObject?["error"] as? String }
}
