import Foundation
import SluiceModel

/// One webhook delivery as the audit log keeps it: accepted (with the run it started) or
/// refused (with the reason). Nothing of the body or the signature is kept.
public struct WebhookAuditRecord: Sendable, Hashable {
    public enum Outcome: String, Sendable, Codable {
        case accepted, refused
    }

    /// As the URL named them (cut to 64 characters; refusals may name orgs and pipelines
    /// that do not exist).
    public var org: String
    public var pipeline: String
    /// The `webhook-id` header, when there was a sane one.
    public var messageID: String?
    public var outcome: Outcome
    /// `accepted`, or why it was refused: `missing_header`, `bad_signature`, `stale_timestamp`,
    /// `future_timestamp`, `replayed`, `unknown_hook`, `invalid_payload`, …
    public var reason: String
    /// The HTTP status of the answer.
    public var status: Int
    /// What happened, in words; never a secret.
    public var detail: String
    public var requestID: String
    public var runID: String?
    public var at: Date

    public init(
        org: String, pipeline: String, messageID: String?, outcome: Outcome, reason: String, status: Int, detail: String,
        requestID: String, runID: String? = nil, at: Date
    ) {
        self.org = org
        self.pipeline = pipeline
        self.messageID = messageID
        self.outcome = outcome
        self.reason = reason
        self.status = status
        self.detail = detail
        self.requestID = requestID
        self.runID = runID
        self.at = at
    }
}

/// The audit log of webhook deliveries. SluiceSQLite keeps it in the run store database.
public protocol WebhookAuditStore: Sendable {
    func appendWebhookAudit(_ record: WebhookAuditRecord) async throws

    /// An org's records (of one pipeline, if given), newest first.
    func webhookAudit(org: String, pipeline: String?, limit: Int) async throws -> [WebhookAuditRecord]

    /// Deletes refusals recorded before `cutoff`, and all but the newest `keep` refusals;
    /// returns how many it deleted. Accepted deliveries stay: each started a run.
    func pruneWebhookRefusals(before cutoff: Date, keep: Int) async throws -> Int
}

/// How long refused webhook deliveries stay in the audit log. Anyone who can reach the server
/// can be refused, so the refusals are bounded by age and by count.
public struct WebhookAuditRetention: Sendable, Hashable {
    /// Refusals older than this are deleted (`webhook_audit.retention`, default 30d).
    public var maxAge: Duration
    /// At most this many refusals are kept, the newest (`webhook_audit.max_refusals`, default
    /// 100,000).
    public var maxRefusals: Int
    /// Pruning runs at the first refusal a process records and after every this many more.
    public static let pruneEvery = 1_000

    /// The defaults are the project settings' (`webhook_audit` in sluice.yml).
    public init(maxAge: Duration = ProjectSettings().webhookAuditRetention, maxRefusals: Int = ProjectSettings().webhookAuditMaxRefusals) {
        self.maxAge = maxAge
        self.maxRefusals = maxRefusals
    }

    /// The retention `settings` ask for.
    public init(_ settings: ProjectSettings) {
        self.init(maxAge: settings.webhookAuditRetention, maxRefusals: settings.webhookAuditMaxRefusals)
    }
}
