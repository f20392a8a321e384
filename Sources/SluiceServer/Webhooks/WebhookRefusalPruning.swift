import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Keeps refused deliveries in the audit log within `WebhookAuditRetention`: anyone who can
/// reach the server can be refused, and each refusal is a row. At the first refusal this
/// process audits, and after every `WebhookAuditRetention.pruneEvery` more, refusals older
/// than the retention or beyond the newest `maxRefusals` are deleted.
actor WebhookRefusalPruning {
    private let store: any WebhookAuditStore
    private let retention: WebhookAuditRetention
    private let logger: Logger
    private var audited = 0

    init(store: any WebhookAuditStore, retention: WebhookAuditRetention, logger: Logger) {
        self.store = store
        self.retention = retention
        self.logger = logger
    }

    /// Called after a refusal was written to the audit log.
    func refusalAudited(now: Date = Date()) async {
        audited += 1
        guard audited % WebhookAuditRetention.pruneEvery == 1 else { return }
        let cutoff = now.addingTimeInterval(-retention.maxAge.timeInterval)
        do {
            let deleted = try await store.pruneWebhookRefusals(before: cutoff, keep: retention.maxRefusals)
            if deleted > 0 {
                logger.info(
                    "webhook audit: deleted \(deleted) refusal(s) older than \(DurationText.format(retention.maxAge)) or beyond the newest \(retention.maxRefusals)"
                )
            }
        } catch {
            logger.error("webhook audit: could not prune refusals: \(SecretRedactor.shared.redact("\(error)"))")
        }
    }
}
