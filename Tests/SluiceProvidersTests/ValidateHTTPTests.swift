import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceProviders

struct ValidateHTTPTests {
    let processor = ValidateHTTPProcessor()

    func config(_ server: FakeProviderServer, _ extra: String = "", path: String = "/v1/me") -> String {
        "{ url: \"\(server.baseURL)\(path)\", secret: \(yamlQuoted(FakeKeys.vendor)), request_timeout: 60s\(extra) }"
    }

    /// The secret appears in the request exactly once, in `place`, and nowhere else.
    func expectSecretOnlyIn(_ place: String, _ server: FakeProviderServer, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        for request in server.requests {
            let text = request.everything
            #expect(text.components(separatedBy: FakeKeys.vendor).count == 2, "the secret is not there exactly once", sourceLocation: sourceLocation)
            #expect(
                text.replacingOccurrences(of: place, with: "").contains(FakeKeys.vendor) == false,
                "the secret travelled outside \(place)", sourceLocation: sourceLocation)
        }
    }

    @Test func aBearerTokenGoesIntoAuthorization() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, #"{"id":"me"}"#))
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(processor, config(server), logs: logs)
        #expect(outputs == ["status": .string("valid"), "http_status": .number(200)])
        let request = try #require(server.requests.first)
        #expect(request.method == "GET")
        #expect(request.uri == "/v1/me")
        #expect(request.values("Authorization") == ["Bearer \(FakeKeys.vendor)"])
        expectSecretOnlyIn("Authorization: Bearer \(FakeKeys.vendor)", server)
        expectNoLeak(of: FakeKeys.vendor, in: logs.all + server.accessLog, "logs")
    }

    @Test func aNamedHeaderCarriesTheSecretAsIs() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(204))
        defer { Task { await server.stop() } }
        let outputs = try await runStep(
            processor, config(server, ", secret_in: header, header_name: X-Vendor-Token, method: POST, expected_status: [200, 204]"))
        #expect(outputs == ["status": .string("valid"), "http_status": .number(204)])
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.values("X-Vendor-Token") == [FakeKeys.vendor])
        #expect(request.values("Authorization").isEmpty)
        expectSecretOnlyIn("X-Vendor-Token: \(FakeKeys.vendor)", server)
    }

    @Test func aQueryParameterIsTheOnlyWayIntoTheURLAndLogsLeaveItOut() async throws {
        let server = try await FakeProviderServer.start(answering: [.json(200, "{}"), .json(401, #"{"error":{"type":"auth"}}"#)])
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let yaml = config(server, ", secret_in: query, query_param: api_key", path: "/v1/me?fields=id")
        let outputs = try await runStep(processor, yaml, logs: logs)
        #expect(outputs["status"] == .string("valid"))
        let request = try #require(server.requests.first)
        #expect(request.uri == "/v1/me?fields=id&api_key=\(FakeKeys.vendor)")
        #expect(request.values("Authorization").isEmpty)
        expectSecretOnlyIn("api_key=\(FakeKeys.vendor)", server)
        // Sluice logs the URL without its query; a refusal's message has no query either.
        let failure = try await failure(of: processor, yaml, logs: logs)
        #expect(failure.code == "credential_invalid")
        #expect(failure.message == "invalid: 127.0.0.1 refused the secret: HTTP 401 (type 'auth')")
        #expect(logs.all.filter { $0.hasSuffix("url=\(server.baseURL)/v1/me") }.count == 2, "\(logs.all)")
        expectNoLeak(of: FakeKeys.vendor, in: logs.all + [failure.message, failure.description], "logs and messages")
    }

    @Test func aSecretNeedingEscapesIsPercentEncodedInTheQuery() async throws {
        let server = try await FakeProviderServer.start(answering: .json(200, "{}"))
        defer { Task { await server.stop() } }
        _ = try await runStep(processor, "{ url: \"\(server.baseURL)/check\", secret: \"a+b/c=d&e\", secret_in: query, query_param: token }")
        #expect(server.requests.first?.uri == "/check?token=a%2Bb%2Fc%3Dd%26e")
    }

    @Test func headRequestsWork() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(200))
        defer { Task { await server.stop() } }
        let outputs = try await runStep(processor, config(server, ", method: HEAD"))
        #expect(outputs["status"] == .string("valid"))
        #expect(server.requests.first?.method == "HEAD")
    }

    @Test func aSuccessThatIsNotExpectedIsAnUnexpectedStatus() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(200))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server, ", expected_status: [204]"))
        #expect(failure.code == "provider_unexpected_status")
        #expect(!failure.transient)
        #expect(failure.message == "127.0.0.1 (\(server.baseURL)/v1/me) answered HTTP 200, not one of expected_status (204)")
    }

    @Test func anExpectedStatusIsValidEvenWhenItIsNotASuccess() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(404))
        defer { Task { await server.stop() } }
        let outputs = try await runStep(processor, config(server, ", expected_status: [404]"))
        #expect(outputs == ["status": .string("valid"), "http_status": .number(404)])
    }

    @Test func theOtherStatusesAreClassifiedLikeTheProviders() async throws {
        let cases: [(ScriptedResponse, String, Bool)] = [
            (.answer(403), "credential_invalid", false),
            (.answer(429, headers: [("Retry-After", "4")]), "rate_limited", true),
            (.answer(500), "provider_unavailable", true),
            (.closedMidResponse(200, start: "{"), "provider_unavailable", true),
            (.answer(400), "provider_unexpected_status", false),
        ]
        for (response, code, transient) in cases {
            let server = try await FakeProviderServer.start(answering: response)
            let failure = try await failure(of: processor, config(server))
            await server.stop()
            #expect(failure.code.rawValue == code, "\(response.statusForLog)")
            #expect(failure.transient == transient, "\(response.statusForLog)")
        }
    }

    @Test func aBadHeaderNameIsInvalidConfig() async throws {
        let server = try await FakeProviderServer.start(answering: .answer(200))
        defer { Task { await server.stop() } }
        let failure = try await failure(of: processor, config(server, ", secret_in: header, header_name: \"X Token\""))
        #expect(failure.code == "invalid_config")
        #expect(server.requests.isEmpty)
    }
}
