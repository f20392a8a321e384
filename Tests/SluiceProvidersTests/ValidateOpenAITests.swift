import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// Bodies the way OpenAI writes them.
enum OpenAIBodies {
    static let models = #"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}"#
    /// OpenAI quotes the end of a wrong key in its message; Sluice must not pass that on.
    static let invalidKey =
        #"{"error":{"message":"Incorrect API key provided: sk-proj-****ONLY. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
    static let rateLimited = #"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
    static let serverError =
        #"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#
}

func openAIConfig(_ server: FakeProviderServer, timeout: String = "60s", extra: String = "") -> String {
    """
    api_key: \(yamlQuoted(FakeKeys.openAI))
    base_url: \(server.baseURL)
    request_timeout: \(timeout)
    \(extra)
    """
}

func openAIConfig(port: Int, timeout: String) -> String {
    "{ api_key: \(yamlQuoted(FakeKeys.openAI)), base_url: \"http://127.0.0.1:\(port)\", request_timeout: \(timeout) }"
}

struct ValidateOpenAITests {
    let processor = ValidateOpenAIProcessor()

    /// What every OpenAI test checks afterwards: the key went only into Authorization, once,
    /// and into no log, message or URL.
    func expectKeyOnlyInAuthorization(
        _ server: FakeProviderServer, logs: LogCapture, messages: [String] = [],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        for request in server.requests {
            #expect(request.values("Authorization") == ["Bearer \(FakeKeys.openAI)"], sourceLocation: sourceLocation)
            let elsewhere = request.everything.replacingOccurrences(of: "Authorization: Bearer \(FakeKeys.openAI)", with: "")
            #expect(!elsewhere.contains(FakeKeys.openAI), "the key travelled outside Authorization", sourceLocation: sourceLocation)
        }
        expectNoLeak(of: FakeKeys.openAI, in: server.accessLog, "the provider's access log", sourceLocation: sourceLocation)
        expectNoLeak(of: FakeKeys.openAI, in: logs.all, "Sluice's log", sourceLocation: sourceLocation)
        expectNoLeak(of: FakeKeys.openAI, in: messages, "the failure", sourceLocation: sourceLocation)
    }

    @Test func aModelsListMeansValid() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, OpenAIBodies.models))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(processor, openAIConfig(server, extra: "organization: org-finops"), logs: logs)
        #expect(outputs == ["status": .string("valid"), "http_status": .number(200)])
        let request = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(request.method == "GET")
        #expect(request.uri == "/v1/models")
        #expect(request.values("OpenAI-Organization") == ["org-finops"])
        expectKeyOnlyInAuthorization(server, logs: logs)
        // One log line per call: provider, URL without query, status, elapsed.
        let line = try #require(logs.all.first { $0.contains("provider answered") })
        #expect(line.contains("provider=OpenAI"))
        #expect(line.contains("url=\(server.baseURL)/v1/models"))
        #expect(line.contains("http_status=200"))
        #expect(line.contains("elapsed_ms="))
    }

    @Test func aTrailingSlashOnTheBaseURLIsDropped() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, OpenAIBodies.models))
        defer { Task { await server.stop() } }
        _ = try await runStep(processor, "{ api_key: \(yamlQuoted(FakeKeys.openAI)), base_url: \"\(server.baseURL)/\" }")
        #expect(server.requests.map(\.uri) == ["/v1/models"])
        #expect(server.requests.first?.values("OpenAI-Organization") == [])
    }

    @Test(arguments: [401, 403])
    func aRefusedKeyIsInvalidAndPermanent(status: Int) async throws {
        let server = try await FakeProviderServer.start(answering: .json(status, OpenAIBodies.invalidKey))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, openAIConfig(server), logs: logs)
        #expect(failure.code == "credential_invalid")
        #expect(!failure.transient)
        #expect(failure.retryAfter == nil)
        #expect(failure.message == "invalid: OpenAI refused the key: HTTP \(status) (type 'invalid_request_error', code 'invalid_api_key')")
        #expect(!failure.message.contains("****ONLY"), "the provider's message quotes part of the key")
        expectKeyOnlyInAuthorization(server, logs: logs, messages: [failure.message, failure.description])
    }

    @Test func rateLimitedIsTransientAndCarriesRetryAfterSeconds() async throws {
        let server = try await FakeProviderServer.start(answering: .json(429, OpenAIBodies.rateLimited, headers: [("Retry-After", "7")]))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, openAIConfig(server), logs: logs)
        #expect(failure.code == "rate_limited")
        #expect(failure.transient)
        #expect(failure.retryAfter == .seconds(7))
        #expect(
            failure.message.hasPrefix(
                "rate_limited: OpenAI rate-limited the check: HTTP 429 (type 'requests', code 'rate_limit_exceeded'); it asked to wait 7s"))
        #expect(failure.message.contains("not known to be invalid"))
        expectKeyOnlyInAuthorization(server, logs: logs, messages: [failure.message])
    }

    @Test func rateLimitedHonoursAnHTTPDateRetryAfter() async throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        // The date is made when the answer is, so a busy machine can't eat into the wait.
        let server = try await FakeProviderServer.start { _, _ in
            .json(429, OpenAIBodies.rateLimited, headers: [("Retry-After", formatter.string(from: Date().addingTimeInterval(90)))])
        }
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "rate_limited")
        let wait = try #require(failure.retryAfter)
        // 90 s cut to the second, less however long the answer took to be read.
        #expect(wait > .seconds(60) && wait <= .seconds(91), "\(wait)")
    }

    @Test func rateLimitedWithoutRetryAfterLeavesTheWaitToTheBackoff() async throws {
        let server = try await FakeProviderServer.start(answering: .json(429, OpenAIBodies.rateLimited))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "rate_limited")
        #expect(failure.transient)
        #expect(failure.retryAfter == nil)
    }

    @Test(arguments: [500, 502, 503])
    func serverErrorsAreUnavailableAndTransient(status: Int) async throws {
        let server = try await FakeProviderServer.start(answering: .json(status, OpenAIBodies.serverError, headers: [("Retry-After", "3")]))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, openAIConfig(server), logs: logs)
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(failure.message == "unavailable: OpenAI (\(server.baseURL)/v1/models) is unavailable: HTTP \(status) (type 'server_error')")
        // Only a 503 is a "come back later" whose Retry-After means something.
        #expect(failure.retryAfter == (status == 503 ? .seconds(3) : nil))
        expectKeyOnlyInAuthorization(server, logs: logs, messages: [failure.message])
    }

    @Test func anAnswerSlowerThanTheTimeoutIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .delayed(TestTime.never, .json(200, OpenAIBodies.models)))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let clock = ContinuousClock()
        let started = clock.now
        let failure = try await failure(of: processor, openAIConfig(server, timeout: "300ms"), logs: logs)
        let elapsed = clock.now - started
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(
            failure.message == "unavailable: OpenAI (\(server.baseURL)/v1/models) did not answer: no complete answer within 300ms (request_timeout)")
        // Cut at the timeout, not when the server would have answered.
        #expect(elapsed >= .milliseconds(300) && elapsed < TestTime.patience, "\(elapsed)")
        #expect(logs.text.contains("provider did not answer"))
        expectKeyOnlyInAuthorization(server, logs: logs, messages: [failure.message])
    }

    @Test func aBodySlowerThanTheTimeoutIsUnavailableToo() async throws {
        // The head arrives at once; the client's own deadline ends there, so the validator's
        // timeout must cover the body.
        let server = try await FakeProviderServer.start(answering: .stalledBody(200, start: #"{"object":"list","da"#, wait: TestTime.never))
        defer { Task { await server.stop() } }
        let clock = ContinuousClock()
        let started = clock.now
        let failure = try await failure(of: processor, openAIConfig(server, timeout: "400ms"))
        let elapsed = clock.now - started
        #expect(failure.code == "provider_unavailable")
        #expect(failure.message.contains("no complete answer within 400ms"))
        #expect(elapsed >= .milliseconds(400) && elapsed < TestTime.patience, "\(elapsed)")
    }

    @Test func malformedJSONOnSuccessIsABadResponse() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, #"{"object":"list","data":[{"id":"gpt-4o"#))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "provider_bad_response")
        #expect(failure.transient)
        #expect(
            failure.message.hasPrefix("unavailable: OpenAI (\(server.baseURL)/v1/models) answered HTTP 200 but the body is not a JSON models list"))
    }

    @Test func anHTMLPageOnSuccessIsABadResponse() async throws {
        let server = try await FakeProviderServer.start(
            answering: .answer(200, headers: [("Content-Type", "text/html")], body: "<html>Sign in to the proxy</html>"))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "provider_bad_response")
    }

    @Test func malformedJSONOnARefusalIsStillInvalid() async throws {
        let server = try await FakeProviderServer.start(answering: .json(401, "{not json"))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "credential_invalid")
        #expect(failure.message == "invalid: OpenAI refused the key: HTTP 401")
    }

    @Test func aConnectionClosedMidResponseIsUnavailable() async throws {
        let server = try await FakeProviderServer.start(answering: .closedMidResponse(200, start: #"{"object":"list","data":["#))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, openAIConfig(server), logs: logs)
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(failure.message.contains("did not answer: the connection closed before the answer was complete"), "\(failure.message)")
        expectKeyOnlyInAuthorization(server, logs: logs, messages: [failure.message])
    }

    @Test func aRefusedConnectionIsUnavailable() async throws {
        let port = try await FakeProviderServer.refusedPort()
        let logs = LogCapture()
        let clock = ContinuousClock()
        let started = clock.now
        let failure = try await failure(of: processor, openAIConfig(port: port, timeout: "15m"), logs: logs)
        let elapsed = clock.now - started
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(failure.message == "unavailable: OpenAI (http://127.0.0.1:\(port)/v1/models) did not answer: the connection was refused")
        // At once, not at the 15 min timeout: the executor's retry policy decides when to try
        // again, not the HTTP client.
        #expect(elapsed < TestTime.patience, "\(elapsed)")
        expectNoLeak(of: FakeKeys.openAI, in: logs.all + [failure.message], "log and failure")
    }

    @Test func aWrongBaseURLIsAnUnexpectedStatusWithAHint() async throws {
        let server = try await FakeProviderServer.start(
            answering: .json(404, #"{"error":{"message":"Unknown request URL","type":"invalid_request_error","code":"unknown_url"}}"#))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "provider_unexpected_status")
        #expect(!failure.transient)
        #expect(
            failure.message.contains(
                "answered HTTP 404 (type 'invalid_request_error', code 'unknown_url'), which says nothing about the key; check the base URL"))
    }

    @Test func aRedirectIsNotFollowedSoTheKeyStaysWithTheProvider() async throws {
        let elsewhere = try await FakeProviderServer.start(answering: .json(200, OpenAIBodies.models))
        defer { Task { await elsewhere.stop() } }
        let server = try await FakeProviderServer.start(answering: .answer(302, headers: [("Location", "\(elsewhere.baseURL)/v1/models")]))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, openAIConfig(server))
        #expect(failure.code == "provider_unexpected_status")
        #expect(failure.message.contains("a redirect, which is not followed"))
        #expect(elsewhere.requests.isEmpty)
    }

    @Test func anEmptyKeyIsRefusedBeforeAnyRequest() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, OpenAIBodies.models))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, "{ api_key: \"\", base_url: \"\(server.baseURL)\" }")
        #expect(failure.code == "credential_malformed")
        #expect(failure.location?.line == 1)
        #expect(server.requests.isEmpty)
    }

    @Test func aKeyWithALineBreakIsRefusedWithoutShowingIt() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, OpenAIBodies.models))
        defer { Task { await server.stop() } }
        let failure = try await failure(
            of: processor, "{ api_key: \(yamlQuoted(FakeKeys.openAI + "\r\nX-Injected: 1")), base_url: \"\(server.baseURL)\" }")
        #expect(failure.code == "credential_malformed")
        #expect(!failure.message.contains(FakeKeys.openAI))
        #expect(server.requests.isEmpty)
    }

    @Test func aBaseURLThatIsNotHTTPIsInvalidConfig() async throws {
        let failure = try await failure(of: processor, "{ api_key: \(yamlQuoted(FakeKeys.openAI)), base_url: \"ftp://example.com\" }")
        #expect(failure.code == "invalid_config")
        #expect(failure.message == "'base_url' must be an http or https URL with a host, not 'ftp://example.com'")
    }
}
