import Foundation
import SluiceEngine
import SluiceRuntime
import SluiceSQLite
import SluiceSecrets
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

/// Standard Webhooks deliveries, signed by an independent implementation (Python's hmac),
/// against a live server whose hook secrets are sealed credentials.
struct WebhookTests {
    /// A passphrase-derived key, so the tests need no keyring file.
    static let keyEnvironment = ["SLUICE_KEY_PASSPHRASE": "webhook tests passphrase", "SLUICE_KEY_SALT": "0123456789abcdef0123456789abcdef"]

    /// `now`: the clock timestamps are checked against, when not the wall clock.
    static func start(_ project: URL, now: Date? = nil) async throws -> LiveServer {
        try await LiveServer.start(project: project) { configuration in
            configuration.environment = ProcessInfo.processInfo.environment.merging(keyEnvironment) { $1 }
            if let now { configuration.now = { now } }
        }
    }

    /// Stores `secret` as org's hook for `pipeline`, with a payload mapping, as `sluice hooks create` does.
    static func credentials(_ live: LiveServer) throws -> Credentials {
        let keys = try live.server.services.keys(environment: keyEnvironment)
        return Credentials(store: live.server.services.credentialStore, keys: keys)
    }

    static func createHook(
        _ live: LiveServer, org: String = "acme", pipeline: String = "genai_costs_daily", secret: String,
        metadata: String = #"{"param_usage_file": "data.file", "logical_date": "data.day"}"#
    ) async throws {
        try await credentials(live).put(
            org: org, name: "webhooks/\(pipeline)", value: SecretBytes(Array(secret.utf8)),
            provider: "generic", expiresAt: nil, metadata: metadata)
    }

    static let secret1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let secret2 = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

    /// `v1,<base64>` computed by Python's hmac over id.timestamp.body, with the secret's bytes.
    static func sign(_ secret: String, id: String, timestamp: Int, body: String) async throws -> String {
        try await python(
            """
            import base64, hashlib, hmac, sys
            secret, message_id, timestamp, body = sys.argv[1:5]
            key = base64.b64decode(secret[len("whsec_"):])
            digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
            print("v1," + base64.b64encode(digest).decode(), end="")
            """, arguments: [secret, id, String(timestamp), body])
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    static func deliver(
        _ live: LiveServer, path: String = "/v1/hooks/acme/genai_costs_daily", id: String, timestamp: Int = now,
        body: String, signature: String? = nil, secret: String = secret1, drop: String? = nil
    ) async throws -> HTTPResult {
        let signature = if let signature { signature } else { try await sign(secret, id: id, timestamp: timestamp, body: body) }
        var headers = ["webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature]
        if let drop { headers[drop] = nil }
        return try await live.request("POST", path, headers: headers, body: Data(body.utf8))
    }

    static let payload = #"{"type": "usage.exported", "data": {"file": "examples/data/genai_usage.csv", "day": "2026-03-04T02:30:00Z"}}"#

    @Test func aSignedDeliveryStartsARunWithParamsFromThePayload() async throws {
        let live = try await Self.start(try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await Self.createHook(live, secret: Self.secret1)
        let response = try await Self.deliver(live, id: "msg_2hXvb7", body: Self.payload)
        #expect(response.status == 202, "\(response.text)")
        #expect(response.json["message_id"] as? String == "msg_2hXvb7")
        let runID = try #require(response.json["run_id"] as? String)
        let token = try await live.token("acme")
        let ended = try await live.waitForEnd(runID, token: token)
        #expect(ended["state"] as? String == "succeeded", "\(ended)")
        #expect(ended["trigger"] as? String == "webhook")
        #expect(ended["logical_date"] as? String == "2026-03-04")
        #expect(ended["params"] as? [String: String] == ["usage_file": "examples/data/genai_usage.csv"])
        #expect(ended["request_id"] as? String == response.header("X-Request-Id"))
        let audit = try await live.server.webhookAuditRecords(org: "acme")
        #expect(audit.map(\.reason) == ["accepted"])
        #expect(audit.first?.runID == runID)
        #expect(audit.first?.messageID == "msg_2hXvb7")

        // A payload field of the wrong kind is refused, and starts nothing.
        let bad = try await Self.deliver(live, id: "msg_bad", body: #"{"data": {"file": {"nested": true}}}"#)
        #expect(bad.status == 422)
        #expect(bad.errorCode == "invalid_payload")
        #expect((bad.error["message"] as? String)?.contains("payload field data.file (param 'usage_file') must be a string") == true)
        let badParam = try await Self.deliver(live, id: "msg_bad2", body: #"{"data": {"file": "usage.txt"}}"#)
        #expect(badParam.status == 422)
        #expect(badParam.errorCode == "invalid_params")
        #expect(try await live.server.store.runs(pipeline: nil, org: "acme", limit: 10).count == 1)
        try await live.stop()
    }

    @Test func everyRefusalGetsItsStatusAndIsCountedAndAudited() async throws {
        let live = try await Self.start(try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await Self.createHook(live, secret: Self.secret1)
        let body = Self.payload
        var expected: [String: Int] = [:]
        func check(_ response: HTTPResult, _ status: Int, _ code: String, _ reason: String, _ message: String) {
            #expect(response.status == status, "\(reason): \(response.status) \(response.text)")
            #expect(response.errorCode == code, "\(reason): \(response.text)")
            #expect((response.error["message"] as? String)?.contains(message) == true, "\(reason): \(response.text)")
            expected[reason, default: 0] += 1
        }
        for header in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            check(
                try await Self.deliver(live, id: "msg_1", body: body, drop: header), 400, "missing_header", "missing_header",
                "needs the \(header) header")
        }
        check(
            try await Self.deliver(live, id: "msg_1", timestamp: 0, body: body, signature: "v1,abc"), 401, "unauthenticated",
            "stale_timestamp", "deliveries older than 300 s are refused")
        // (Margins of 30 s: signing and sending take time on a busy machine.)
        check(
            try await Self.deliver(live, id: "msg_1", timestamp: Self.now - 330, body: body), 401, "unauthenticated", "stale_timestamp",
            "deliveries older than 300 s")
        check(
            try await Self.deliver(live, id: "msg_1", timestamp: Self.now + 90, body: body), 401, "unauthenticated", "future_timestamp",
            "at most 60 s ahead")
        check(
            try await Self.deliver(live, id: "msg_1", body: body, secret: Self.secret2), 401, "unauthenticated", "bad_signature",
            "no signature in webhook-signature matches")
        check(
            try await Self.deliver(live, id: "msg_1", body: body, signature: "v2,aGVsbG8="), 401, "unauthenticated", "bad_signature",
            "has no v1,")
        // Signed for another body (a tampered payload).
        let signedAt = Self.now
        let tampered = try await Self.sign(Self.secret1, id: "msg_1", timestamp: signedAt, body: body)
        check(
            try await Self.deliver(
                live, id: "msg_1", timestamp: signedAt, body: body.replacingOccurrences(of: "03-04", with: "03-05"),
                signature: tampered),
            401, "unauthenticated", "bad_signature", "matches")
        check(
            try await Self.deliver(live, path: "/v1/hooks/acme/finops_data_quality", id: "msg_1", body: body), 404, "hook_not_found",
            "unknown_hook", "no webhook for pipeline 'finops_data_quality' in org 'acme'")
        check(
            try await Self.deliver(live, path: "/v1/hooks/other/genai_costs_daily", id: "msg_1", body: body), 404, "hook_not_found",
            "unknown_hook", "in org 'other'")
        check(
            try await Self.deliver(live, path: "/v1/hooks/acme/nope", id: "msg_1", body: body), 404, "hook_not_found", "unknown_hook",
            "no webhook")
        let large = "{\"pad\": \"" + String(repeating: "x", count: 1 << 20) + "\"}"
        check(try await Self.deliver(live, id: "msg_1", body: large, signature: "v1,abc"), 413, "body_too_large", "body_too_large", "1 MiB")
        check(try await Self.deliver(live, id: "msg_1", body: "{not json"), 400, "invalid_json", "invalid_payload", "not valid JSON")
        // The Content-Type header is not signed, so it decides nothing: curl's default form type
        // with a stale timestamp is a stale timestamp.
        check(
            try await live.request(
                "POST", "/v1/hooks/acme/genai_costs_daily",
                headers: [
                    "webhook-id": "msg_1", "webhook-timestamp": String(Self.now - 600), "Content-Type": "application/x-www-form-urlencoded",
                    "webhook-signature": try await Self.sign(Self.secret1, id: "msg_1", timestamp: Self.now - 600, body: body),
                ], body: Data(body.utf8)),
            401, "unauthenticated", "stale_timestamp", "deliveries older than 300 s")
        check(try await Self.deliver(live, id: "bad id", body: body), 400, "invalid_header", "invalid_header", "webhook-id must be")

        // Just inside the window on both sides: verified.
        for timestamp in [Self.now - 270, Self.now + 30] {
            let inside = try await Self.deliver(
                live, path: "/v1/hooks/acme/genai_costs_daily/verify", id: "msg_edge", timestamp: timestamp, body: body)
            #expect(inside.status == 200, "\(inside.text)")
        }

        let metricsToken = try await live.token(nil)
        let metrics = try await live.get("/metrics", token: metricsToken).text
        for (reason, count) in expected {
            #expect(metrics.contains(#"sluice_webhook_refusals_total{reason="\#(reason)"} \#(count)"#), "\(reason) \(count)\n\(metrics)")
        }
        var audited: [String: Int] = [:]
        for org in ["acme", "other"] {
            for record in try await live.server.webhookAuditRecords(org: org) where record.outcome == .refused {
                audited[record.reason, default: 0] += 1
            }
        }
        #expect(audited == expected)
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }

    @Test func aReplayedMessageIsRefusedEvenAfterARestart() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let live = try await Self.start(project)
        try await Self.createHook(live, secret: Self.secret1)
        let first = try await Self.deliver(live, id: "msg_once", body: Self.payload)
        #expect(first.status == 202)
        let runID = try #require(first.json["run_id"] as? String)
        // Re-signed with a fresh timestamp: a sender's retry, or an attacker's replay.
        let again = try await Self.deliver(live, id: "msg_once", body: Self.payload)
        #expect(again.status == 409)
        #expect(again.errorCode == "replayed")
        #expect((again.error["message"] as? String)?.contains("was delivered before (run \(runID))") == true)
        _ = try await live.waitForEnd(runID, token: try await live.token("acme"))
        try await live.stop()

        let restarted = try await Self.start(project)
        let afterRestart = try await Self.deliver(restarted, id: "msg_once", body: Self.payload)
        #expect(afterRestart.status == 409, "\(afterRestart.text)")
        #expect(afterRestart.errorCode == "replayed")
        let other = try await Self.deliver(restarted, id: "msg_twice", body: Self.payload)
        #expect(other.status == 202)
        // genai_costs_daily keeps one run active at a time (max_active_runs).
        _ = try await restarted.waitForEnd(try #require(other.json["run_id"] as? String), token: try await restarted.token("acme"))

        // Twenty copies at once: one run.
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            let timestamp = Self.now
            let signature = try await Self.sign(Self.secret1, id: "msg_burst", timestamp: timestamp, body: Self.payload)
            for _ in 0..<20 {
                group.addTask {
                    try await Self.deliver(restarted, id: "msg_burst", timestamp: timestamp, body: Self.payload, signature: signature).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 == 202 }.count == 1)
        #expect(results.filter { $0 == 409 }.count == 19)
        #expect(try await restarted.server.store.runs(pipeline: nil, org: "acme", limit: 10).count == 3)
        try await restarted.stop()
    }

    @Test func severalSignaturesAndARotatedSecretVerifyUntilItsGraceEnds() async throws {
        let live = try await Self.start(try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await Self.createHook(live, secret: Self.secret1)
        let verify = "/v1/hooks/acme/genai_costs_daily/verify"
        let body = Self.payload
        #expect(try await Self.deliver(live, path: verify, id: "m1", body: body, secret: Self.secret1).status == 200)
        #expect(try await Self.deliver(live, path: verify, id: "m1", body: body, secret: Self.secret2).status == 401)

        // Rotation: both secrets verify during the grace period.
        let credentials = try Self.credentials(live)
        let stored = try await credentials.rotate(
            org: "acme", name: "webhooks/genai_costs_daily", value: SecretBytes(Array(Self.secret2.utf8)),
            grace: .seconds(20))
        let graceEnds = try #require(stored.previousValidUntil)
        #expect(try await Self.deliver(live, path: verify, id: "m2", body: body, secret: Self.secret1).status == 200)
        #expect(try await Self.deliver(live, path: verify, id: "m2", body: body, secret: Self.secret2).status == 200)
        // Several space-separated signatures: one valid v1 entry is enough; others are ignored.
        let timestamp = Self.now
        let good = try await Self.sign(Self.secret2, id: "m3", timestamp: timestamp, body: body)
        let wrong = try await Self.sign("whsec_" + Data(repeating: 7, count: 24).base64EncodedString(), id: "m3", timestamp: timestamp, body: body)
        for header in ["\(wrong) \(good)", "v2,xyz \(good)", "\(good) v1,!!notbase64", "  \(wrong)   \(good)  "] {
            let response = try await Self.deliver(live, path: verify, id: "m3", timestamp: timestamp, body: body, signature: header)
            #expect(response.status == 200, "\(header): \(response.text)")
        }
        #expect(
            try await Self.deliver(live, path: verify, id: "m3", timestamp: timestamp, body: body, signature: "\(wrong) v2,\(good.dropFirst(3))")
                .status == 401)

        #expect(Date() < graceEnds, "the machine is too slow for this test's grace period")
        // After the grace period only the new secret verifies.
        try await Task.sleep(for: .seconds(max(0, graceEnds.timeIntervalSinceNow) + 0.3))
        #expect(try await Self.deliver(live, path: verify, id: "m4", body: body, secret: Self.secret1).status == 401)
        #expect(try await Self.deliver(live, path: verify, id: "m4", body: body, secret: Self.secret2).status == 200)
        // The verify route starts nothing.
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }
}

/// Where the timestamp window and the signature header end, as the Standard Webhooks
/// reference libraries draw them.
struct WebhookEdgeTests {
    @Test func aDeliveryExactlyFiveMinutesOldIsAcceptedAndOneSecondOlderIsRefusedWithItsAge() async throws {
        // The server's clock stands 0.9 s into a second: ages are whole seconds of it.
        let second = Int(Date().timeIntervalSince1970)
        let live = try await WebhookTests.start(try exampleProject(), now: Date(timeIntervalSince1970: Double(second) + 0.9))
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await WebhookTests.createHook(live, secret: WebhookTests.secret1)
        let verify = "/v1/hooks/acme/genai_costs_daily/verify"
        let body = WebhookTests.payload
        for timestamp in [second - 300, second + 60] {
            let inside = try await WebhookTests.deliver(live, path: verify, id: "msg_edge", timestamp: timestamp, body: body)
            #expect(inside.status == 200, "\(timestamp - second) s: \(inside.text)")
        }
        let old = try await WebhookTests.deliver(live, path: verify, id: "msg_old", timestamp: second - 301, body: body)
        #expect(old.status == 401, "\(old.text)")
        #expect(
            old.error["message"] as? String
                == "webhook-timestamp is 301 s old; deliveries older than 300 s are refused (a replay, or a clock that is wrong)", "\(old.text)")
        let ahead = try await WebhookTests.deliver(live, path: verify, id: "msg_ahead", timestamp: second + 61, body: body)
        #expect(ahead.status == 401, "\(ahead.text)")
        #expect(
            (ahead.error["message"] as? String)?.hasPrefix("webhook-timestamp is 61 s in the future; at most 60 s ahead") == true, "\(ahead.text)")
        try await live.stop()
    }

    @Test func aValidSignatureIsFoundAfterAnyNumberOfOtherEntries() async throws {
        let live = try await WebhookTests.start(try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        try await WebhookTests.createHook(live, secret: WebhookTests.secret1)
        let verify = "/v1/hooks/acme/genai_costs_daily/verify"
        let body = WebhookTests.payload
        let timestamp = WebhookTests.now
        let good = try await WebhookTests.sign(WebhookTests.secret1, id: "msg_many", timestamp: timestamp, body: body)
        // Well-formed v1 entries of other secrets, as a sender rotating through many would send.
        let others = (0..<1_000).map { index in "v1," + Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }).base64EncodedString() }
        for count in [16, 17, 1_000] {
            let header = (others.prefix(count) + [good]).joined(separator: " ")
            let response = try await WebhookTests.deliver(live, path: verify, id: "msg_many", timestamp: timestamp, body: body, signature: header)
            #expect(response.status == 200, "the valid entry after \(count) others: \(response.text)")
        }
        let none = try await WebhookTests.deliver(
            live, path: verify, id: "msg_many", timestamp: timestamp, body: body,
            signature: others.joined(separator: " "))
        #expect(none.status == 401)
        try await live.stop()
    }
}

/// A hook whose stored secret can't be used: refused with 503, without a decrypt (an audit
/// row) and an error line for every post.
struct UnusableHookTests {
    @Test func postsToAHookWithABrokenSecretAreRefusedWithoutADecryptOrALogLineEach() async throws {
        let logs = LogCapture()
        let live = try await LiveServer.start(
            project: try exampleProject(),
            configure: { configuration in
                configuration.environment = ProcessInfo.processInfo.environment.merging(WebhookTests.keyEnvironment) { $1 }
            }, logger: logs.logger)
        defer { try? FileManager.default.removeItem(at: live.project) }
        // Not a whsec_ value: it opens, but can't key an HMAC.
        try await WebhookTests.credentials(live).put(
            org: "acme", name: "webhooks/genai_costs_daily", value: SecretBytes(Array("not-a-webhook-secret".utf8)),
            provider: "generic", expiresAt: nil, metadata: nil)
        for index in 0..<5 {
            let refused = try await WebhookTests.deliver(live, id: "msg_broken_\(index)", body: WebhookTests.payload)
            #expect(refused.status == 503, "\(refused.text)")
            #expect(refused.errorCode == "hook_unavailable")
        }
        let decrypts = try await live.server.services.credentialStore.auditRecords(org: "acme", credential: "webhooks/genai_costs_daily", limit: 100)
            .filter { $0.action == .decrypt }
        #expect(decrypts.count == 1, "one decrypt for five posts: \(decrypts)")
        let errors = logs.all.filter { $0.hasPrefix("error webhook refused") }
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.contains("not a whsec_ secret") == true, "\(errors)")
        #expect(!logs.text.contains("not-a-webhook-secret"), "the value is never logged")
        try await live.stop()
    }
}
