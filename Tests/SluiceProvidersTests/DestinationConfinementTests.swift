import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

/// Invariant 10 for URLs: a URL whose host the run's caller chose (a param given through the
/// API or a webhook) reaches no loopback, link-local, private or other non-public address,
/// in any spelling, unless sluice.yml allow-lists it; the operator's own URLs still reach
/// local services; and nothing of an answer from such a URL is quoted back. Real servers on
/// 127.0.0.1, the executor, a real run store and warehouse.
struct DestinationConfinementTests {
    struct Project {
        let root: URL
        let store: SQLiteRunStore
        let warehouse: SQLiteWarehouse

        init(settings: String? = nil) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-destination-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("schemas"), withIntermediateDirectories: true)
            store = try SQLiteRunStore(path: root.appendingPathComponent(".sluice/runs.sqlite").path)
            warehouse = SQLiteWarehouse(root: root.appendingPathComponent(".sluice"))
            try Data(#"[{"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "NUMERIC"}]"#.utf8)
                .write(to: root.appendingPathComponent("schemas/usage_raw.json"))
            if let settings { try Data(settings.utf8).write(to: root.appendingPathComponent("sluice.yml")) }
        }

        /// Runs `yaml` as `trigger` would start it. Lint may warn (param-driven-url), or refuse
        /// (a plan made before the rule, as a long-running server may hold): it runs anyway.
        func run(_ yaml: String, trigger: RunTrigger, params: [String: String] = [:]) async throws -> RunRecord {
            let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/fetch.yml")
            let plan = try PipelinePlan.build(try #require(result.definition, "\(result.diagnostics)")).get()
            let executor = Executor(
                processors: .standard, store: store, warehouse: warehouse, project: ProjectContext(root: root),
                logger: LogCapture().logger)
            return try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", trigger: trigger, params: params, env: [:]))
        }

        func step(_ run: RunRecord, _ id: String) async throws -> StepRunRecord {
            try #require(try await store.steps(of: run.id).first { $0.stepID == id })
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static func fetch(_ url: String = "${{ params.feed }}") -> String {
        """
        pipeline: fetch
        defaults: { timeout: 30s }
        params:
          feed: { type: string, default: "https://feeds.example.com/v1/usage" }
        steps:
          - id: fetch
            uses: ingest
            with: { source: { format: http, url: "\(url)" }, table: usage_raw, schema: schemas/usage_raw.json }
        """
    }

    static let tell = """
        pipeline: fetch
        defaults: { timeout: 30s }
        params:
          hook: { type: string, default: "https://hooks.example.com/x" }
        steps:
          - id: tell
            uses: notify
            with: { url: "${{ params.hook }}", message: "hello" }
        """

    static let page = ScriptedResponse.json(200, #"{"data": [{"id": "u1", "amount": 1}]}"#)

    @Test func aCallersURLReachesNoLocalAddressInAnySpelling() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start(answering: Self.page)
        defer { Task { await server.stop() } }
        let port = server.port
        let hosts = [
            "127.0.0.1:\(port)", "localhost:\(port)", "2130706433:\(port)", "0x7f.1:\(port)", "0177.0.0.1:\(port)",
            "127.1:\(port)", "[::ffff:127.0.0.1]:\(port)", "[::1]:\(port)", "169.254.169.254", "10.1.2.3", "0.0.0.0:\(port)",
        ]
        for host in hosts {
            for trigger in [RunTrigger.api, .webhook] {
                let run = try await project.run(Self.fetch(), trigger: trigger, params: ["feed": "http://\(host)/v1/usage"])
                let step = try await project.step(run, "fetch")
                #expect(step.errorCode == "destination_refused", "\(host): \(step.errorCode ?? "") \(step.reason)")
                #expect(step.reason.contains("'source.url' (from params.feed, given by the caller of the run) points at host"), "\(step.reason)")
                #expect(step.reason.contains("network.allow"), "\(step.reason)")
                if !host.hasPrefix("127.0.0.1"), !host.hasPrefix("[") {
                    // The host as given, never what it resolved to.
                    #expect(!step.reason.contains("127.0.0.1") && !step.reason.contains("::1"), "\(step.reason)")
                }
            }
        }
        let notify = try await project.run(Self.tell, trigger: .api, params: ["hook": "http://localhost:\(port)/hooks/alerts"])
        #expect(try await project.step(notify, "tell").errorCode == "destination_refused")
        #expect(server.requests.isEmpty, "\(server.requests.map(\.uri))")
    }

    @Test func theOperatorsURLsAndAllowListedOnesReachLocalServices() async throws {
        let server = try await FakeProviderServer.start(answering: Self.page)
        defer { Task { await server.stop() } }
        let url = "\(server.baseURL)/v1/usage"

        let plain = try Project()
        defer { plain.remove() }
        // `sluice run --param`, the scheduler and the pipeline's own text are the operator's.
        for trigger in [RunTrigger.cli, .schedule, .backfill] {
            let run = try await plain.run(Self.fetch(), trigger: trigger, params: ["feed": url])
            #expect(run.state == .succeeded, "\(trigger): \(run.reason)")
        }
        #expect(try await plain.run(Self.fetch(url), trigger: .api).state == .succeeded)
        // A caller that chooses only what follows the pipeline's host chooses no host.
        let path = try await plain.run(Self.fetch("\(server.baseURL)/${{ params.feed }}"), trigger: .api, params: ["feed": "v1/usage"])
        #expect(path.state == .succeeded, "\(path.reason)")
        let count = server.requests.count
        #expect(count == 5)

        for allow in ["127.0.0.1", "127.0.0.0/8", "localhost"] {
            let allowed = try Project(settings: "network: { allow: [\(allow)] }\n")
            defer { allowed.remove() }
            let host = allow == "localhost" ? "http://localhost:\(server.port)/v1/usage" : url
            let run = try await allowed.run(Self.fetch(), trigger: .api, params: ["feed": host])
            #expect(run.state == .succeeded, "\(allow): \(run.reason)")
            // Only what is listed: another loopback spelling stays refused.
            let other = try await allowed.run(Self.fetch(), trigger: .api, params: ["feed": "http://[::1]:\(server.port)/v1/usage"])
            #expect(try await allowed.step(other, "fetch").errorCode == "destination_refused", "\(allow)")
        }
        #expect(server.requests.count == count + 3)
    }

    @Test func nothingOfAnAnswerFromACallersURLIsQuoted() async throws {
        let server = try await FakeProviderServer.start { request, _ in
            request.uri.hasSuffix("plain")
                ? .answer(404, body: "zebra_no_such_hook")
                : .json(404, #"{"error": {"type": "zebra_internal", "code": "zebra_table_missing"}}"#)
        }
        defer { Task { await server.stop() } }
        let project = try Project(settings: "network: { allow: [127.0.0.1] }\n")
        defer { project.remove() }
        for path in ["json", "plain"] {
            let hook = "\(server.baseURL)/hooks/\(path)"
            let fromCaller = try await project.run(Self.tell, trigger: .api, params: ["hook": hook])
            let step = try await project.step(fromCaller, "tell")
            #expect(step.errorCode == "notify_rejected", "\(step.reason)")
            #expect(step.reason.contains("HTTP 404"), "\(step.reason)")
            #expect(!step.reason.contains("zebra") && !fromCaller.reason.contains("zebra"), "\(step.reason)")
            // The operator's own webhook is still quoted: its refusal is theirs to read.
            let fromOperator = try await project.run(Self.tell, trigger: .cli, params: ["hook": hook])
            #expect(try await project.step(fromOperator, "tell").reason.contains("zebra"))
        }
    }
}
