import Foundation
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine
@testable import SluiceProviders

/// Fails with a message that quotes a secret the run holds, as a provider echoing a key back
/// would. The secret is registered with the redactor for the run, as the vault does.
struct LeakingStepProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_leaking_step", summary: "s", description: "d", fields: [],
            outputs: [OutputSpec("x", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        SecretRedactor.shared.register(FakeKeys.vendor, owner: step.runID)
        throw StepFailure("credential_invalid", "upstream refused key \(FakeKeys.vendor) for org \(step.org)")
    }
}

/// Succeeds.
struct SucceedingStepProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(name: "test_ok", summary: "s", description: "d", fields: [], outputs: [OutputSpec("x", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] { ["x": .string("ok")] }
}

/// Runs pipelines whose `on_failure` notifies a fake webhook, through the executor with a real
/// SQLite run store and the processors `sluice run` uses.
struct NotifyRunHarness {
    /// A webhook path that is a secret, like a Slack incoming webhook's.
    static let secretPath = "/services/T0FAKE123/B0FAKE456/wEbHoOkSeCrEt0123456789"

    let folder: URL
    let store: SQLiteRunStore
    let logs = LogCapture()
    let catalog = ProcessorEnvironment.standard.adding([LeakingStepProcessor(), SucceedingStepProcessor()])

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
    }

    /// A pipeline whose one step (`test_leaking_step` or `test_ok`) fails or succeeds, with one
    /// notify handler.
    static func pipeline(
        step: String = "test_leaking_step", with: String = "", retry: String = "",
        link: String? = "https://sluice.example.com/runs/${{ run.id }}"
    ) -> String {
        """
        pipeline: nightly_costs
        defaults: { timeout: 30s\(retry) }
        steps:
          - { id: load_usage, uses: \(step) }
        on_failure:
          - id: alert
            uses: notify
            with:
              url: "${{ env.ALERT_WEBHOOK_URL }}"
              message: "Costs for ${{ run.logical_date }} are late"\(link.map { "\n      link: \"\($0)\"" } ?? "")\(with)
        """
    }

    func run(
        _ yaml: String, webhook: FakeProviderServer?, project: ProjectContext? = nil,
        extraEnv: [String: String] = [:]
    ) async throws -> RunRecord {
        let result = PipelineLoader(registry: catalog.registry).load(Data(yaml.utf8), file: "pipelines/nightly_costs.yml")
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let plan = try PipelinePlan.build(try #require(result.definition)).get()
        var options = ExecutorOptions()
        options.heartbeatInterval = .milliseconds(100)
        let executor = Executor(processors: catalog, store: store, project: project, options: options, logger: logs.logger)
        let env = (webhook.map { ["ALERT_WEBHOOK_URL": $0.baseURL + Self.secretPath] } ?? [:]).merging(extraEnv) { $1 }
        return try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: env))
    }

    func step(_ run: RunRecord, _ id: String) async throws -> StepRunRecord {
        try #require(try await store.steps(of: run.id).first { $0.stepID == id })
    }

    func history(_ run: RunRecord, _ id: String) async throws -> [Transition] {
        try await store.transitions(of: run.id).filter { $0.stepID == id }
    }

    /// Everything the run stored: reasons of the run, its steps and every transition, outputs.
    func stored(_ run: RunRecord) async throws -> [String] {
        let steps = try await store.steps(of: run.id)
        return try await store.transitions(of: run.id).map(\.reason) + steps.map(\.reason)
            + steps.flatMap { $0.outputs.values.map(\.description) } + [try await store.run(run.id)?.reason ?? ""]
    }

    /// Neither the secret nor the webhook's secret path is in what was stored or logged; the
    /// secret is not in what the webhook received either.
    func expectNothingLeaked(_ run: RunRecord, webhook: FakeProviderServer?, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let stored = try await stored(run)
        for secret in [FakeKeys.vendor, Self.secretPath, "wEbHoOkSeCrEt0123456789"] {
            expectNoLeak(of: secret, in: stored, "the run store", sourceLocation: sourceLocation)
            expectNoLeak(of: secret, in: logs.all, "the executor's log", sourceLocation: sourceLocation)
        }
        expectNoLeak(of: FakeKeys.vendor, in: (webhook?.requests ?? []).map(\.everything), "the notification", sourceLocation: sourceLocation)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// The body of a request as a JSON object.
func jsonObject(_ request: RecordedRequest?) throws -> [String: Any] {
    let body = try #require(request).body
    let object = try JSONSerialization.jsonObject(with: body)
    return try #require(object as? [String: Any], "not a JSON object: \(String(decoding: body, as: UTF8.self))")
}

struct NotifyRunTests {
    let originalReason = "step 'load_usage' failed: upstream refused key [redacted] for org acme"

    @Test func withoutALinkTheSummaryLinksTheRunAtThePublicURLWhenTheProjectHasOne() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let pipeline = NotifyRunHarness.pipeline(link: nil)
        let project = ProjectContext(root: harness.folder)

        let unlinked = try await harness.run(pipeline, webhook: server, project: project)
        #expect(unlinked.state == .failed)
        #expect(try jsonObject(server.requests.last)["link"] == nil, "no public_url, no link")

        try Data("public_url: https://sluice.example.com/\n".utf8).write(to: harness.folder.appendingPathComponent("sluice.yml"))
        let linked = try await harness.run(pipeline, webhook: server, project: project)
        #expect(try jsonObject(server.requests.last)["link"] as? String == "https://sluice.example.com/v1/runs/\(linked.id)")
        // A link the handler gives wins over the project's.
        let given = try await harness.run(NotifyRunHarness.pipeline(), webhook: server, project: project)
        #expect(try jsonObject(server.requests.last)["link"] as? String == "https://sluice.example.com/runs/\(given.id)")
        // SLUICE_PUBLIC_URL in the run's environment wins over the file.
        let fromEnvironment = try await harness.run(
            pipeline, webhook: server, project: project,
            extraEnv: ["SLUICE_PUBLIC_URL": "https://ops.example.com"])
        #expect(try jsonObject(server.requests.last)["link"] as? String == "https://ops.example.com/v1/runs/\(fromEnvironment.id)")
        #expect(server.requests.count == 4)
    }

    @Test func aFailedRunPostsOneSanitizedJSONSummary() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let run = try await harness.run(NotifyRunHarness.pipeline(), webhook: server)

        #expect(run.state == .failed)
        #expect(run.reason == originalReason)
        #expect(server.requests.count == 1)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.uri == NotifyRunHarness.secretPath)
        #expect(request.values("Content-Type") == ["application/json"])
        #expect(request.values("User-Agent") == ["sluice/\(SluiceVersion.current)"])
        #expect(request.values("X-Request-Id") == [run.id])
        let body = try jsonObject(request)
        #expect(
            Set(body.keys) == [
                "pipeline", "org", "run_id", "logical_date", "state", "failed_step", "error_code", "error",
                "failed_at", "message", "link", "summary",
            ])
        #expect(body["pipeline"] as? String == "nightly_costs")
        #expect(body["org"] as? String == "acme")
        #expect(body["run_id"] as? String == run.id)
        #expect(body["logical_date"] as? String == "2026-03-01")
        #expect(body["state"] as? String == "failed")
        #expect(body["failed_step"] as? String == "load_usage")
        #expect(body["error_code"] as? String == "credential_invalid")
        #expect(body["error"] as? String == "upstream refused key [redacted] for org acme")
        #expect(body["message"] as? String == "Costs for 2026-03-01 are late")
        #expect(body["link"] as? String == "https://sluice.example.com/runs/\(run.id)")
        #expect(
            body["summary"] as? String
                == "Pipeline nightly_costs (org acme) failed at step load_usage: credential_invalid — upstream refused key [redacted] for org acme")
        let failedAtText = try #require(body["failed_at"] as? String)
        let failedAt = try #require(ISO8601DateFormatter().date(from: failedAtText))
        #expect(abs(failedAt.timeIntervalSince(run.updatedAt)) < 120)

        let alert = try await harness.step(run, "alert")
        #expect(alert.state == .succeeded)
        #expect(alert.outputs == ["http_status": .number(200)])
        try await harness.expectNothingLeaked(run, webhook: server)
        // The log names the webhook by its host only.
        #expect(harness.logs.all.contains { $0.contains("provider answered") && $0.hasSuffix("url=\(server.baseURL)") }, "\(harness.logs.all)")
    }

    @Test func slackFormatSendsOneReadableText() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let run = try await harness.run(NotifyRunHarness.pipeline(with: "\n      format: slack"), webhook: server)
        #expect(run.state == .failed)
        let body = try jsonObject(server.requests.first)
        #expect(Array(body.keys) == ["text"])
        #expect(
            body["text"] as? String == """
                :x: Pipeline *nightly_costs* (org acme) failed at step `load_usage`: credential_invalid — upstream refused key [redacted] for org acme
                Costs for 2026-03-01 are late
                <https://sluice.example.com/runs/\(run.id)|Run \(run.id)> · logical date 2026-03-01
                """)
        try await harness.expectNothingLeaked(run, webhook: server)
    }

    @Test func aServerErrorIsRetriedByDefaultUntilTheWebhookTakesIt() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: [.answer(500, body: "oops"), .answer(200, body: "ok")])
        defer { Task { await server.stop() } }
        // No retry in the pipeline: notify's own policy applies.
        let run = try await harness.run(NotifyRunHarness.pipeline(), webhook: server)
        #expect(run.state == .failed)
        #expect(run.reason == originalReason)
        #expect(server.requests.count == 2)
        #expect(server.requests[0].body == server.requests[1].body)
        let history = try await harness.history(run, "alert")
        #expect(history.map(\.state) == [.running, .retrying, .running, .succeeded])
        #expect(
            history[1].reason.hasPrefix("the notify webhook (host 127.0.0.1:\(server.port)) is unavailable: HTTP 500 ('oops'); retrying in "),
            "\(history[1].reason)")
        let alert = try await harness.step(run, "alert")
        #expect(alert.attempt == 2)
        #expect(alert.errorCode == nil)
        #expect(alert.outputs == ["http_status": .number(200)])
        try await harness.expectNothingLeaked(run, webhook: server)
    }

    @Test func aRejectionIsNotRetriedAndTheRunKeepsItsOwnReason() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .answer(400, body: "invalid_payload"))
        defer { Task { await server.stop() } }
        let run = try await harness.run(NotifyRunHarness.pipeline(retry: ", retry: { attempts: 4, initial_delay: 10ms }"), webhook: server)
        #expect(server.requests.count == 1)
        #expect(run.state == .failed)
        #expect(run.reason == originalReason)
        let step = try await harness.step(run, "load_usage")
        #expect(step.errorCode == "credential_invalid")
        let alert = try await harness.step(run, "alert")
        #expect(alert.state == .failed)
        #expect(alert.errorCode == "notify_rejected")
        #expect(alert.reason == "the notify webhook (host 127.0.0.1:\(server.port)) refused the notification: HTTP 400 ('invalid_payload')")
        #expect(try await harness.history(run, "alert").map(\.state) == [.running, .failed])
        try await harness.expectNothingLeaked(run, webhook: server)
    }

    @Test func aRateLimitWaitsForRetryAfter() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: [
            .answer(429, headers: [("Retry-After", "3")], body: "slow down"),
            .answer(200, body: "ok"),
        ])
        defer { Task { await server.stop() } }
        let run = try await harness.run(NotifyRunHarness.pipeline(), webhook: server)
        #expect(server.requests.count == 2)
        let history = try await harness.history(run, "alert")
        #expect(history.map(\.state) == [.running, .retrying, .running, .succeeded])
        #expect(
            history[1].reason
                == "the notify webhook (host 127.0.0.1:\(server.port)) is rate-limiting: HTTP 429 ('slow down'); it asked to wait 3s; retrying in 3s")
        // notify's own backoff would have waited at most 1 s.
        #expect(history[2].at.timeIntervalSince(history[1].at) >= 2.95)
        #expect(try await harness.step(run, "alert").errorCode == nil)
    }

    @Test func aRunThatSucceedsSendsNothing() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let run = try await harness.run(NotifyRunHarness.pipeline(step: "test_ok"), webhook: server)
        #expect(run.state == .succeeded)
        #expect(server.requests.isEmpty)
        let alert = try await harness.step(run, "alert")
        #expect(alert.state == .skipped)
        #expect(alert.reason == "not needed: the run succeeded")
    }

    @Test func anUnsetWebhookVariableFailsTheHandlerClearlyAndTheRunKeepsItsReason() async throws {
        let harness = try NotifyRunHarness()
        defer { harness.remove() }
        let run = try await harness.run(NotifyRunHarness.pipeline(), webhook: nil)
        #expect(run.state == .failed)
        #expect(run.reason == originalReason)
        let alert = try await harness.step(run, "alert")
        #expect(alert.state == .failed)
        #expect(alert.errorCode == "invalid_config")
        #expect(
            alert.reason
                == "pipelines/nightly_costs.yml:9:12: 'url' is empty: its value (an environment variable or a secret?) is not set, so no notification was sent"
        )
        // A config problem is permanent: one try.
        #expect(try await harness.history(run, "alert").map(\.state) == [.running, .failed])
    }
}

/// `notify` run directly, without an executor.
struct NotifyProcessorTests {
    let processor = NotifyProcessor()
    let secretPath = NotifyRunHarness.secretPath

    /// A handler's context: the run failed at `load_usage` with `message`.
    func handlerStep(_ yaml: String, error: String = "the source file is missing", logs: LogCapture = LogCapture()) throws -> StepContext {
        guard case .success(let node?) = YAMLLoader().load(Data(yaml.utf8), file: "pipelines/nightly_costs.yml") else {
            throw CancellationError()
        }
        var step = StepContext(
            runID: "r0123", pipeline: "nightly_costs", org: "acme", stepID: "alert", attempt: 1, config: node,
            logger: logs.logger, project: nil)
        step.logicalDate = "2026-03-01"
        step.runFailure = RunFailure(
            stepID: "load_usage", code: "input_missing", message: error,
            at: Date(timeIntervalSince1970: 1_772_330_400))
        return step
    }

    func failure(_ step: StepContext) async throws -> StepFailure {
        do {
            let outputs = try await processor.run(step)
            Issue.record("expected notify to fail; it returned \(outputs)")
            return StepFailure("none", "none")
        } catch let failure as StepFailure {
            return failure
        }
    }

    @Test func slackTextIsEscapedAndLongErrorsAreCut() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let long = "<b>" + String(repeating: "x", count: 5_000) + "&"
        let step = try handlerStep("{ url: \"\(server.baseURL)/hook\", format: slack, message: \"a < b & c\", link: \"not a url\" }", error: long)
        #expect(try await processor.run(step) == ["http_status": .number(200)])
        let text = try #require(try jsonObject(server.requests.first)["text"] as? String)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix(":x: Pipeline *nightly_costs* (org acme) failed at step `load_usage`: input_missing — &lt;b&gt;xxx"))
        // 1,000 characters of error at most: "<b>" and 996 x, then "…".
        #expect(lines[0].hasSuffix(String(repeating: "x", count: 996) + "…"))
        #expect(lines[1] == "a &lt; b &amp; c")
        // A link that is not an absolute URL is left out.
        #expect(lines[2] == "Run r0123 · logical date 2026-03-01")
    }

    @Test func theJSONSummaryOfAFailureWithoutAStepLeavesTheStepOut() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(204))
        defer { Task { await server.stop() } }
        var step = try handlerStep("{ url: \"\(server.baseURL)/hook\" }")
        step.runFailure = RunFailure(
            stepID: nil, code: "publish_failed", message: "publishing failed, nothing was changed: disk full",
            at: Date(timeIntervalSince1970: 1_772_330_400))
        #expect(try await processor.run(step) == ["http_status": .number(204)])
        let body = try jsonObject(server.requests.first)
        #expect(Set(body.keys) == ["pipeline", "org", "run_id", "logical_date", "state", "error_code", "error", "failed_at", "summary"])
        #expect(body["failed_at"] as? String == "2026-03-01T02:00:00Z")
        #expect(
            body["summary"] as? String
                == "Pipeline nightly_costs (org acme) failed: publish_failed — publishing failed, nothing was changed: disk full")
    }

    @Test func asAStepItReportsTheRunAsRunning() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(200, body: "ok"))
        defer { Task { await server.stop() } }
        let outputs = try await runStep(processor, "{ url: \"\(server.baseURL)/hook\", message: \"halfway\" }")
        #expect(outputs == ["http_status": .number(200)])
        let body = try jsonObject(server.requests.first)
        #expect(Set(body.keys) == ["pipeline", "org", "run_id", "state", "message", "summary"])
        #expect(body["state"] as? String == "running")
        #expect(body["summary"] as? String == "Pipeline validators (org acme), run run-1, is running")
    }

    @Test func aRefusedConnectionIsTransientAndNamesOnlyTheHost() async throws {
        let port = try await FakeProviderServer.refusedPort()
        let logs = LogCapture()
        let failure = try await failure(
            try handlerStep("{ url: \"http://127.0.0.1:\(port)\(secretPath)?token=QuErYsEcReT99\", request_timeout: 5s }", logs: logs))
        #expect(failure.code == "notify_unavailable")
        #expect(failure.transient)
        #expect(failure.message == "the notify webhook (host 127.0.0.1:\(port)) did not answer: the connection was refused")
        expectNoLeak(of: secretPath, in: logs.all + [failure.description], "logs and messages")
        expectNoLeak(of: "QuErYsEcReT99", in: logs.all + [failure.description], "logs and messages")
    }

    @Test func aWebhookTooSlowForRequestTimeoutIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .delayed(TestTime.never, .answer(200, body: "ok")))
        defer { Task { await server.stop() } }
        let failure = try await failure(try handlerStep("{ url: \"\(server.baseURL)\(secretPath)\", request_timeout: 300ms }"))
        #expect(failure.code == "notify_unavailable")
        #expect(failure.transient)
        #expect(
            failure.message == "the notify webhook (host 127.0.0.1:\(server.port)) did not answer: no complete answer within 300ms (request_timeout)")
    }

    @Test func redirectsAreRejectedNotFollowed() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(302, headers: [("Location", "http://127.0.0.1:1/elsewhere")]))
        defer { Task { await server.stop() } }
        let failure = try await failure(try handlerStep("{ url: \"\(server.baseURL)\(secretPath)\" }"))
        #expect(failure.code == "notify_rejected")
        #expect(!failure.transient)
        #expect(failure.message.hasPrefix("the notify webhook (host 127.0.0.1:\(server.port)) answered HTTP 302, a redirect, which is not followed"))
        #expect(server.requests.count == 1)
    }

    @Test func aURLThatIsNotHTTPIsRefusedWithoutShowingIt() async throws {
        for url in ["ftp://hooks.example.com\(secretPath)", "hooks.example.com\(secretPath)", "https://user:pw@hooks.example.com\(secretPath)"] {
            let failure = try await failure(try handlerStep("{ url: \"\(url)\" }"))
            #expect(failure.code == "invalid_config")
            #expect(failure.location?.line == 1)
            expectNoLeak(of: secretPath, in: [failure.description], "the message")
        }
    }
}

struct NotifyCatalogTests {
    @Test func sluiceRunCanNotifyAndTheDocsListEveryCode() throws {
        #expect(ProcessorEnvironment.standard["notify"] is NotifyProcessor)
        #expect(NotifyErrorCode.allCases.filter(\.isTransient).map(\.rawValue) == ["notify_rate_limited", "notify_unavailable"])
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/pipeline-format.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let section = try #require(text.components(separatedBy: "\n## notify\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        for code in NotifyErrorCode.allCases.map(\.rawValue) + ["invalid_config"] {
            #expect(section.contains("| `\(code)` |"), "\(code) is not in the docs table")
        }
        for field in [
            "pipeline", "org", "run_id", "logical_date", "state", "failed_step", "error_code", "error", "failed_at", "message", "link", "summary",
        ] {
            #expect(section.contains("| `\(field)` |"), "\(field) is not in the docs table")
        }
    }
}
