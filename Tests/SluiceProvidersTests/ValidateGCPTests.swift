import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceProviders

struct ValidateGCPTests {
    let processor = ValidateGCPProcessor()

    func config(_ google: FakeGoogle, json: String? = nil, _ extra: String = "") -> String {
        """
        service_account_json: \(yamlQuoted(json ?? FakeKeys.serviceAccountJSON(tokenURI: google.tokenURL)))
        resource_manager_url: \(google.server.baseURL)
        request_timeout: 60s
        \(extra)
        """
    }

    /// Neither the private key nor the access token it bought shows up in a log, a message
    /// or a URL; the key file itself never leaves the process.
    func expectNothingLeaked(
        _ google: FakeGoogle, logs: LogCapture, messages: [String] = [],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        let texts = logs.all + messages + google.server.accessLog
        for fragment in FakeKeys.privateKeyFragments {
            expectNoLeak(
                of: fragment, in: texts + google.server.requests.map(\.everything), "logs, messages and requests",
                sourceLocation: sourceLocation)
        }
        expectNoLeak(of: FakeGoogle.accessToken, in: texts, "logs and messages", sourceLocation: sourceLocation)
    }

    @Test func aSignedJWTExchangedForATokenMeansValid() async throws {
        let google = try await FakeGoogle()
        defer { Task { await google.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(processor, config(google), logs: logs)
        #expect(google.problems == [])
        #expect(outputs == ["status": .string("valid"), "http_status": .number(200), "missing_permissions": .string("")])
        // token_url unset: the key file's token_uri is used.
        #expect(google.tokenRequests.count == 1)
        #expect(google.permissionRequests.isEmpty)
        expectNothingLeaked(google, logs: logs)
    }

    @Test func scopesAndTokenURLAreConfigurable() async throws {
        let scopes = "https://www.googleapis.com/auth/bigquery.readonly https://www.googleapis.com/auth/devstorage.read_only"
        let google = try await FakeGoogle(expectedScope: scopes)
        defer { Task { await google.stop() } }
        // The key file points elsewhere; token_url wins, and the JWT's audience follows it.
        let json = FakeKeys.serviceAccountJSON(tokenURI: "http://127.0.0.1:9/never")
        let outputs = try await runStep(
            processor,
            config(
                google, json: json,
                """
                token_url: \(google.tokenURL)
                scopes: [https://www.googleapis.com/auth/bigquery.readonly, https://www.googleapis.com/auth/devstorage.read_only]
                """))
        #expect(google.problems == [])
        #expect(outputs["status"] == .string("valid"))
    }

    @Test func missingPermissionsArePartiallyValidAndTheStepSucceeds() async throws {
        let google = try await FakeGoogle(held: ["bigquery.jobs.create"])
        defer { Task { await google.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(
            processor,
            config(
                google,
                """
                project: \(FakeGoogle.project)
                required_permissions: [bigquery.jobs.create, bigquery.tables.getData, storage.objects.list]
                """), logs: logs)
        #expect(google.problems == [])
        #expect(
            outputs == [
                "status": .string("partially_valid"), "http_status": .number(200),
                "missing_permissions": .string("bigquery.tables.getData,storage.objects.list"),
            ])
        let request = try #require(google.permissionRequests.first)
        #expect(request.method == "POST")
        #expect(request.values("Authorization") == ["Bearer \(FakeGoogle.accessToken)"])
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: [String]])
        #expect(body == ["permissions": ["bigquery.jobs.create", "bigquery.tables.getData", "storage.objects.list"]])
        expectNothingLeaked(google, logs: logs)
    }

    @Test func allPermissionsHeldIsValid() async throws {
        let google = try await FakeGoogle(held: ["bigquery.jobs.create", "bigquery.tables.getData"])
        defer { Task { await google.stop() } }
        let outputs = try await runStep(
            processor,
            config(
                google,
                """
                project: \(FakeGoogle.project)
                required_permissions: [bigquery.jobs.create, bigquery.tables.getData, bigquery.jobs.create]
                """))
        #expect(outputs == ["status": .string("valid"), "http_status": .number(200), "missing_permissions": .string("")])
    }

    @Test func noPermissionHeldLeavesThemAllMissing() async throws {
        let google = try await FakeGoogle(held: [])
        defer { Task { await google.stop() } }
        let outputs = try await runStep(
            processor,
            config(
                google,
                """
                project: \(FakeGoogle.project)
                required_permissions: [bigquery.jobs.create]
                """))
        #expect(outputs["status"] == .string("partially_valid"))
        #expect(outputs["missing_permissions"] == .string("bigquery.jobs.create"))
    }

    @Test func aProjectTheAccountCannotSeeCountsEveryPermissionAsMissing() async throws {
        let google = try await FakeGoogle(
            permissions: .json(403, #"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#))
        defer { Task { await google.stop() } }
        let logs = LogCapture()
        let outputs = try await runStep(
            processor,
            config(
                google,
                """
                project: \(FakeGoogle.project)
                required_permissions: [bigquery.jobs.create, storage.objects.list]
                """), logs: logs)
        #expect(
            outputs == [
                "status": .string("partially_valid"), "http_status": .number(403),
                "missing_permissions": .string("bigquery.jobs.create,storage.objects.list"),
            ])
        #expect(logs.text.contains("testIamPermissions refused"))
        #expect(logs.text.contains("PERMISSION_DENIED"))
    }

    @Test func invalidGrantMeansExpiredAndIsNotRetried() async throws {
        let google = try await FakeGoogle(token: .json(400, #"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#))
        defer { Task { await google.stop() } }
        let logs = LogCapture()
        let failure = try await failure(of: processor, config(google), logs: logs)
        #expect(failure.code == "credential_expired")
        #expect(!failure.transient)
        #expect(
            failure.message.hasPrefix(
                "expired: Google's token endpoint refused the service account's signed JWT: HTTP 400 (error 'invalid_grant', 'Invalid JWT Signature.')"
            ))
        expectNothingLeaked(google, logs: logs, messages: [failure.message])
    }

    @Test func invalidClientIsInvalid() async throws {
        let google = try await FakeGoogle(token: .json(401, #"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#))
        defer { Task { await google.stop() } }
        let failure = try await failure(of: processor, config(google))
        #expect(failure.code == "credential_invalid")
        #expect(!failure.transient)
        #expect(
            failure.message
                == "invalid: Google's token endpoint refused the service account: HTTP 401 (error 'invalid_client', 'The OAuth client was not found.')"
        )
    }

    @Test func theTokenEndpointBeingDownIsUnavailable() async throws {
        let google = try await FakeGoogle(token: .json(503, #"{"error":"temporarily_unavailable"}"#, headers: [("Retry-After", "2")]))
        defer { Task { await google.stop() } }
        let failure = try await failure(of: processor, config(google))
        #expect(failure.code == "provider_unavailable")
        #expect(failure.transient)
        #expect(failure.retryAfter == .seconds(2))
    }

    @Test func aTokenAnswerThatIsNotJSONIsABadResponse() async throws {
        let google = try await FakeGoogle(token: .json(200, #"{"access_token":"ya29.trunc"#))
        defer { Task { await google.stop() } }
        let failure = try await failure(of: processor, config(google))
        #expect(failure.code == "provider_bad_response")
        #expect(failure.transient)
        #expect(failure.message.contains("is not JSON with an access_token"))
    }

    @Test func aPermissionsAnswerThatIsNotJSONIsABadResponse() async throws {
        let google = try await FakeGoogle(permissions: .json(200, "<html>"))
        defer { Task { await google.stop() } }
        let failure = try await failure(of: processor, config(google, "project: \(FakeGoogle.project)\nrequired_permissions: [a.b.c]"))
        #expect(failure.code == "provider_bad_response")
    }

    @Test func aSlowTokenEndpointIsUnavailable() async throws {
        let google = try await FakeGoogle(token: .delayed(TestTime.never, .json(200, "{}")))
        defer { Task { await google.stop() } }
        let json = FakeKeys.serviceAccountJSON(tokenURI: google.tokenURL)
        let failure = try await failure(of: processor, "{ service_account_json: \(yamlQuoted(json)), request_timeout: 300ms }")
        #expect(failure.code == "provider_unavailable")
        #expect(failure.message.hasSuffix("no complete answer within 300ms (request_timeout)"))
    }

    @Test(arguments: [
        ("private_key", "has no 'private_key'"),
        ("client_email", "has no 'client_email'"),
        ("type", "has no 'type'"),
    ])
    func aKeyFileWithoutAFieldIsMalformedAndNamesTheField(field: String, problem: String) async throws {
        let google = try await FakeGoogle()
        defer { Task { await google.stop() } }
        let logs = LogCapture()
        let failure = try await failure(
            of: processor, config(google, json: FakeKeys.serviceAccountJSON(tokenURI: google.tokenURL, dropping: field)), logs: logs)
        #expect(failure.code == "credential_malformed")
        #expect(!failure.transient)
        #expect(failure.message.contains("'service_account_json' \(problem) (the value is not shown)"), "\(failure.message)")
        #expect(google.server.requests.isEmpty)
        expectNothingLeaked(google, logs: logs, messages: [failure.message])
    }

    @Test func aKeyFileOfAnotherTypeIsMalformed() async throws {
        let google = try await FakeGoogle()
        defer { Task { await google.stop() } }
        let failure = try await failure(
            of: processor, config(google, json: FakeKeys.serviceAccountJSON(tokenURI: google.tokenURL, type: "authorized_user")))
        #expect(failure.code == "credential_malformed")
        #expect(failure.message.contains("has type 'authorized_user', not service_account"))
    }

    @Test func aKeyFileThatIsNotJSONIsMalformed() async throws {
        let failure = try await failure(of: processor, "{ service_account_json: \"-----BEGIN PRIVATE KEY-----\" }")
        #expect(failure.code == "credential_malformed")
        #expect(
            failure.message
                == "invalid: 'service_account_json' is not a JSON object (the value is not shown); download a new key file for the service account")
    }

    @Test func aPrivateKeyThatIsNotRSAIsMalformedAndNotQuoted() async throws {
        var object = try #require(
            try JSONSerialization.jsonObject(with: Data(FakeKeys.serviceAccountJSON(tokenURI: "https://oauth2.googleapis.com/token").utf8))
                as? [String: String])
        object["private_key"] =
            "-----BEGIN PRIVATE KEY-----\nTUlJRXZnSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2d3Z2dTa0FnRUFBb0lCQVFD\n-----END PRIVATE KEY-----\n"
        let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let failure = try await failure(of: processor, "{ service_account_json: \(yamlQuoted(json)) }")
        #expect(failure.code == "credential_malformed")
        #expect(failure.message.contains("has a 'private_key' that is not an RSA private key"))
        #expect(!failure.message.contains("TUlJRXZn"))
    }
}
