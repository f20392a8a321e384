import Foundation
import SluiceTestSupport
import Testing

/// Invariant 10 over HTTP: an org's token can't point a run's input at another org's files, the
/// host's files or the project's state, and what it is told never says where a path led.
struct TenantConfinementTests {
    @Test func aTokenHoldersPathParamStaysInsideItsOrgsInputs() async throws {
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        let csv = "event_id,day,amount\ne1,2026-03-01,5\n"
        try Data(csv.replacingOccurrences(of: "e1", with: "OUTSIDE-SECRET").utf8).write(to: outside.appendingPathComponent("secret.csv"))
        let project = try exampleProject(extra: [
            "sluice.yml": "inputs: { root: \"data/{org}\" }\n",
            "schemas/events_raw.json":
                #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "day", "type": "DATE"}, {"name": "amount", "type": "INT64"}]"#,
            "pipelines/load_export.yml": """
            pipeline: load_export
            defaults: { timeout: 1m }
            params:
              file: { type: string, default: data/acme/export.csv }
            steps:
              - id: load
                uses: ingest
                with: { source: { format: csv, path: "${{ params.file }}" }, table: events_raw, schema: schemas/events_raw.json }
            """,
            "data/acme/export.csv": csv,
            "data/globex/billing.csv": csv.replacingOccurrences(of: "e1", with: "GLOBEX-BILLING"),
        ])
        try FileManager.default.createSymbolicLink(
            atPath: project.appendingPathComponent("data/acme/link.csv").path,
            withDestinationPath: outside.appendingPathComponent("secret.csv").path)
        let live = try await LiveServer.start(project: project)
        defer { try? FileManager.default.removeItem(at: project) }
        let token = try await live.token("acme")

        func load(_ file: String) async throws -> (run: [String: Any], step: [String: Any]) {
            let body = try JSONSerialization.data(withJSONObject: ["params": ["file": file]])
            let trigger = try await live.post("/v1/orgs/acme/pipelines/load_export/runs", token: token, json: String(decoding: body, as: UTF8.self))
            #expect(trigger.status == 202, "\(file): \(trigger.text)")
            let id = try #require(trigger.json["id"] as? String)
            let run = try await live.waitForEnd(id, token: token)
            let step = try #require((run["steps"] as? [[String: Any]])?.first { $0["id"] as? String == "load" })
            return (run, step)
        }

        var reasons: [String: String] = [:]
        for file in [
            "/etc/passwd", "\(outside.path)/secret.csv", "\(outside.path)/missing.csv", "../../etc/passwd",
            "data/acme/link.csv", "data/globex/billing.csv", "data/globex/missing.csv", ".sluice/runs.sqlite",
        ] {
            let (run, step) = try await load(file)
            #expect(run["state"] as? String == "failed", "\(file): \(run)")
            #expect(step["error_code"] as? String == "input_refused", "\(file): \(step)")
            // The params are the caller's own; the reasons must say nothing of where a path led.
            let text = "\(run["reason"] ?? "") \(step["reason"] ?? "")"
            for leak in [outside.path, "OUTSIDE", "GLOBEX", "passwd", "globex", "secret"] {
                #expect(!text.contains(leak), "\(file): \(leak) in \(text)")
            }
            reasons[file] = step["reason"] as? String
        }
        #expect(reasons["\(outside.path)/secret.csv"] == reasons["\(outside.path)/missing.csv"])
        #expect(reasons["data/globex/billing.csv"] == reasons["data/globex/missing.csv"])
        #expect(reasons["data/acme/link.csv"] == reasons["data/globex/missing.csv"])

        let (own, _) = try await load("data/acme/export.csv")
        #expect(own["state"] as? String == "succeeded", "\(own)")
        try await live.stop()
    }
}
