import Foundation
import NIOHTTP1
import SluiceEngine
import SluiceModel
import SluiceStorage

/// The error codes a `notify` step fails with; docs/pipeline-format.md ("notify") lists them.
/// Stable: alerts on alerts match on them.
public enum NotifyErrorCode: String, Sendable, CaseIterable {
    /// The webhook answered with a status that says the notification will never be taken as
    /// sent (a 4xx other than 408 and 429, a redirect). Permanent.
    case rejected = "notify_rejected"
    /// 429. Transient; the retry waits at least the webhook's Retry-After.
    case rateLimited = "notify_rate_limited"
    /// 408, 5xx, a timeout, a refused connection or one closed mid-answer. Transient.
    case unavailable = "notify_unavailable"

    var isTransient: Bool { self != .rejected }
}

/// `notify`: POSTs a run's summary (`NotifySummary`) to a webhook. The URL is treated as a
/// secret whatever it came from: only its host appears in logs and messages.
public struct NotifyProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .notify }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let settings = ValidatorSettings(step, spec)
        let webhook = try Webhook(settings.optionalText("url"), at: step.config["url"]?.location ?? step.config.location)
        do {
            let format = try settings.text("format")
            guard format == "json" || format == "slack" else {
                throw StepFailure.config("'format' must be json or slack, not \(shown(format))", at: step.config["format"]?.location)
            }
            var given = settings.optionalText("link").flatMap { $0.isEmpty ? nil : $0 }
            if given == nil { given = Self.defaultLink(step) }
            let link = given.flatMap { text -> String? in
                guard NotifySummary.isAbsoluteHTTP(text) else {
                    step.logger.notice(
                        "notify: the link is not an absolute http or https URL; it is left out",
                        metadata: ["link": "\(shown(webhook.scrub(text)))"])
                    return nil
                }
                return text
            }
            let summary = NotifySummary(step: step, message: settings.optionalText("message"), link: link) {
                webhook.scrub(SecretRedactor.shared.redact($0))
            }
            var request = ProviderRequest(
                provider: "the notify webhook", method: .POST, url: webhook.url,
                headers: [("Content-Type", "application/json")],
                body: format == "slack" ? summary.slackBody : summary.jsonBody,
                timeout: try settings.timeout())
            request.hidesPath = true
            request.destination = DestinationCheck.forField("url", of: step)
            let response = try await ProviderHTTP.send(request, logger: step.logger) { reason in
                .notify(.unavailable, "\(webhook.shown) did not answer: \(reason)")
            }
            guard response.isSuccess else { throw failure(for: response, webhook: webhook) }
            return ["http_status": .number(Double(response.status))]
        } catch let failure as StepFailure {
            throw failure.scrubbing(webhook)
        }
    }

    /// `<public_url>/v1/runs/<run id>` when the project sets `public_url` (sluice.yml, or
    /// SLUICE_PUBLIC_URL in the run's environment, as the run read them when it started); nil
    /// otherwise.
    static func defaultLink(_ step: StepContext) -> String? {
        step.project?.settings.runLink(step.runID)
    }

    /// What a status other than 2xx means for the notification.
    func failure(for response: ProviderResponse, webhook: Webhook) -> StepFailure {
        let status = response.status
        let detail = Self.detail(of: response, webhook: webhook).map { " (\($0))" } ?? ""
        let wait = RetryAfter.wait(response.header("Retry-After"))
        let asked = wait.map { "; it asked to wait \(DurationText.format($0))" } ?? ""
        switch status {
        case 429:
            return .notify(.rateLimited, "\(webhook.shown) is rate-limiting: HTTP 429\(detail)\(asked)", retryAfter: wait)
        case 408, 500...599:
            return .notify(.unavailable, "\(webhook.shown) is unavailable: HTTP \(status)\(detail)\(asked)", retryAfter: wait)
        case 300...399:
            return .notify(
                .rejected,
                """
                \(webhook.shown) answered HTTP \(status), a redirect, which is not followed (the notification \
                would go to another address); point 'url' at where it redirects
                """)
        default:
            let hint = [404, 410].contains(status) ? "; check 'url': the webhook may have been removed" : ""
            return .notify(.rejected, "\(webhook.shown) refused the notification: HTTP \(status)\(detail)\(hint)")
        }
    }

    /// The webhook's reason for a refusal, shown masked and short: a JSON error's fields, or a
    /// one-word plain answer like Slack's `invalid_payload` or `no_service`.
    static func detail(of response: ProviderResponse, webhook: Webhook) -> String? {
        // Not a word of an answer from a URL the run's caller chose.
        guard response.quotesBody else { return nil }
        if let detail = response.errorDetail { return webhook.scrub(detail) }
        let text = String(decoding: response.body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.count <= 100, !text.contains("<") else { return nil }
        return shown(webhook.scrub(SecretRedactor.shared.redact(text)))
    }
}

/// The webhook a `notify` step posts to, checked without ever showing its URL.
struct Webhook: Sendable {
    let url: URL
    /// How messages name it: "the notify webhook (host hooks.slack.com)".
    let shown: String
    /// The forms of the URL that must not appear in any text that leaves the step.
    private let hidden: [String]

    init(_ text: String?, at location: SourceLocation) throws(StepFailure) {
        let text = (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw .config(
                "'url' is empty: its value (an environment variable or a secret?) is not set, so no notification was sent",
                at: location)
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = url.host, !host.isEmpty
        else {
            throw .config(
                "'url' must be an http or https URL with a host (the value is not shown: a webhook URL is often a secret)",
                at: location)
        }
        guard url.user == nil, url.password == nil else {
            throw .config("'url' must not carry a user or password", at: location)
        }
        self.url = url
        shown = "the notify webhook (host \(host)\(url.port.map { ":\($0)" } ?? ""))"
        var hidden = [text, url.absoluteString]
        // The path or query alone can be the secret (a Slack webhook's path is); short ones
        // like `/hook` are ordinary words.
        if let parts = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            hidden += [parts.percentEncodedPath, parts.percentEncodedQuery ?? ""].filter { $0.count >= 8 }
        }
        self.hidden = hidden.sorted { $0.count > $1.count }
    }

    /// `text` with every form of the URL replaced.
    func scrub(_ text: String) -> String {
        hidden.reduce(text) { $0.replacingOccurrences(of: $1, with: "(webhook url)") }
    }
}

extension StepFailure {
    static func notify(_ code: NotifyErrorCode, _ message: String, retryAfter: Duration? = nil) -> StepFailure {
        StepFailure(FailureCode(code), message, transient: code.isTransient, retryAfter: code.isTransient ? retryAfter : nil)
    }

    /// The same failure without the webhook's URL in its message: a last guard, since no
    /// message is built from it.
    func scrubbing(_ webhook: Webhook) -> StepFailure {
        var copy = self
        copy.message = webhook.scrub(message)
        return copy
    }
}
