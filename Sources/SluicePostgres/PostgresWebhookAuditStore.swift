import Foundation
import Logging
import PostgresNIO
import SluiceStorage

/// The webhook delivery audit log in the run store's schema (migration 3), on the run store's
/// pool. As with SQLite, which message ids were seen is not kept here: a delivery's run
/// carries `webhook:<id>` as its trigger key, under the run table's unique index.
public final class PostgresWebhookAuditStore: WebhookAuditStore {
    private let pool: PostgresPool
    private let table: String
    private let logger: Logger

    /// Uses the run store's schema and pool (the store opened and migrated it).
    public init(sharing runStore: PostgresRunStore) {
        pool = runStore.pool
        table = "\(runStore.schema).webhook_audit"
        logger = runStore.pool.logger
    }

    public func appendWebhookAudit(_ record: WebhookAuditRecord) async throws {
        let (table, logger) = (table, logger)
        try await pool.withConnection { connection in
            try await connection.execute(
                """
                INSERT INTO \(unescaped: table) (org, pipeline, message_id, outcome, reason, status, detail, request_id, run_id, at)
                VALUES (\(String(record.org.prefix(64))), \(String(record.pipeline.prefix(64))), \(record.messageID.map { String($0.prefix(256)) }),
                        \(record.outcome.rawValue), \(record.reason), \(record.status), \(String(record.detail.prefix(1000))),
                        \(record.requestID), \(record.runID), \(record.at.timeIntervalSince1970))
                """, logger: logger)
        }
    }

    public func pruneWebhookRefusals(before cutoff: Date, keep: Int) async throws -> Int {
        let (table, logger) = (table, logger)
        return try await pool.transaction { connection in
            var deleted = try await connection.rows(
                "DELETE FROM \(unescaped: table) WHERE outcome = 'refused' AND at < \(cutoff.timeIntervalSince1970) RETURNING seq",
                logger: logger
            ).count
            // Of the rest, the newest `keep` by seq stay: every refusal before the oldest of them goes.
            let oldestKept: Int64? =
                keep > 0
                ? try await connection.rows(
                    "SELECT seq FROM \(unescaped: table) WHERE outcome = 'refused' ORDER BY seq DESC LIMIT 1 OFFSET \(keep - 1)",
                    logger: logger
                ).first?.decode(Int64.self) : Int64.max
            if let oldestKept {
                deleted += try await connection.rows(
                    "DELETE FROM \(unescaped: table) WHERE outcome = 'refused' AND seq < \(oldestKept) RETURNING seq", logger: logger
                ).count
            }
            return deleted
        }
    }

    public func webhookAudit(org: String, pipeline: String?, limit: Int) async throws -> [WebhookAuditRecord] {
        let (table, logger) = (table, logger)
        return try await pool.withConnection { connection in
            try await connection.rows(
                """
                SELECT org, pipeline, message_id, outcome, reason, status, detail, request_id, run_id, at FROM \(unescaped: table)
                WHERE org = \(org) AND (\(pipeline)::text IS NULL OR pipeline = \(pipeline)) ORDER BY seq DESC LIMIT \(limit)
                """, logger: logger
            ).map { row in
                let (org, pipeline, messageID, outcome, reason, status, detail, requestID, runID, at) = try row.decode(
                    (String, String, String?, String, String, Int, String, String, String?, Double).self)
                return WebhookAuditRecord(
                    org: org, pipeline: pipeline, messageID: messageID, outcome: WebhookAuditRecord.Outcome(rawValue: outcome) ?? .refused,
                    reason: reason, status: status, detail: detail, requestID: requestID, runID: runID, at: Date(timeIntervalSince1970: at))
            }
        }
    }
}
