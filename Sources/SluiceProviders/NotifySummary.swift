import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// What `notify` tells a webhook about a run: who, which run, and for a failed run where and
/// why it failed. Every text has been through `mask` (the redactor, and the webhook's own URL
/// taken out) and is at most `ProcessorSpec.notifyTextLimit` characters. Unknown fields are
/// left out of the JSON rather than sent as null.
struct NotifySummary: Sendable {
    var pipeline: String
    var org: String
    var runID: String
    var logicalDate: String?
    /// `failed` in an `on_failure` handler; `running` when notify is a step of the run.
    var state: String
    var failedStep: String?
    var errorCode: String?
    var error: String?
    /// When the failure happened, ISO 8601 in UTC.
    var failedAt: String?
    var message: String?
    var link: String?
    /// The whole summary in one plain line, for webhooks that show a single text field.
    var summary: String

    init(step: StepContext, message: String?, link: String?, mask: (String) -> String) {
        func bounded(_ text: String?) -> String? {
            guard let text, !text.isEmpty else { return nil }
            return Self.bounded(mask(text))
        }
        pipeline = step.pipeline
        org = step.org
        runID = step.runID
        logicalDate = step.logicalDate
        self.message = bounded(message)
        self.link = link.map(mask)
        if let failure = step.runFailure {
            state = "failed"
            failedStep = failure.stepID
            errorCode = failure.code.rawValue
            error = bounded(failure.message)
            failedAt = Self.timestamp(failure.at)
        } else {
            state = "running"
        }
        summary = ""
        summary = headline(slack: false)
    }

    /// `{…}` with the fields above, always in this order, so every attempt sends the same bytes.
    var jsonBody: Data {
        Self.jsonObject([
            ("pipeline", pipeline), ("org", org), ("run_id", runID), ("logical_date", logicalDate), ("state", state),
            ("failed_step", failedStep), ("error_code", errorCode), ("error", error), ("failed_at", failedAt),
            ("message", message), ("link", link), ("summary", summary),
        ])
    }

    /// `{"text": …}` for a Slack incoming webhook: the headline, the message, and the run (a
    /// link to it when there is one).
    var slackBody: Data {
        var lines = [headline(slack: true)]
        if let message { lines.append(Self.slackEscaped(message)) }
        let run = "Run \(runID)"
        let linked = link.map { "<\(Self.slackLinkTarget($0))|\(Self.slackEscaped(run))>" } ?? Self.slackEscaped(run)
        lines.append(linked + (logicalDate.map { " · logical date \(Self.slackEscaped($0))" } ?? ""))
        return Self.jsonObject([("text", lines.joined(separator: "\n"))])
    }

    /// A JSON object of the fields that have a value, in the order given.
    static func jsonObject(_ fields: [(key: String, value: String?)]) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        func quoted(_ text: String) -> String {
            (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
        }
        let members = fields.compactMap { field in field.value.map { "\(quoted(field.key)):\(quoted($0))" } }
        return Data(("{" + members.joined(separator: ",") + "}").utf8)
    }

    /// "Pipeline p (org o) failed at step s: code — error"; in Slack's markup with an emoji.
    func headline(slack: Bool) -> String {
        func text(_ value: String) -> String { slack ? Self.slackEscaped(value) : value }
        let name = slack ? "*\(text(pipeline))*" : pipeline
        let who = "Pipeline \(name) (org \(text(org)))"
        guard state == "failed" else {
            let line = "\(who), run \(text(runID)), is running"
            return slack ? ":information_source: \(line)" : line
        }
        var line = who + " failed"
        if let failedStep { line += " at step " + (slack ? "`\(failedStep)`" : failedStep) }
        line += ": \(text(errorCode ?? "error"))"
        if let error { line += " — \(text(error))" }
        return slack ? ":x: \(line)" : line
    }

    /// At most `ProcessorSpec.notifyTextLimit` characters, the last one `…` when cut.
    static func bounded(_ text: String, limit: Int = ProcessorSpec.notifyTextLimit) -> String {
        // Secrets first, then the cut: a cut piece of a secret is no longer recognisable.
        let text = SecretRedactor.shared.redact(text)
        guard text.count > limit else { return text }
        return String(text.prefix(limit - 1)) + "…"
    }

    /// Slack reads `&`, `<` and `>` as markup in text.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A URL inside `<url|label>`, where `|` and `>` would end it early.
    static func slackLinkTarget(_ url: String) -> String {
        url.replacingOccurrences(of: "|", with: "%7C").replacingOccurrences(of: ">", with: "%3E")
            .replacingOccurrences(of: "<", with: "%3C")
    }

    static func isAbsoluteHTTP(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else { return false }
        return (scheme == "http" || scheme == "https") && !(url.host ?? "").isEmpty
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
