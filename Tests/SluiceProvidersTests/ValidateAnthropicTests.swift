import Foundation
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// Bodies the way Anthropic writes them.
enum AnthropicBodies {
    static let models =
        #"{"data":[{"type":"model","id":"claude-haiku-4-5","display_name":"Claude Haiku 4.5","created_at":"2025-10-01T00:00:00Z"}],"has_more":false,"first_id":"claude-haiku-4-5","last_id":"claude-haiku-4-5"}"#
    static let message =
        #"{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"P"}],"stop_reason":"max_tokens","usage":{"input_tokens":8,"output_tokens":1}}"#
    static let invalidKey = #"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
    static let rateLimited = #"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#
    static let overloaded = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
}

struct ValidateAnthropicTests {
    let processor = ValidateAnthropicProcessor()

    func config(_ server: FakeProviderServer, _ extra: String = "") -> String {
        "{ api_key: \(yamlQuoted(FakeKeys.anthropic)), base_url: \"\(server.baseURL)\", request_timeout: 60s\(extra) }"
    }

    /// The key went into x-api-key exactly once, with the version header, and nowhere else.
    func expectKeyOnlyInXAPIKey(
        _ server: FakeProviderServer, logs: LogCapture, messages: [String] = [],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        for request in server.requests {
            #expect(request.values("x-api-key") == [FakeKeys.anthropic], sourceLocation: sourceLocation)
            #expect(request.values("anthropic-version") == ["2023-06-01"], sourceLocation: sourceLocation)
            #expect(request.values("Authorization").isEmpty, sourceLocation: sourceLocation)
            let elsewhere = request.everything.replacingOccurrences(of: "x-api-key: \(FakeKeys.anthropic)", with: "")
            #expect(!elsewhere.contains(FakeKeys.anthropic), "the key travelled outside x-api-key", sourceLocation: sourceLocation)
        }
        expectNoLeak(of: FakeKeys.anthropic, in: server.accessLog, "the provider's access log", sourceLocation: sourceLocation)
        expectNoLeak(of: FakeKeys.anthropic, in: logs.all + messages, "Sluice's log and messages", sourceLocation: sourceLocation)
    }

    @Test func theModelsListIsTheDefaultCheck() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, AnthropicBodies.models))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(processor, config(server), logs: logs)
        #expect(outputs == ["status": .string("valid"), "http_status": .number(200), "tokens_spent": .number(0)])
        let request = try #require(server.requests.first)
        #expect(request.method == "GET")
        #expect(request.uri == "/v1/models")
        #expect(request.body.isEmpty)
        expectKeyOnlyInXAPIKey(server, logs: logs)
    }

    @Test func anOrgsLLMBudgetRefusesACallThatCouldPassItBeforeItIsSent() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-llm-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try SQLiteRunStore(path: root.appendingPathComponent(".sluice/runs.sqlite").path)
        let server = try await FakeProviderServer.start(answering: .json(200, AnthropicBodies.message))
        defer { Task { await server.stop() } }
        let yaml = """
            pipeline: check_llm
            defaults: { timeout: 30s }
            steps:
              - id: check
                uses: validate_anthropic
                with: { api_key: "${{ env.ANTHROPIC_KEY }}", base_url: "\(server.baseURL)", check: messages }
            """
        let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/check_llm.yml")
        let plan = try PipelinePlan.build(try #require(result.definition)).get()
        let executor = Executor(processors: .standard, store: store, project: ProjectContext(root: root), logger: LogCapture().logger)
        func run(_ org: String) async throws -> (RunRecord, StepRunRecord?) {
            let run = try await executor.start(plan, .init(org: org, logicalDate: "2026-12-07", env: ["ANTHROPIC_KEY": FakeKeys.anthropic]))
            return (run, try await store.steps(of: run.id).first)
        }
        let mostPerCall = ValidateAnthropicProcessor.mostTokens(
            of: ProviderRequest(
                provider: "", method: .POST, url: URL(string: "http://x")!,
                body: try JSONSerialization.data(
                    withJSONObject: ["model": "claude-haiku-4-5", "max_tokens": 1, "messages": [["role": "user", "content": "ping"]]],
                    options: [.sortedKeys]), timeout: .seconds(1)))
        // A budget with room for the most one call may spend after one call's 9 tokens, and not after two calls' 18.
        let budget = mostPerCall + 13
        try Data("limits: { acme: { llm_budget: \(budget) }, globex: { llm_budget: 1000000 } }\n".utf8).write(
            to: root.appendingPathComponent("sluice.yml"))

        let (first, firstStep) = try await run("acme")
        #expect(first.state == .succeeded, "\(first.reason)")
        #expect(firstStep?.outputs["tokens_spent"] == .number(9))
        // 9 spent: the next call may spend up to `mostPerCall` more, which still fits.
        let (second, _) = try await run("acme")
        #expect(second.state == .succeeded, "\(second.reason)")
        // 18 spent: another call could pass the budget, so it is not sent.
        let (third, thirdStep) = try await run("acme")
        #expect(third.state == .failed)
        #expect(thirdStep?.errorCode == "budget_exceeded")
        #expect(
            thirdStep?.reason.contains("org 'acme' has spent 18 of its llm_budget of \(budget) tokens in ") == true, "\(thirdStep?.reason ?? "")")
        #expect(server.requests.count == 2)
        // Another org's spend is its own.
        let (other, _) = try await run("globex")
        #expect(other.state == .succeeded, "\(other.reason)")
        #expect(server.requests.count == 3)

        // Three checks at once in one run, with room for one: the others see its hold.
        try Data("limits: { initech: { llm_budget: \(mostPerCall + 5) } }\n".utf8).write(to: root.appendingPathComponent("sluice.yml"))
        let parallel = """
            pipeline: check_llm
            defaults: { timeout: 30s, max_parallel: 3 }
            steps:
            \((1...3).map { "  - { id: check\($0), uses: validate_anthropic, with: { api_key: \"${{ env.ANTHROPIC_KEY }}\", base_url: \"\(server.baseURL)\", check: messages } }" }.joined(separator: "\n"))
            """
        let parallelPlan = try PipelinePlan.build(
            try #require(
                PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(parallel.utf8), file: "pipelines/check_llm.yml").definition
            )
        ).get()
        let together = try await executor.start(
            parallelPlan, .init(org: "initech", logicalDate: "2026-12-07", env: ["ANTHROPIC_KEY": FakeKeys.anthropic]))
        #expect(together.state == .failed)
        let outcomes = try await store.steps(of: together.id).map { $0.errorCode ?? $0.state.rawValue }.sorted()
        #expect(outcomes == ["budget_exceeded", "budget_exceeded", "succeeded"], "\(outcomes)")
        #expect(server.requests.count == 4)
    }

    @Test func theMessagesCheckAsksForOneToken() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, AnthropicBodies.message))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(processor, config(server, ", check: messages"), logs: logs)
        #expect(outputs["status"] == .string("valid"))
        // The answer's usage: 8 tokens in, 1 out.
        #expect(outputs["tokens_spent"] == .number(9))
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.uri == "/v1/messages")
        #expect(request.values("content-type") == ["application/json"])
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(body["model"] as? String == "claude-haiku-4-5")
        #expect(body["max_tokens"] as? Int == 1)
        let messages = try #require(body["messages"] as? [[String: String]])
        #expect(messages.count == 1)
        #expect(messages.first?["role"] == "user")
        expectKeyOnlyInXAPIKey(server, logs: logs)
    }

    @Test func theModelAndVersionAreConfigurable() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, AnthropicBodies.message))
        defer { Task { await server.stop() } }
        _ = try await runStep(processor, config(server, ", check: messages, model: claude-opus-4-1, api_version: \"2023-06-01\""))
        let request = try #require(server.requests.first)
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(body["model"] as? String == "claude-opus-4-1")
    }

    @Test(arguments: [401, 403])
    func aRefusedKeyIsInvalid(status: Int) async throws {
        let server = try await FakeProviderServer.start(answering: .json(status, AnthropicBodies.invalidKey))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, config(server), logs: logs)
        #expect(failure.code == "credential_invalid")
        #expect(!failure.transient)
        #expect(failure.message == "invalid: Anthropic refused the key: HTTP \(status) (type 'authentication_error')")
        expectKeyOnlyInXAPIKey(server, logs: logs, messages: [failure.message])
    }

    @Test func rateLimitedIsTransientWithRetryAfter() async throws {
        let server = try await FakeProviderServer.start(answering: .json(429, AnthropicBodies.rateLimited, headers: [("retry-after", "12")]))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server, ", check: messages"))
        #expect(failure.code == "rate_limited")
        #expect(failure.transient)
        #expect(failure.retryAfter == .seconds(12))
        #expect(failure.message.contains("(type 'rate_limit_error')"))
    }

    @Test func overloadedIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .json(529, AnthropicBodies.overloaded))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server))
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(failure.message.hasSuffix("is unavailable: HTTP 529 (type 'overloaded_error')"))
    }

    @Test func malformedJSONIsABadResponse() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, #"{"id":"msg_01","type":"mess"#))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server, ", check: messages"))
        #expect(failure.code == "provider_bad_response")
        #expect(failure.transient)
    }

    @Test func aSlowAnswerIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .delayed(TestTime.never, .json(200, AnthropicBodies.models)))
        defer { Task { await server.stop() } }
        let failure = try await failure(
            of: processor, "{ api_key: \(yamlQuoted(FakeKeys.anthropic)), base_url: \"\(server.baseURL)\", request_timeout: 250ms }")
        #expect(failure.code == "provider_unavailable")
        #expect(failure.message.hasSuffix("did not answer: no complete answer within 250ms (request_timeout)"))
    }

    @Test func aConnectionClosedMidResponseIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .closedMidResponse(200, start: #"{"data":[{"type":"model""#))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server))
        #expect(failure.code == "provider_unavailable")
        #expect(failure.message.hasSuffix("the connection closed before the answer was complete"))
    }
}
