import Foundation
import SluiceEngine
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

/// One server on 127.0.0.1 with the scheduler in it (`sluice serve --scheduler`), its
/// scheduler on a clock the test moves: a run triggered by an API call, one by a webhook
/// delivery signed by Python's hmac, and one by the schedule, each followed to its end
/// through the API, and the metrics that count them.
struct EndToEndTests {
    @Test func runsTriggeredByAPIWebhookAndScheduleAllEndAndAreCounted() async throws {
        let project = try SchedulerTests.project(schedule: #"{ cron: "0 3 * * *", timezone: UTC }"#)
        defer { try? FileManager.default.removeItem(at: project) }
        let clock = ManualSchedulerClock(SchedulerTests.date("2026-03-04T02:59:00Z"))
        let live = try await LiveServer.start(
            project: project,
            configure: { configuration in
                configuration.environment = ProcessInfo.processInfo.environment.merging(WebhookTests.keyEnvironment) { $1 }
            },
            services: { server in
                [
                    Scheduler(
                        runner: server.runner, options: Scheduler.Options(orgs: ["acme"], pipelines: ["ticks"]), clock: clock,
                        logger: LiveServer.quiet)
                ]
            })
        let token = try await live.token("acme")
        let metricsToken = try await live.token(nil)

        // By API.
        let triggered = try await live.post(
            "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token,
            json: #"{"logical_date": "2026-03-04"}"#, headers: ["Idempotency-Key": "e2e-1"])
        #expect(triggered.status == 202, "\(triggered.text)")
        let apiRun = try #require(triggered.json["id"] as? String)

        // By webhook, once the API's run has ended: genai_costs_daily's schedule keeps one run
        // active at a time (max_active_runs), however it was started.
        _ = try await live.waitForEnd(apiRun, token: token)
        try await WebhookTests.createHook(live, secret: WebhookTests.secret1)
        let delivered = try await WebhookTests.deliver(live, id: "msg_e2e", body: WebhookTests.payload)
        #expect(delivered.status == 202, "\(delivered.text)")
        let hookRun = try #require(delivered.json["run_id"] as? String)

        // By schedule: on start the latest fire time (yesterday's 03:00, no catchup) is due, then
        // nothing until the clock reaches 03:00.
        func scheduled(_ count: Int) async throws -> [[String: Any]] {
            var runs: [[String: Any]] = []
            try await eventually {
                runs = try await live.get("/v1/orgs/acme/runs?pipeline=ticks", token: token).json["runs"] as? [[String: Any]] ?? []
                return runs.count >= count
            }
            return runs
        }
        let onStart = try await scheduled(1)
        #expect(onStart.map { $0["logical_date"] as? String } == ["2026-03-03"])
        let startRun = try #require(onStart.first?["id"] as? String)
        _ = try await live.waitForEnd(startRun, token: token)
        try await eventually { clock.sleeperCount > 0 }
        #expect(try await scheduled(1).count == 1)
        clock.advance(to: SchedulerTests.date("2026-03-04T03:00:00Z"))
        let scheduledRun = try #require(try await scheduled(2).first?["id"] as? String, "newest first")

        var ended: [String: [String: Any]] = [:]
        for id in [apiRun, hookRun, scheduledRun] { ended[id] = try await live.waitForEnd(id, token: token) }
        #expect(ended[apiRun]?["trigger"] as? String == "api")
        #expect(ended[hookRun]?["trigger"] as? String == "webhook")
        #expect(ended[scheduledRun]?["trigger"] as? String == "schedule")
        #expect(ended[scheduledRun]?["logical_date"] as? String == "2026-03-04")
        for (id, run) in ended {
            #expect(run["state"] as? String == "succeeded", "\(id): \(run)")
            let steps = run["steps"] as? [[String: Any]] ?? []
            #expect(!steps.isEmpty && steps.allSatisfy { ["succeeded", "skipped"].contains($0["state"] as? String ?? "") }, "\(steps)")
        }
        // All together in the org's list.
        let listed = (try await live.get("/v1/orgs/acme/runs", token: token).json["runs"] as? [[String: Any]] ?? []).compactMap {
            $0["id"] as? String
        }
        #expect(Set(listed) == [apiRun, hookRun, startRun, scheduledRun])

        let metrics = try await live.get("/metrics", token: metricsToken).text
        for line in [
            #"sluice_runs_created_total{trigger="api"} 1"#, #"sluice_runs_created_total{trigger="webhook"} 1"#,
            #"sluice_runs_created_total{trigger="schedule"} 2"#, #"sluice_runs_total{state="pending"} 4"#,
            #"sluice_runs_total{state="succeeded"} 4"#, #"sluice_runs_total{state="failed"} 0"#,
        ] {
            #expect(metrics.contains(line), "\(line) in:\n\(metrics)")
        }
        #expect(metrics.contains(#"sluice_step_duration_seconds_count{processor="merge_dedupe",state="succeeded"}"#))
        try await live.stop()
    }
}
