import Foundation
import SluiceEngine
import SluiceRuntime
import SluiceSQLite
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

/// Runs over HTTP: triggered, executed in the server, read back; request ids end up in the
/// stored run; idempotency holds under concurrency; cancel and shutdown record cancelled runs.
struct RunsAPITests {
    @Test func aTriggeredRunExecutesInTheServerAndCarriesTheRequestID() async throws {
        let logs = LogCapture()
        let live = try await LiveServer.start(project: try exampleProject(), logger: logs.logger)
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")

        let trigger = try await live.post(
            "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token,
            json: #"{"logical_date": "2026-03-01"}"#, headers: ["X-Request-Id": "client-req.42"])
        #expect(trigger.status == 202, "\(trigger.text)")
        #expect(trigger.header("X-Request-Id") == "client-req.42")
        let run = trigger.json
        let id = try #require(run["id"] as? String)
        #expect(trigger.header("Location") == "/v1/runs/\(id)")
        #expect(run["request_id"] as? String == "client-req.42")
        #expect(run["org"] as? String == "acme")
        #expect(run["trigger"] as? String == "api")
        #expect(run["logical_date"] as? String == "2026-03-01")
        #expect((run["links"] as? [String: String])?["self"] == "/v1/runs/\(id)")

        let ended = try await live.waitForEnd(id, token: token)
        #expect(ended["state"] as? String == "succeeded", "\(ended)")
        let steps = try #require(ended["steps"] as? [[String: Any]])
        #expect(
            steps.map { $0["id"] as? String } == [
                "load_usage", "dedupe_usage", "load_pricing", "dedupe_pricing", "daily_costs",
                "test_daily_costs", "alert",
            ])
        #expect(steps.first?["state"] as? String == "succeeded")

        // The stored run carries the request id, as `sluice runs` and the logs see it.
        let stored = try #require(try await live.server.store.run(id))
        #expect(stored.requestID == "client-req.42")
        #expect(stored.trigger == .api)

        // Every log line of the run, the executor's and its steps', carries the request id.
        let runLines = logs.all.filter { $0.contains("run_id=\(id)") }
        let executorLines = runLines.filter { $0.contains("component=executor") }
        #expect(executorLines.count >= 7, "a line per step at least: \(runLines)")
        #expect(executorLines.contains { $0.contains("step=load_usage") || $0.contains("step_id=load_usage") }, "\(executorLines)")
        let without = runLines.filter { !$0.contains("request_id=client-req.42") }
        #expect(without.isEmpty, "lines of the run without its request id: \(without)")
        try await live.stop()
    }

    @Test func everyResponseCarriesARequestIDAndInsaneOnesAreReplaced() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let health = try await live.get("/healthz", token: nil)
        #expect(health.status == 200)
        #expect(health.json["status"] as? String == "ok")
        let generated = try #require(health.header("X-Request-Id"))
        #expect(generated.hasPrefix("req_") && generated.count == 24)

        for insane in [String(repeating: "a", count: 129), "has space", "semi;colon", "ünï"] {
            let response = try await live.get("/nowhere", token: nil, headers: ["X-Request-Id": insane])
            #expect(response.status == 404)
            let id = try #require(response.header("X-Request-Id"))
            #expect(id != insane && id.hasPrefix("req_"))
            #expect(response.error["request_id"] as? String == id)
        }
        let unauthenticated = try await live.get("/v1/orgs/acme/runs", token: nil, headers: ["X-Request-Id": "abc-123"])
        #expect(unauthenticated.header("X-Request-Id") == "abc-123")
        #expect(unauthenticated.error["request_id"] as? String == "abc-123")
        try await live.stop()
    }

    @Test func twoHundredConcurrentTriggersWithOneIdempotencyKeyCreateOneRun() async throws {
        // Up to 200 connections from this one client: past the default per-client limit (64).
        let live = try await LiveServer.start(project: try exampleProject()) { $0.maxConnectionsPerClient = nil }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let started = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await live.post(
                        "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token,
                        json: #"{"logical_date": "2026-03-02"}"#,
                        headers: ["Idempotency-Key": "nightly-2026-03-02", "X-Request-Id": "burst-\(index)"])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        #expect(results.count == 200)
        #expect(results.filter { $0.status == 202 }.count == 1, "\(Dictionary(grouping: results, by: \.status).mapValues(\.count))")
        #expect(results.filter { $0.status == 200 }.count == 199)
        #expect(results.filter { $0.status == 200 }.allSatisfy { $0.header("Idempotent-Replayed") == "true" })
        let ids = Set(results.compactMap { $0.json["id"] as? String })
        #expect(ids.count == 1)
        // Exactly one run in the store, and it carries the id of the request that created it.
        let runs = try await live.server.store.runs(pipeline: "genai_costs_daily", org: "acme", limit: 1000)
        #expect(runs.count == 1)
        let creator = try #require(results.first { $0.status == 202 })
        #expect(runs.first?.requestID == creator.header("X-Request-Id"))
        print("200 concurrent triggers with one Idempotency-Key: \(elapsed)")

        // The same key with other params is a mistake, not a second run.
        let reused = try await live.post(
            "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token,
            json: #"{"logical_date": "2026-03-03"}"#, headers: ["Idempotency-Key": "nightly-2026-03-02"])
        #expect(reused.status == 409)
        #expect(reused.errorCode == "idempotency_key_reused")
        _ = try await live.waitForEnd(try #require(ids.first), token: token)
        #expect(try await live.server.store.runs(pipeline: "genai_costs_daily", org: "acme", limit: 1000).count == 1)
        try await live.stop()
    }

    @Test func runsArePagedNewestFirstWithAnOpaqueCursor() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        // Seven runs, three of them created in the same instant (the id breaks the tie),
        // and one of another org that must never show.
        let base = Date(timeIntervalSince1970: 1_780_000_000.123)
        var created: [RunRecord] = []
        for index in 0..<7 {
            let time = index < 3 ? base : base.addingTimeInterval(Double(index))
            let record = RunRecord(pipeline: "genai_costs_daily", org: "acme", logicalDate: "2026-03-01", trigger: .cli, createdAt: time)
            created.append(try await live.server.store.createRun(record, steps: []).run)
        }
        _ = try await live.server.store.createRun(
            RunRecord(
                pipeline: "genai_costs_daily", org: "other", logicalDate: "2026-03-01",
                trigger: .cli, createdAt: base.addingTimeInterval(3.5)), steps: [])
        let expected = created.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.map(\.id)

        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let query = "limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try await live.get("/v1/orgs/acme/runs?\(query)", token: token)
            #expect(page.status == 200, "\(page.text)")
            let runs = try #require(page.json["runs"] as? [[String: Any]])
            seen += runs.compactMap { $0["id"] as? String }
            cursor = page.json["next_cursor"] as? String
            #expect(page.json.keys.contains("next_cursor"))
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == expected)

        // A run created after the first page was read does not shift the next pages.
        let first = try await live.get("/v1/orgs/acme/runs?limit=2", token: token)
        _ = try await live.server.store.createRun(
            RunRecord(
                pipeline: "genai_costs_daily", org: "acme", logicalDate: "2026-03-01",
                trigger: .cli), steps: [])
        let next = try await live.get("/v1/orgs/acme/runs?limit=2&cursor=\(try #require(first.json["next_cursor"] as? String))", token: token)
        #expect((next.json["runs"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(expected[2..<4]))

        let filtered = try await live.get("/v1/orgs/acme/runs?pipeline=slow", token: token)
        #expect((filtered.json["runs"] as? [Any])?.isEmpty == true)
        try await live.stop()
    }

    @Test func aCancelledRunIsRecordedCancelledAndCanNotBeCancelledAgain() async throws {
        let live = try await LiveServer.start(project: try exampleProject(extra: slowPipeline))
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let trigger = try await live.post("/v1/orgs/acme/pipelines/slow/runs", token: token)
        #expect(trigger.status == 202, "\(trigger.text)")
        let id = try #require(trigger.json["id"] as? String)
        // Cancel once it is under way.
        #expect(try await eventually { try await live.get("/v1/runs/\(id)", token: token).json["state"] as? String == "running" })
        let cancel = try await live.post("/v1/runs/\(id)/cancel", token: token, headers: ["X-Request-Id": "stop-it.7"])
        #expect(cancel.status == 202, "\(cancel.text)")
        let ended = try await live.waitForEnd(id, token: token)
        #expect(ended["state"] as? String == "cancelled", "\(ended)")
        #expect(ended["reason"] as? String == "cancelled through the API (request stop-it.7)")

        let again = try await live.post("/v1/runs/\(id)/cancel", token: token)
        #expect(again.status == 409)
        #expect(again.errorCode == "run_finished")

        // A run this server does not execute (sluice run in another process) can't be cancelled here.
        let elsewhere = try await live.server.store.createRun(
            RunRecord(pipeline: "slow", org: "acme", logicalDate: "2026-03-01", trigger: .cli, state: .running), steps: []
        ).run
        let refused = try await live.post("/v1/runs/\(elsewhere.id)/cancel", token: token)
        #expect(refused.status == 409)
        #expect(refused.errorCode == "not_cancellable")
        try await live.stop()
    }

    @Test func gracefulShutdownCancelsTheRunsStillExecuting() async throws {
        let project = try exampleProject(extra: slowPipeline)
        defer { try? FileManager.default.removeItem(at: project) }
        let live = try await LiveServer.start(project: project)
        let token = try await live.token("acme")
        let trigger = try await live.post("/v1/orgs/acme/pipelines/slow/runs", token: token)
        let id = try #require(trigger.json["id"] as? String)
        #expect(try await eventually { try await live.get("/v1/runs/\(id)", token: token).json["state"] as? String == "running" })
        try await live.stop()
        // Once stop returns the run has been recorded as it ended: cancelled, nothing published.
        let stored = try #require(try await live.server.store.run(id))
        #expect(stored.state == .cancelled, "\(stored.state) \(stored.reason)")
        #expect(stored.reason.hasPrefix("cancelled at shutdown: the process was stopping (no shutdown grace)"), "\(stored.reason)")
        let warehouse = try await Runtime.warehouseLocation(projectRoot: live.project, org: "acme")
        let published = FileManager.default.fileExists(atPath: warehouse) ? try await tableCount(warehouse, "events") : 0
        #expect(published == 0)
    }

    func tableCount(_ path: String, _ table: String) async throws -> Int {
        let count = try await python(
            "import sqlite3,sys\ntry:\n print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM \(table)').fetchone()[0])\nexcept Exception:\n print(0)",
            arguments: [path])
        return Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}
