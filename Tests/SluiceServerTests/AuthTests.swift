import Foundation
import SluiceEngine
import SluiceServer
import SluiceStorage
import Testing

/// Tokens: nothing but /healthz without one; a token for one org can neither see nor start
/// another org's runs; another org's run id looks exactly like an unknown one.
struct AuthTests {
    @Test func everyRouteButHealthNeedsAValidToken() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let valid = try await live.token("acme")
        let revoked = try await live.server.tokens.create(org: "acme", name: "old")
        #expect(try await live.server.tokens.store.revokeToken(id: revoked.record.id, org: "acme", at: Date()))
        // Right id, wrong secret: the hash comparison refuses it.
        let forged = "slc_\(revoked.record.id)_" + String(repeating: "A", count: 43)
        let wrongSecret = String(valid.dropLast(4)) + (valid.hasSuffix("AAAA") ? "BBBB" : "AAAA")

        let routes: [(String, String)] = [
            ("GET", "/v1/orgs/acme/pipelines"), ("POST", "/v1/orgs/acme/pipelines/genai_costs_daily/runs"),
            ("GET", "/v1/orgs/acme/runs"), ("GET", "/v1/runs/r0000000000000000000"), ("POST", "/v1/runs/r0000000000000000000/cancel"),
            ("GET", "/metrics"), ("GET", "/openapi.json"),
        ]
        for (method, path) in routes {
            for (label, header) in [
                ("none", nil), ("malformed", "Bearer nope"), ("not bearer", "Basic \(valid)"),
                ("revoked", "Bearer \(revoked.token.text)"), ("forged", "Bearer \(forged)"),
                ("wrong secret", "Bearer \(wrongSecret)"), ("empty", "Bearer "),
            ] as [(String, String?)] {
                let response = try await live.request(method, path, headers: header.map { ["Authorization": $0] } ?? [:])
                #expect(response.status == 401, "\(method) \(path) with \(label) token: \(response.status) \(response.text)")
                #expect(response.errorCode == "unauthenticated")
                #expect((response.error["message"] as? String)?.contains("token") == true, "\(response.text)")
                #expect(response.text.contains("[redacted]") == false, "\(response.text)")
                #expect(response.header("WWW-Authenticate") == #"Bearer realm="sluice""#)
            }
        }
        #expect(try await live.get("/healthz", token: nil).status == 200)
        // No run was started by any of that.
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }

    @Test func metricsAndOrgTokensOpenOnlyTheirOwnRoutes() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let org = try await live.token("acme")
        let metrics = try await live.token(nil)
        let forbiddenMetrics = try await live.get("/metrics", token: org)
        #expect(forbiddenMetrics.status == 403)
        #expect(forbiddenMetrics.errorCode == "forbidden")
        #expect(try await live.get("/metrics", token: metrics).status == 200)
        let forbiddenRuns = try await live.get("/v1/orgs/acme/runs", token: metrics)
        #expect(forbiddenRuns.status == 403)
        #expect(try await live.get("/v1/runs/r0000000000000000000", token: metrics).status == 403)
        #expect(try await live.get("/openapi.json", token: metrics).status == 200)
        #expect(try await live.get("/openapi.json", token: org).status == 200)
        try await live.stop()
    }

    @Test func aTokenForOneOrgCanNeitherSeeNorStartAnotherOrgsRuns() async throws {
        let live = try await LiveServer.start(project: try exampleProject())
        defer { try? FileManager.default.removeItem(at: live.project) }
        let alice = try await live.token("alice")
        let bob = try await live.token("bob")
        let bobsRun = try await live.post("/v1/orgs/bob/pipelines/genai_costs_daily/runs", token: bob, json: #"{"logical_date": "2026-03-01"}"#)
        #expect(bobsRun.status == 202)
        let bobsRunID = try #require(bobsRun.json["id"] as? String)

        // Start: refused, and nothing is created in bob's org (or alice's).
        let start = try await live.post("/v1/orgs/bob/pipelines/genai_costs_daily/runs", token: alice, json: "{}")
        #expect(start.status == 403)
        #expect(start.errorCode == "forbidden")
        // List and pipelines: refused.
        #expect(try await live.get("/v1/orgs/bob/runs", token: alice).status == 403)
        #expect(try await live.get("/v1/orgs/bob/pipelines", token: alice).status == 403)
        // Get and cancel: 404, the same answer as for a run that does not exist.
        let unknownID = "r000000000000deadbeef"
        for (method, suffix) in [("GET", ""), ("POST", "/cancel")] {
            let other = try await live.request(method, "/v1/runs/\(bobsRunID)\(suffix)", token: alice)
            let unknown = try await live.request(method, "/v1/runs/\(unknownID)\(suffix)", token: alice)
            #expect(other.status == 404)
            #expect(unknown.status == 404)
            #expect(other.errorCode == "run_not_found")
            let otherMessage = (other.error["message"] as? String)?.replacingOccurrences(of: bobsRunID, with: "ID")
            let unknownMessage = (unknown.error["message"] as? String)?.replacingOccurrences(of: unknownID, with: "ID")
            #expect(otherMessage == unknownMessage)
            #expect(
                other.body.count - bobsRunID.count == unknown.body.count - unknownID.count + (other.error["request_id"] as! String).count
                    - (unknown.error["request_id"] as! String).count)
        }
        // Alice's own listing does not include bob's run.
        let listing = try await live.get("/v1/orgs/alice/runs", token: alice)
        #expect((listing.json["runs"] as? [Any])?.isEmpty == true)
        // Bob's run was not cancelled by alice's attempt, and bob still sees it.
        let ended = try await live.waitForEnd(bobsRunID, token: bob)
        #expect(ended["state"] as? String == "succeeded")
        let runs = try await live.server.store.runs(pipeline: nil, org: nil, limit: 10)
        #expect(runs.map(\.org) == ["bob"])
        try await live.stop()
    }
}
