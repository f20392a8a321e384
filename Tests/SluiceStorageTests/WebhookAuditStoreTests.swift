import Foundation
import SluiceStorage
import SluiceTestSupport
import Testing

/// What every webhook audit store does, whichever backend keeps it.
struct WebhookAuditStoreTests {
    func delivery(_ number: Int, pipeline: String = "orders", refused: Bool, org: String = "acme") -> WebhookAuditRecord {
        WebhookAuditRecord(
            org: org, pipeline: pipeline, messageID: "msg_\(number)", outcome: refused ? .refused : .accepted,
            reason: refused ? "bad_signature" : "accepted", status: refused ? 401 : 202, detail: "delivery \(number)",
            requestID: "req-\(number)", runID: refused ? nil : "r\(number)", at: Date(timeIntervalSince1970: 1_790_000_000 + Double(number)))
    }

    @Test(arguments: Backend.all)
    func deliveriesAreListedNewestFirstPerHook(_ backend: Backend) async throws {
        try await backend.withStores { stores in
            let audit = stores.webhookAudit
            for number in 1...4 { try await audit.appendWebhookAudit(delivery(number, refused: number % 2 == 0)) }
            try await audit.appendWebhookAudit(delivery(5, pipeline: "refunds", refused: false))
            try await audit.appendWebhookAudit(delivery(6, refused: true, org: "globex"))
            let long = String(repeating: "x", count: 80)
            try await audit.appendWebhookAudit(delivery(7, pipeline: long, refused: true, org: long))

            #expect(
                try await audit.webhookAudit(org: "acme", pipeline: nil, limit: 10).map(\.messageID) == ["msg_5", "msg_4", "msg_3", "msg_2", "msg_1"])
            #expect(try await audit.webhookAudit(org: "acme", pipeline: "orders", limit: 2).map(\.messageID) == ["msg_4", "msg_3"])
            #expect(try await audit.webhookAudit(org: "acme", pipeline: "orders", limit: 10).last == delivery(1, refused: false))
            let cut = try await audit.webhookAudit(org: String(long.prefix(64)), pipeline: nil, limit: 10)
            #expect(cut.map(\.pipeline) == [String(long.prefix(64))], "org and pipeline are cut to 64 characters")
        }
    }

    @Test(arguments: Backend.all)
    func pruningDeletesOldAndSurplusRefusalsOnly(_ backend: Backend) async throws {
        try await backend.withStores { stores in
            let audit = stores.webhookAudit
            for number in 1...10 { try await audit.appendWebhookAudit(delivery(number, refused: number != 5)) }
            // Refusals before 1_790_000_003 (1 and 2) are old; of the rest (3, 4, 6 … 10), 4 stay.
            let deleted = try await audit.pruneWebhookRefusals(before: Date(timeIntervalSince1970: 1_790_000_003), keep: 4)
            #expect(deleted == 2 + 3)
            #expect(
                try await audit.webhookAudit(org: "acme", pipeline: nil, limit: 100).map(\.messageID) == [
                    "msg_10", "msg_9", "msg_8", "msg_7", "msg_5",
                ])
            #expect(try await audit.pruneWebhookRefusals(before: Date(timeIntervalSince1970: 0), keep: 0) == 4, "keep 0: every refusal")
            #expect(try await audit.webhookAudit(org: "acme", pipeline: nil, limit: 100).map(\.messageID) == ["msg_5"])
        }
    }
}
