import Foundation
import SluiceEngine
import SluiceRuntime
import SluiceSQLite
import SluiceServer
import SluiceStorage
import Testing

/// Refused deliveries are kept within an age and a count; accepted ones stay.
struct WebhookAuditRetentionTests {
    static func record(_ outcome: WebhookAuditRecord.Outcome, at: Date, id: String) -> WebhookAuditRecord {
        WebhookAuditRecord(
            org: "acme", pipeline: "genai_costs_daily", messageID: id, outcome: outcome,
            reason: outcome == .accepted ? "accepted" : "bad_signature", status: outcome == .accepted ? 202 : 401,
            detail: "d", requestID: "req_\(id)", at: at)
    }

    @Test func refusalsOlderThanTheRetentionOrBeyondTheCountAreDeletedAndAcceptancesKept() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteWebhookAuditStore(path: folder.appendingPathComponent("runs.sqlite").path)
        let now = Date()
        for index in 0..<4 { try await store.appendWebhookAudit(Self.record(.refused, at: now.addingTimeInterval(-40 * 86_400), id: "old\(index)")) }
        try await store.appendWebhookAudit(Self.record(.accepted, at: now.addingTimeInterval(-40 * 86_400), id: "kept"))
        for index in 0..<5 { try await store.appendWebhookAudit(Self.record(.refused, at: now.addingTimeInterval(Double(index)), id: "new\(index)")) }

        let deleted = try await store.pruneWebhookRefusals(before: now.addingTimeInterval(-30 * 86_400), keep: 3)
        #expect(deleted == 6, "4 too old, then 2 beyond the newest 3")
        let left = try await store.webhookAudit(org: "acme", pipeline: nil, limit: 100)
        #expect(left.map(\.messageID) == ["new4", "new3", "new2", "kept"])
        #expect(try await store.pruneWebhookRefusals(before: now.addingTimeInterval(-30 * 86_400), keep: 3) == 0)
        #expect(try await store.pruneWebhookRefusals(before: now.addingTimeInterval(-30 * 86_400), keep: 0) == 3)
        #expect(try await store.webhookAudit(org: "acme", pipeline: nil, limit: 100).map(\.messageID) == ["kept"])
    }

    @Test func theServerPrunesAtItsFirstRefusal() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let live = try await LiveServer.start(project: project) { configuration in
            configuration.environment = ProcessInfo.processInfo.environment.merging(WebhookTests.keyEnvironment) { $1 }
                .merging(["SLUICE_WEBHOOK_AUDIT_RETENTION": "1d", "SLUICE_WEBHOOK_AUDIT_MAX_REFUSALS": "1000"]) { $1 }
        }
        let store = live.server.services.webhookAudit
        for index in 0..<3 {
            try await store.appendWebhookAudit(Self.record(.refused, at: Date().addingTimeInterval(-2 * 86_400), id: "old\(index)"))
        }
        try await WebhookTests.createHook(live, secret: WebhookTests.secret1)
        let refused = try await WebhookTests.deliver(live, id: "msg_bad", body: WebhookTests.payload, secret: WebhookTests.secret2)
        #expect(refused.status == 401)
        #expect(try await live.server.webhookAuditRecords(org: "acme").map(\.messageID) == ["msg_bad"])
        try await live.stop()
    }
}
