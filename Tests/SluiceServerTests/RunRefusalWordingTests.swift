import Foundation
import SluiceServer
import Testing

/// The words the API and webhooks give a start they refuse: each says how its own caller gives
/// a param, and when the server has no keys or is shutting down; nothing is created.
struct RunRefusalWordingTests {
    /// `needs_day`: a pipeline whose param `day` has no default.
    static let needsDay = [
        "schemas/events_raw.json": #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "day", "type": "DATE"}]"#,
        "pipelines/needs_day.yml": """
        pipeline: needs_day
        defaults: { timeout: 10m }
        params:
          day: { type: date, required: true }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: "data/${{ params.day }}.csv" }, table: events_raw, schema: schemas/events_raw.json } }
        """,
    ]

    @Test func aMissingParamIsExplainedInTheWordsOfTheCaller() async throws {
        let live = try await WebhookTests.start(try exampleProject(extra: Self.needsDay))
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let triggered = try await live.post("/v1/orgs/acme/pipelines/needs_day/runs", token: token, json: "{}")
        #expect(triggered.status == 422, "\(triggered.text)")
        #expect(triggered.errorCode == "invalid_params")
        #expect(triggered.error["message"] as? String == "param 'day' is required; give it in params as day=…")

        try await WebhookTests.createHook(live, pipeline: "needs_day", secret: WebhookTests.secret1, metadata: "{}")
        let delivered = try await WebhookTests.deliver(live, path: "/v1/hooks/acme/needs_day", id: "msg_day", body: "{}")
        #expect(delivered.status == 422, "\(delivered.text)")
        #expect(delivered.errorCode == "invalid_params")
        #expect(delivered.error["message"] as? String == "param 'day' is required; map it from the payload with --param day=…")
        #expect(try await live.server.webhookAuditRecords(org: "acme", pipeline: "needs_day").map(\.reason) == ["invalid_payload"])
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }

    @Test func aTriggerOfAPipelineThatDecryptsCredentialsNeedsAServerWithKeys() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            configuration.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLUICE_KEY") }
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let triggered = try await live.post("/v1/orgs/acme/pipelines/openai_usage_api/runs", token: token, json: "{}")
        #expect(triggered.status == 503, "\(triggered.text)")
        #expect(triggered.errorCode == "keys_unavailable")
        #expect(
            triggered.error["message"] as? String
                == "pipeline 'openai_usage_api' decrypts credentials, and this server has no keys (start it with SLUICE_KEYRING or the passphrase variables set)"
        )
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }

    @Test func aServerThatStoppedTakingRunsRefusesTriggersAndDeliveries() async throws {
        let live = try await WebhookTests.start(try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        try await WebhookTests.createHook(live, secret: WebhookTests.secret1)
        await live.server.stopRuns()

        let triggered = try await live.post("/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, json: "{}")
        #expect(triggered.status == 503, "\(triggered.text)")
        #expect(triggered.errorCode == "shutting_down")
        #expect(triggered.error["message"] as? String == "the server is shutting down and starts no runs; try again shortly")

        let delivered = try await WebhookTests.deliver(live, id: "msg_late", body: WebhookTests.payload)
        #expect(delivered.status == 503, "\(delivered.text)")
        #expect(delivered.errorCode == "shutting_down")
        #expect(delivered.error["message"] as? String == "the server is shutting down; deliver again shortly")
        #expect(try await live.server.webhookAuditRecords(org: "acme").map(\.reason) == ["unavailable"])
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }
}
