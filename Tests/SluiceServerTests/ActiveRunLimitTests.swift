import Foundation
import SluiceEngine
import SluiceServer
import SluiceStorage
import Testing

/// A scheduled pipeline's `max_active_runs` holds for runs started over HTTP too: a trigger or
/// a delivery beyond it is refused with 429 and creates nothing, so it can come again.
struct ActiveRunLimitTests {
    /// `slow` (a few seconds of ingest) with a schedule whose max_active_runs is 1.
    static func project() throws -> URL {
        var files = slowPipeline
        files["pipelines/slow.yml"] = files["pipelines/slow.yml"]!.replacingOccurrences(
            of: "pipeline: slow\n", with: "pipeline: slow\nschedule: { cron: \"0 3 * * *\", timezone: UTC, max_active_runs: 1 }\n")
        return try exampleProject(extra: files)
    }

    @Test func aTriggerOrDeliveryBeyondMaxActiveRunsIsRefusedAndCreatesNothing() async throws {
        let live = try await WebhookTests.start(try Self.project())
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await WebhookTests.createHook(live, pipeline: "slow", secret: WebhookTests.secret1, metadata: "{}")
        let token = try await live.token("acme")
        let path = "/v1/orgs/acme/pipelines/slow/runs"

        let first = try await live.post(path, token: token, json: "{}", headers: ["Idempotency-Key": "first"])
        #expect(first.status == 202, "\(first.text)")
        let firstRun = try #require(first.json["id"] as? String)

        // The slow run is pending or running for seconds; these come within milliseconds.
        let second = try await live.post(path, token: token, json: "{}", headers: ["Idempotency-Key": "second"])
        #expect(second.status == 429, "\(second.text)")
        #expect(second.errorCode == "max_active_runs")
        #expect(second.header("Retry-After") == "30")
        #expect(
            second.error["message"] as? String
                == "pipeline 'slow' has 1 run pending or running in org 'acme', its schedule's max_active_runs; no run was created: try again when it ends"
        )
        // Repeating the first request still answers with its run: the key is looked up first.
        let repeated = try await live.post(path, token: token, json: "{}", headers: ["Idempotency-Key": "first"])
        #expect(repeated.status == 200, "\(repeated.text)")
        #expect(repeated.json["id"] as? String == firstRun)

        let hooked = try await WebhookTests.deliver(live, path: "/v1/hooks/acme/slow", id: "msg_slow", body: "{}")
        #expect(hooked.status == 429, "\(hooked.text)")
        #expect(hooked.errorCode == "max_active_runs")
        let runs = try await live.get("/v1/orgs/acme/runs?pipeline=slow", token: token).json["runs"] as? [[String: Any]] ?? []
        #expect(runs.compactMap { $0["id"] as? String } == [firstRun], "nothing was created for the refused requests")
        let metrics = try await live.get("/metrics", token: try await live.token(nil)).text
        #expect(hasSample(metrics, #"sluice_webhook_refusals_total{reason="max_active_runs"}"#, 1), "\(metrics)")
        let audit = try await live.server.webhookAuditRecords(org: "acme", pipeline: "slow")
        #expect(audit.map(\.reason) == ["max_active_runs"])

        // Once the run has ended, the same message id and the same key start runs.
        _ = try await live.post("/v1/runs/\(firstRun)/cancel", token: token)
        _ = try await live.waitForEnd(firstRun, token: token)
        let redelivered = try await WebhookTests.deliver(live, path: "/v1/hooks/acme/slow", id: "msg_slow", body: "{}")
        #expect(redelivered.status == 202, "\(redelivered.text)")
        let hookRun = try #require(redelivered.json["run_id"] as? String)
        _ = try await live.post("/v1/runs/\(hookRun)/cancel", token: token)
        _ = try await live.waitForEnd(hookRun, token: token)
        let retried = try await live.post(path, token: token, json: "{}", headers: ["Idempotency-Key": "second"])
        #expect(retried.status == 202, "\(retried.text)")
        try await live.stop()
    }

    @Test func anOrgAtTheServersLimitStartsNoMoreRunsWhileAnotherOrgStill() async throws {
        let live = try await LiveServer.start(project: try exampleProject(extra: slowPipeline)) { configuration in
            configuration.maxActiveRunsPerOrg = 1
            configuration.environment = ProcessInfo.processInfo.environment.merging(WebhookTests.keyEnvironment) { $1 }
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let acme = try await live.token("acme")
        let first = try await live.post("/v1/orgs/acme/pipelines/slow/runs", token: acme, json: "{}")
        #expect(first.status == 202, "\(first.text)")
        let firstRun = try #require(first.json["id"] as? String)

        // Another pipeline of the same org: the org's limit, not the pipeline's.
        let second = try await live.post("/v1/orgs/acme/pipelines/finops_data_quality/runs", token: acme, json: "{}")
        #expect(second.status == 429, "\(second.text)")
        #expect(second.errorCode == "org_active_runs")
        #expect(second.header("Retry-After") == "30")
        #expect(
            second.error["message"] as? String
                == "org 'acme' has 1 run pending or running, the most this server starts for one org (sluice serve --max-active-runs-per-org); no run was created: try again when one ends"
        )
        // A webhook delivery for the org is held back the same way, counted and audited.
        try await WebhookTests.createHook(live, pipeline: "finops_data_quality", secret: WebhookTests.secret1, metadata: "{}")
        let hooked = try await WebhookTests.deliver(live, path: "/v1/hooks/acme/finops_data_quality", id: "msg_org", body: "{}")
        #expect(hooked.status == 429, "\(hooked.text)")
        #expect(hooked.errorCode == "org_active_runs")
        #expect(hooked.header("Retry-After") == "30")
        #expect(try await live.server.webhookAuditRecords(org: "acme").map(\.reason) == ["org_active_runs"])
        let metrics = try await live.get("/metrics", token: try await live.token(nil)).text
        #expect(hasSample(metrics, #"sluice_webhook_refusals_total{reason="org_active_runs"}"#, 1), "\(metrics)")
        // Another org is not held back by acme's runs.
        let globex = try await live.token("globex")
        let other = try await live.post("/v1/orgs/globex/pipelines/slow/runs", token: globex, json: "{}")
        #expect(other.status == 202, "\(other.text)")
        let otherRun = try #require(other.json["id"] as? String)

        _ = try await live.post("/v1/runs/\(firstRun)/cancel", token: acme)
        _ = try await live.waitForEnd(firstRun, token: acme)
        let later = try await live.post("/v1/orgs/acme/pipelines/finops_data_quality/runs", token: acme, json: "{}")
        #expect(later.status == 202, "\(later.text)")
        _ = try await live.post("/v1/runs/\(otherRun)/cancel", token: globex)
        _ = try await live.waitForEnd(otherRun, token: globex)
        try await live.stop()
    }
}
