import Foundation
import GRDB
import SluiceStorage

/// The webhook delivery audit log in the run store's SQLite database (migration v6). Which
/// message ids were seen is not kept here: a delivery's run carries `webhook:<id>` as its
/// trigger key, under the run table's unique index.
public final class SQLiteWebhookAuditStore: WebhookAuditStore, RunStoreDatabaseShare {
    private let database: DatabasePool

    public init(database: DatabasePool) {
        self.database = database
    }

    /// Migration v6 of the run store. Frozen: a later change is a new migration.
    static func createTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE webhook_audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    org TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    message_id TEXT,
                    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'refused')),
                    reason TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    detail TEXT NOT NULL,
                    request_id TEXT NOT NULL,
                    run_id TEXT,
                    at REAL NOT NULL
                );
                CREATE INDEX webhook_audit_hook ON webhook_audit (org, pipeline, seq);
                """)
    }

    public func appendWebhookAudit(_ record: WebhookAuditRecord) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO webhook_audit (org, pipeline, message_id, outcome, reason, status, detail, request_id, run_id, at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    String(record.org.prefix(64)), String(record.pipeline.prefix(64)), record.messageID.map { String($0.prefix(256)) },
                    record.outcome.rawValue, record.reason, record.status, String(record.detail.prefix(1000)),
                    record.requestID, record.runID, record.at.timeIntervalSince1970,
                ])
        }
    }

    public func pruneWebhookRefusals(before cutoff: Date, keep: Int) async throws -> Int {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM webhook_audit WHERE outcome = 'refused' AND at < ?", arguments: [cutoff.timeIntervalSince1970])
            var deleted = db.changesCount
            // Of the rest, the newest `keep` by seq stay: every refusal before the oldest of them goes.
            let oldestKept =
                keep > 0
                ? try Int64.fetchOne(
                    db,
                    sql: """
                        SELECT seq FROM webhook_audit WHERE outcome = 'refused' ORDER BY seq DESC LIMIT 1 OFFSET ?
                        """, arguments: [keep - 1]) : Int64.max
            if let oldestKept {
                try db.execute(sql: "DELETE FROM webhook_audit WHERE outcome = 'refused' AND seq < ?", arguments: [oldestKept])
                deleted += db.changesCount
            }
            return deleted
        }
    }

    public func webhookAudit(org: String, pipeline: String?, limit: Int) async throws -> [WebhookAuditRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM webhook_audit WHERE org = ? AND (? IS NULL OR pipeline = ?) ORDER BY seq DESC LIMIT ?
                    """, arguments: [org, pipeline, pipeline, limit]
            ).map { row in
                WebhookAuditRecord(
                    org: row["org"], pipeline: row["pipeline"], messageID: row["message_id"],
                    outcome: WebhookAuditRecord.Outcome(rawValue: row["outcome"]) ?? .refused, reason: row["reason"],
                    status: row["status"], detail: row["detail"], requestID: row["request_id"], runID: row["run_id"],
                    at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }
}
