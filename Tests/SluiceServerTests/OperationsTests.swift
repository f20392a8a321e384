import Foundation
import Hummingbird
import SluiceEngine
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

/// /metrics after a run, /openapi.json against the router, and the pipeline listing.
struct OperationsTests {
    @Test func metricsCountRunsStepsAndRowsAfterARun() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let metricsToken = try await live.token(nil)

        let before = try await live.get("/metrics", token: metricsToken)
        #expect(before.status == 200)
        #expect(before.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(hasSample(before.text, #"sluice_runs_total{state="succeeded"}"#, 0), "\(before.text)")
        #expect(before.text.contains(#"sluice_webhook_refusals_total{reason="bad_signature"} 0"#))
        #expect(hasSample(before.text, "sluice_step_retries_total", 0))
        #expect(hasSample(before.text, #"sluice_runs_in_store{state="succeeded"}"#, 0), "\(before.text)")
        // A run another process recorded: in the store's gauge, not in this process's counters.
        let elsewhere = RunRecord(pipeline: "genai_costs_daily", org: "acme", logicalDate: "2026-03-01", trigger: .cli)
        _ = try await live.server.store.createRun(elsewhere, steps: [])
        try await live.server.store.recordRun(elsewhere.id, state: .failed, reason: "failed elsewhere", at: Date())

        let trigger = try await live.post("/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, json: "{}")
        let id = try #require(trigger.json["id"] as? String)
        let ended = try await live.waitForEnd(id, token: token)
        #expect(ended["state"] as? String == "succeeded")
        let steps = try #require(ended["steps"] as? [[String: Any]])
        let ingested = steps.filter { $0["processor"] as? String == "ingest" }
            .compactMap { ($0["outputs"] as? [String: Any])?["rows_written"] as? Double }.reduce(0, +)
        #expect(ingested > 0)

        let text = try await live.get("/metrics", token: metricsToken).text
        #expect(text.contains(#"sluice_runs_total{state="pending"} 1"#), "\(text)")
        #expect(hasSample(text, #"sluice_runs_total{state="running"}"#, 1))
        #expect(hasSample(text, #"sluice_runs_total{state="succeeded"}"#, 1))
        #expect(hasSample(text, #"sluice_runs_total{state="failed"}"#, 0))
        #expect(text.contains("# TYPE sluice_runs_in_store gauge"))
        #expect(hasSample(text, #"sluice_runs_in_store{state="succeeded"}"#, 1), "\(text)")
        #expect(hasSample(text, #"sluice_runs_in_store{state="failed"}"#, 1))
        #expect(hasSample(text, #"sluice_runs_in_store{state="running"}"#, 0))
        #expect(text.contains("sluice_rows_ingested_total \(Int(ingested))"))
        #expect(text.contains("# TYPE sluice_step_duration_seconds histogram"))
        #expect(text.contains(#"sluice_step_duration_seconds_count{processor="ingest",state="succeeded"} 2"#))
        #expect(text.contains(#"sluice_step_duration_seconds_count{processor="merge_dedupe",state="succeeded"} 2"#))
        #expect(text.contains(#"sluice_step_duration_seconds_bucket{processor="aggregate",state="succeeded",le="+Inf"} 1"#))
        try await live.stop()
    }

    @Test func theOpenAPIDocumentDescribesExactlyTheRoutesTheRouterHas() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let methods = Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"])
        let documented = Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })

        // Hummingbird's own list of what the router answers, in OpenAPI's {param} form.
        let router = live.server.router().router
        let routed = Set(
            router.routes.map { route in
                "\(route.method.rawValue) /"
                    + route.path.components.map { element in
                        let text = element.description
                        return text.hasPrefix(":") ? "{\(text.dropFirst())}" : text
                    }.joined(separator: "/")
            })
        #expect(routed == documented, "only routed: \(routed.subtracting(documented)); only documented: \(documented.subtracting(routed))")
        #expect(Set(live.server.router().routes.routes.map(\.description)) == documented)

        // Every documented operation is answered (not 404) by the live server, and every
        // response it documents has a description; the served document is the committed one.
        let token = try await live.token("acme")
        for operation in documented {
            let parts = operation.split(separator: " ")
            let path = String(parts[1]).replacingOccurrences(of: "{org}", with: "acme").replacingOccurrences(of: "{pipeline}", with: "nope")
                .replacingOccurrences(of: "{run}", with: "r1")
            let response = try await live.request(String(parts[0]), path, token: token)
            #expect(response.errorCode != "not_found" && response.status != 405, "\(operation): \(response.status) \(response.text.prefix(200))")
        }
        let served = try await live.get("/openapi.json", token: token)
        #expect(served.body == Data(OpenAPIDocument.bytes))
        let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("Sources/SluiceServer/Resources/openapi.json"))
        #expect(served.body == committed)
        try await live.stop()
    }

    @Test func pipelinesAreListedWithTheirParamsAndLintErrors() async throws {
        let live = try await LiveServer.start(
            project: try exampleProject(extra: [
                "pipelines/broken.yml": "pipeline: broken\nsteps:\n  - { id: a, uses: no_such_processor }\n"
            ]))
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let listing = try await live.get("/v1/orgs/acme/pipelines", token: token)
        #expect(listing.status == 200)
        let pipelines = try #require(listing.json["pipelines"] as? [[String: Any]])
        #expect(
            pipelines.compactMap { $0["id"] as? String } == [
                "broken", "cloud_billing_focus", "finops_data_quality", "genai_costs_daily",
                "openai_usage_api",
            ])
        let genai = try #require(pipelines.first { $0["id"] as? String == "genai_costs_daily" })
        #expect(genai["valid"] as? Bool == true)
        #expect(genai["schedule"] as? String == "30 2 * * *")
        let params = try #require(genai["params"] as? [[String: Any]])
        #expect(params.first?["name"] as? String == "usage_file")
        #expect(params.first?["default"] as? String == "examples/data/genai_usage.csv")
        let broken = try #require(pipelines.first { $0["id"] as? String == "broken" })
        #expect(broken["valid"] as? Bool == false)
        #expect((broken["errors"] as? [String])?.first?.hasPrefix("pipelines/broken.yml:3:") == true)

        // An edited pipeline is linted again within a second, without a restart.
        // (Fixed by making it a copy of a pipeline that lints.)
        let good = try String(contentsOf: live.project.appendingPathComponent("pipelines/genai_costs_daily.yml"), encoding: .utf8)
        try Data(good.replacingOccurrences(of: "pipeline: genai_costs_daily", with: "pipeline: broken").utf8)
            .write(to: live.project.appendingPathComponent("pipelines/broken.yml"))
        try await Task.sleep(for: .milliseconds(1_100))
        let again = try await live.get("/v1/orgs/acme/pipelines", token: token)
        let fixed = (again.json["pipelines"] as? [[String: Any]])?.first { $0["id"] as? String == "broken" }
        #expect(fixed?["valid"] as? Bool == true, "\(String(describing: fixed))")
        let errors = fixed?["errors"] as? [String]
        #expect(errors == [], "\(String(describing: fixed))")
        try await live.stop()
    }
}

/// `sluice serve` without `--scheduler` notices runs whose process died while it is up.
struct ServeWatchdogTests {
    @Test func aRunWhoseProcessDiedWhileTheServerIsUpIsMarkedAbandoned() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            configuration.environment = ProcessInfo.processInfo.environment.merging(["SLUICE_RUN_LEASE": "1s"]) { $1 }
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        // Created after the server opened the store, so only a watchdog can mark it.
        let dead = RunRecord(pipeline: "genai_costs_daily", org: "acme", logicalDate: "2026-03-01", trigger: .cli)
        _ = try await live.server.store.createRun(dead, steps: [StepRunRecord(runID: dead.id, stepID: "load_usage", processor: "ingest")])
        try await live.server.store.recordRun(dead.id, state: .running, reason: "started", at: Date())
        try await live.server.store.heartbeat(dead.id, at: Date().addingTimeInterval(-120))
        var run: RunRecord?
        try await eventually(every: .milliseconds(50)) {
            run = try await live.server.store.run(dead.id)
            return run?.state != .running
        }
        #expect(run?.state == .failed)
        #expect(run?.reason.hasPrefix("abandoned: no heartbeat for 1s") == true, "\(run?.reason ?? "")")
        let metrics = try await live.get("/metrics", token: try await live.token(nil)).text
        #expect(hasSample(metrics, "sluice_runs_abandoned_total", 1), "\(metrics)")
        try await live.stop()
    }
}
