import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

/// Runs pipelines through the executor with a real SQLite run store, so retries, the
/// Retry-After wait and what is stored are the ones `sluice run` produces.
///
/// The key reaches the step through `env`: no `kms_decrypt` runs yet to put it into the vault.
/// Lint flags exactly that (`secret-in-plain-field`), which `plan` checks is the only finding.
struct ValidatorRunHarness {
    let folder: URL
    let store: SQLiteRunStore
    let logs = LogCapture()

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-providers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
    }

    func plan(_ yaml: String) throws -> PipelinePlan {
        let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/validate_keys.yml")
        #expect(result.diagnostics.map(\.rule) == [.secretInPlainField], "\(result.diagnostics)")
        return try PipelinePlan.build(try #require(result.definition)).get()
    }

    func run(_ yaml: String, key: String = FakeKeys.openAI) async throws -> RunRecord {
        var options = ExecutorOptions()
        options.heartbeatInterval = .milliseconds(100)
        let executor = Executor(processors: .standard, store: store, options: options, logger: logs.logger)
        return try await executor.start(try plan(yaml), .init(org: "acme", logicalDate: "2026-03-01", env: ["OPENAI_KEY": key]))
    }

    func pipeline(_ server: FakeProviderServer, retry: String, timeout: String = "60s") -> String {
        """
        pipeline: validate_keys
        defaults: { timeout: 30s, retry: \(retry) }
        steps:
          - id: check
            uses: validate_openai
            with:
              api_key: "${{ env.OPENAI_KEY }}"
              base_url: "\(server.baseURL)"
              request_timeout: \(timeout)
        """
    }

    /// "state" of each transition of step `check`, in order.
    func history(_ run: RunRecord) async throws -> [Transition] {
        try await store.transitions(of: run.id).filter { $0.stepID == "check" }
    }

    /// Nothing the run stored or logged holds the key.
    func expectKeyNowhere(_ run: RunRecord, server: FakeProviderServer, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let stored =
            try await store.transitions(of: run.id).map(\.reason) + (try await store.steps(of: run.id)).map(\.reason)
            + [try await store.run(run.id)?.reason ?? ""]
        expectNoLeak(of: FakeKeys.openAI, in: stored, "the run store", sourceLocation: sourceLocation)
        expectNoLeak(of: FakeKeys.openAI, in: logs.all, "the executor's log", sourceLocation: sourceLocation)
        expectNoLeak(of: FakeKeys.openAI, in: server.accessLog, "the provider's access log", sourceLocation: sourceLocation)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

struct ValidatorRunTests {
    @Test func aRateLimitedCheckWaitsForRetryAfterSecondsThenSucceeds() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: [
            .json(429, OpenAIBodies.rateLimited, headers: [("Retry-After", "1")]), .json(200, OpenAIBodies.models),
        ])
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 3, initial_delay: 10ms, max_delay: 5s }"))
        #expect(run.state == .succeeded)
        // Both attempts carry the run's id, so the provider's log can be matched to the run.
        #expect(server.requests.map { $0.values("X-Request-Id") } == [[run.id], [run.id]])
        let history = try await harness.history(run)
        #expect(history.map(\.state) == [.running, .retrying, .running, .succeeded])
        let retrying = try #require(history.first { $0.state == .retrying })
        #expect(
            retrying.reason.hasPrefix(
                "rate_limited: OpenAI rate-limited the check: HTTP 429 (type 'requests', code 'rate_limit_exceeded'); it asked to wait 1s"))
        #expect(retrying.reason.hasSuffix("retrying in 1s"), "\(retrying.reason)")
        let second = try #require(history.last { $0.state == .running })
        #expect(second.at.timeIntervalSince(retrying.at) >= 0.95)
        let step = try #require(try await harness.store.steps(of: run.id).first)
        #expect(step.attempt == 2)
        #expect(step.outputs == ["status": .string("valid"), "http_status": .number(200)])
        #expect(server.requests.count == 2)
        try await harness.expectKeyNowhere(run, server: server)
    }

    @Test func aRateLimitedCheckHonoursAnHTTPDate() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let server = try await FakeProviderServer.start { _, index in
            // Six seconds from now, cut to the second: a wait of up to six seconds, less however
            // long a busy machine takes to read the answer.
            index == 0
                ? .json(429, OpenAIBodies.rateLimited, headers: [("Retry-After", formatter.string(from: Date().addingTimeInterval(6)))])
                : .json(200, OpenAIBodies.models)
        }
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 2, initial_delay: 10ms, max_delay: 10s }"))
        #expect(run.state == .succeeded)
        let history = try await harness.history(run)
        let retrying = try #require(history.first { $0.state == .retrying })
        let second = try #require(history.last { $0.state == .running })
        // The wait it asked for is what the retry waited, at least.
        let asked = try #require(retrying.reason.firstMatch(of: /it asked to wait ([0-9.]+)(ms|s)/), "\(retrying.reason)")
        let seconds = (Double(asked.1) ?? 0) / (asked.2 == "ms" ? 1000 : 1)
        #expect(seconds > 0.5 && seconds <= 6)
        #expect(second.at.timeIntervalSince(retrying.at) >= seconds - 0.05)
        #expect(server.requests.count == 2)
    }

    @Test func serverErrorsRetryWithBackoffUntilTheProviderRecovers() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: [
            .json(500, OpenAIBodies.serverError), .closedMidResponse(200, start: "{"), .json(200, OpenAIBodies.models),
        ])
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 4, initial_delay: 20ms, max_delay: 100ms }"))
        #expect(run.state == .succeeded)
        let history = try await harness.history(run)
        #expect(history.map(\.state) == [.running, .retrying, .running, .retrying, .running, .succeeded])
        #expect(history[1].reason.hasPrefix("unavailable: OpenAI (\(server.baseURL)/v1/models) is unavailable: HTTP 500"))
        #expect(history[3].reason.contains("the connection closed before the answer was complete"))
        #expect(server.requests.count == 3)
        try await harness.expectKeyNowhere(run, server: server)
    }

    @Test func aRefusedKeyFailsTheRunAtOnceWithoutRetry() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .json(401, OpenAIBodies.invalidKey))
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 5, initial_delay: 10ms }"))
        #expect(run.state == .failed)
        #expect(try await harness.history(run).map(\.state) == [.running, .failed])
        #expect(server.requests.count == 1)
        let step = try #require(try await harness.store.steps(of: run.id).first)
        #expect(step.errorCode == "credential_invalid")
        #expect(step.reason == "invalid: OpenAI refused the key: HTTP 401 (type 'invalid_request_error', code 'invalid_api_key')")
        #expect(run.reason == "step 'check' failed: invalid: OpenAI refused the key: HTTP 401 (type 'invalid_request_error', code 'invalid_api_key')")
        try await harness.expectKeyNowhere(run, server: server)
    }

    @Test func aProviderThatStaysTooSlowDeadLettersTheStep() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .delayed(TestTime.never, .json(200, OpenAIBodies.models)))
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 2, initial_delay: 10ms }", timeout: "200ms"))
        #expect(run.state == .failed)
        #expect(try await harness.history(run).map(\.state) == [.running, .retrying, .running, .deadLettered])
        let step = try #require(try await harness.store.steps(of: run.id).first)
        #expect(step.errorCode == "provider_unavailable")
        #expect(step.reason.hasPrefix("gave up after 2 attempts: unavailable: OpenAI"))
        #expect(step.reason.hasSuffix("no complete answer within 200ms (request_timeout)"))
        #expect(server.requests.count == 2)
    }

    @Test func aRetryAfterBeyondMaxDelayFailsAtOnceWithTheReason() async throws {
        let harness = try ValidatorRunHarness()
        defer { harness.remove() }
        let server = try await FakeProviderServer.start(answering: .json(429, OpenAIBodies.rateLimited, headers: [("Retry-After", "120")]))
        defer { Task { await server.stop() } }
        let run = try await harness.run(harness.pipeline(server, retry: "{ attempts: 3, initial_delay: 10ms, max_delay: 1s }"))
        #expect(run.state == .failed)
        #expect(try await harness.history(run).map(\.state) == [.running, .failed])
        let step = try #require(try await harness.store.steps(of: run.id).first)
        #expect(step.errorCode == "rate_limited")
        #expect(step.reason.hasSuffix("asked to wait 2m, more than retry.max_delay (1s)"), "\(step.reason)")
        #expect(server.requests.count == 1)
    }
}
