import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

/// `ingest` with `format: http` against a real server on 127.0.0.1, through the executor,
/// a real run store and a real SQLite warehouse.
struct HTTPIngestTests {
    struct Project {
        let root: URL
        let store: SQLiteRunStore
        let warehouse: SQLiteWarehouse

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-http-ingest-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("schemas"), withIntermediateDirectories: true)
            store = try SQLiteRunStore(path: root.appendingPathComponent(".sluice/runs.sqlite").path)
            warehouse = SQLiteWarehouse(root: root.appendingPathComponent(".sluice"))
            try Data(
                """
                [{"name": "id", "type": "STRING", "mode": "REQUIRED"},
                 {"name": "updated_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
                 {"name": "amount", "type": "NUMERIC"}]
                """.utf8
            ).write(to: root.appendingPathComponent("schemas/usage_raw.json"))
            try Data(
                """
                {"table": "usage", "primary_key": ["id"], "fields": [
                 {"name": "id", "type": "STRING", "mode": "REQUIRED"},
                 {"name": "updated_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
                 {"name": "amount", "type": "NUMERIC"}]}
                """.utf8
            ).write(to: root.appendingPathComponent("schemas/usage.json"))
        }

        func pipeline(_ server: FakeProviderServer, minRows: Int = 1) -> String {
            """
            pipeline: api_usage
            defaults: { timeout: 30s, retry: { attempts: 3, initial_delay: 10ms, max_delay: 5s } }
            steps:
              - id: fetch
                uses: ingest
                with:
                  source:
                    format: http
                    url: "\(server.baseURL)/v1/usage"
                    headers: { X-Api-Token: "${{ env.API_TOKEN }}" }
                    items: /data
                    pagination: { type: cursor, cursor_path: /next, cursor_param: after, page_size: 2 }
                    incremental: { column: updated_at, param: updated_after, initial: "2026-01-01T00:00:00Z" }
                  table: usage_raw
                  schema: schemas/usage_raw.json
              - id: merge
                uses: merge_dedupe
                with: { from: usage_raw, into: usage, key: [id], latest_by: updated_at }
              - id: check
                uses: validate_data
                with: { table: usage, checks: [{ type: row_count, min: \(minRows) }] }
            """
        }

        /// One ingest step that follows `Link: <…>; rel="next"` from `url`.
        func linkPipeline(_ url: String) -> String {
            """
            pipeline: api_usage
            defaults: { timeout: 30s, retry: { attempts: 3, initial_delay: 10ms, max_delay: 5s } }
            steps:
              - id: fetch
                uses: ingest
                with:
                  source:
                    format: http
                    url: "\(url)"
                    headers: { X-Api-Token: "${{ env.API_TOKEN }}" }
                    pagination: { type: link_header }
                  table: usage_raw
                  schema: schemas/usage_raw.json
            """
        }

        func run(_ yaml: String) async throws -> RunRecord {
            let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/api_usage.yml")
            #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
            let plan = try PipelinePlan.build(try #require(result.definition)).get()
            let executor = Executor(
                processors: .standard, store: store, warehouse: warehouse, project: ProjectContext(root: root),
                logger: LogCapture().logger)
            return try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: ["API_TOKEN": "tok-123456"]))
        }

        func rows() async throws -> [[String]] {
            try await warehouse.query(org: "acme", "SELECT id, updated_at, amount FROM usage ORDER BY id", []).rows.map { $0.map(\.displayText) }
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static func page(_ rows: [(String, String, Double)], next: String?) -> ScriptedResponse {
        let data = rows.map { #"{"id": "\#($0.0)", "updated_at": "\#($0.1)", "amount": \#($0.2), "extra": {"ignored": true}}"# }
        let cursor = next.map { #""\#($0)""# } ?? "null"
        return .json(200, #"{"object": "page", "data": [\#(data.joined(separator: ", "))], "next": \#(cursor)}"#)
    }

    @Test func pagesAreFollowedAndTheCursorCommitsWithTheData() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start { request, _ in
            let after = request.uri.contains("after=p2") ? 2 : request.uri.contains("after=p1") ? 1 : 0
            if request.uri.contains("updated_after=2026-03-01T10") {  // the second run
                return Self.page([("u3", "2026-03-02T08:00:00Z", 4.5)], next: nil)
            }
            switch after {
            case 0: return Self.page([("u1", "2026-03-01T08:00:00Z", 1), ("u2", "2026-03-01T09:00:00Z", 2)], next: "p1")
            case 1: return Self.page([("u2", "2026-03-01T09:30:00Z", 2.5)], next: "p2")
            default: return Self.page([("u3", "2026-03-01T10:00:00Z", 3)], next: nil)
            }
        }
        defer { Task { await server.stop() } }

        let first = try await project.run(project.pipeline(server))
        #expect(first.state == .succeeded, "\(first.reason)")
        #expect(
            try await project.rows() == [
                ["u1", "2026-03-01T08:00:00.000000Z", "1"], ["u2", "2026-03-01T09:30:00.000000Z", "2.5"], ["u3", "2026-03-01T10:00:00.000000Z", "3"],
            ])
        let requests = server.requests
        #expect(requests.count == 3)
        #expect(requests[0].uri == "/v1/usage?limit=2&updated_after=2026-01-01T00:00:00Z")
        #expect(requests[1].uri.contains("after=p1") && requests[2].uri.contains("after=p2"))
        #expect(requests.allSatisfy { $0.values("X-Api-Token") == ["tok-123456"] })
        // A run started without a request id sends its own id, so the provider's log matches it.
        #expect(requests.allSatisfy { $0.values("X-Request-Id") == [first.id] })
        let fetch = try #require(try await project.store.steps(of: first.id).first { $0.stepID == "fetch" })
        #expect(fetch.outputs["rows_written"] == .number(4))
        #expect(fetch.outputs["pages_read"] == .number(3))

        // The next run asks from where the published data ends.
        let second = try await project.run(project.pipeline(server))
        #expect(second.state == .succeeded, "\(second.reason)")
        #expect(server.requests[3].uri == "/v1/usage?limit=2&updated_after=2026-03-01T10:00:00.000000Z")
        #expect(try await project.rows().last == ["u3", "2026-03-02T08:00:00.000000Z", "4.5"])
        #expect(
            try await project.warehouse.query(org: "acme", "SELECT value FROM _sluice_cursors", []).rows.map { $0.map(\.displayText) }
                == [["2026-03-02T08:00:00.000000Z"]])
    }

    @Test func reachingMaxPagesWithANextPageFailsOrWarnsAndSaysHowManyPagesWereRead() async throws {
        let project = try Project()
        defer { project.remove() }
        // An API with more pages than max_pages allows: every page points to a next one.
        let server = try await FakeProviderServer.start { request, index in
            Self.page([("u\(index)", "2026-03-01T0\(index):00:00Z", 1)], next: "p\(index + 1)")
        }
        defer { Task { await server.stop() } }
        func pipeline(_ onLimit: String?) -> String {
            project.pipeline(server).replacingOccurrences(
                of: "page_size: 2 }", with: "page_size: 2, max_pages: 2\(onLimit.map { ", on_limit: \($0)" } ?? "") }")
        }

        let failed = try await project.run(pipeline(nil))
        #expect(failed.state == .failed)
        let step = try #require(try await project.store.steps(of: failed.id).first { $0.stepID == "fetch" })
        #expect(step.errorCode == "page_limit_reached")
        #expect(step.reason.contains("read max_pages (2) pages and the API has a next page"), "\(step.reason)")
        #expect(server.requests.count == 2)
        #expect(try await project.warehouse.query(org: "acme", "SELECT name FROM sqlite_master WHERE name = 'usage'", []).rows.isEmpty)

        let warned = try await project.run(pipeline("warn"))
        #expect(warned.state == .succeeded, "\(warned.reason)")
        let fetch = try #require(try await project.store.steps(of: warned.id).first { $0.stepID == "fetch" })
        #expect(fetch.outputs["pages_read"] == .number(2))
        #expect(try await project.rows().count == 2)
    }

    @Test func limitsStopPagingMidPageAndBeforeARequestPastMaxRequests() async throws {
        let project = try Project()
        defer { project.remove() }
        // Pages of two rows, always with a next one.
        let server = try await FakeProviderServer.start { _, index in
            Self.page(
                [("a\(index)", "2026-03-01T0\(index % 10):00:00Z", 1), ("b\(index)", "2026-03-01T0\(index % 10):30:00Z", 1)], next: "p\(index + 1)")
        }
        defer { Task { await server.stop() } }
        func pipeline(_ limits: String) -> String {
            project.pipeline(server).replacingOccurrences(
                of: "schema: schemas/usage_raw.json", with: "schema: schemas/usage_raw.json\n    limits: \(limits)")
        }

        // The third row arrives in the middle of the second page.
        let rows = try await project.run(pipeline("{ max_rows: 3 }"))
        #expect(rows.state == .failed)
        let rowStep = try #require(try await project.store.steps(of: rows.id).first { $0.stepID == "fetch" })
        #expect(rowStep.errorCode == "budget_exceeded")
        #expect(rowStep.reason.contains("(page 2) reached 4 rows, past limits.max_rows (3)"), "\(rowStep.reason)")
        #expect(server.requests.count == 2)

        // The third request is never sent.
        let requests = try await project.run(pipeline("{ max_requests: 2 }"))
        #expect(requests.state == .failed)
        let requestStep = try #require(try await project.store.steps(of: requests.id).first { $0.stepID == "fetch" })
        #expect(requestStep.errorCode == "budget_exceeded")
        #expect(requestStep.reason.contains("would be request 3, past limits.max_requests (2)"), "\(requestStep.reason)")
        #expect(server.requests.count == 4)
        #expect(try await project.warehouse.query(org: "acme", "SELECT name FROM sqlite_master WHERE name = 'usage'", []).rows.isEmpty)
    }

    @Test func retriesCountAgainstMaxRequests() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start(answering: [.json(503, "{}"), .json(503, "{}"), Self.page([], next: nil)])
        defer { Task { await server.stop() } }
        let yaml = project.pipeline(server).replacingOccurrences(
            of: "schema: schemas/usage_raw.json", with: "schema: schemas/usage_raw.json\n    limits: { max_requests: 2 }")
        let run = try await project.run(yaml)
        #expect(run.state == .failed)
        let step = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "fetch" })
        #expect(step.errorCode == "budget_exceeded", "\(step.reason)")
        #expect(server.requests.count == 2)
    }

    @Test func requestTimeoutBoundsEachPageAndTheRequestIdOfTheRunIsSent() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start(answering: .delayed(.seconds(10), Self.page([], next: nil)))
        defer { Task { await server.stop() } }
        let yaml = project.pipeline(server).replacingOccurrences(of: "items: /data", with: "items: /data\n        request_timeout: 200ms")
            .replacingOccurrences(of: "attempts: 3", with: "attempts: 1")
        let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/api_usage.yml")
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let plan = try PipelinePlan.build(try #require(result.definition)).get()
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse, project: ProjectContext(root: project.root),
            logger: LogCapture().logger)
        let started = ContinuousClock.now
        let run = try await executor.start(
            plan, .init(org: "acme", logicalDate: "2026-03-01", trigger: .cli, env: ["API_TOKEN": "tok-123456"], requestID: "req-from-the-caller"))
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(run.state == .failed)
        let step = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "fetch" })
        #expect(step.errorCode == "provider_unavailable")
        #expect(step.reason.contains("no complete answer within 200ms (request_timeout)"), "\(step.reason)")
        #expect(server.requests.map { $0.values("X-Request-Id") } == [["req-from-the-caller"]])
    }

    @Test func aFailedRunLeavesTheCursorWhereTheLastPublishedRunPutIt() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start { _, _ in Self.page([("u1", "2026-03-01T08:00:00Z", 1)], next: nil) }
        defer { Task { await server.stop() } }
        // The data test fails, so nothing is published: neither the rows nor the cursor.
        let failed = try await project.run(project.pipeline(server, minRows: 5))
        #expect(failed.state == .failed)
        let again = try await project.run(project.pipeline(server))
        #expect(again.state == .succeeded, "\(again.reason)")
        #expect(server.requests.map(\.uri) == Array(repeating: "/v1/usage?limit=2&updated_after=2026-01-01T00:00:00Z", count: 2))
    }

    @Test func aRateLimitedPageIsRetriedAndARefusedTokenIsNot() async throws {
        let project = try Project()
        defer { project.remove() }
        let limited = try await FakeProviderServer.start(answering: [
            .json(429, #"{"error": "slow down"}"#, headers: [("Retry-After", "1")]),
            Self.page([("u1", "2026-03-01T08:00:00Z", 1)], next: nil),
        ])
        defer { Task { await limited.stop() } }
        let started = Date()
        let run = try await project.run(project.pipeline(limited))
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(Date().timeIntervalSince(started) >= 0.95)
        #expect(limited.requests.count == 2)

        let refusing = try await FakeProviderServer.start(answering: .json(401, #"{"error": "bad token"}"#))
        defer { Task { await refusing.stop() } }
        let refused = try await project.run(project.pipeline(refusing))
        #expect(refused.state == .failed)
        let fetch = try #require(try await project.store.steps(of: refused.id).first { $0.stepID == "fetch" })
        #expect(fetch.errorCode == "http_unauthorized")
        #expect(fetch.attempt == 1)
        #expect(fetch.reason == "page 1: \(refusing.baseURL)/v1/usage answered 401: the credential was refused")
        #expect(refusing.requests.count == 1)
    }

    static func linkedPage(_ id: String, next link: String?) -> ScriptedResponse {
        let page = page([(id, "2026-03-01T08:00:00Z", 1)], next: nil)
        guard let link, case .answer(let status, let headers, let body) = page else { return page }
        return .answer(status, headers: headers + [("Link", "<\(link)>; rel=\"next\"")], body: body)
    }

    @Test func linkHeaderPagesOnTheSameOriginAreFollowedRelativeOrAbsolute() async throws {
        let project = try Project()
        defer { project.remove() }
        let server = try await FakeProviderServer.start { request, _ in
            switch request.uri {
            case "/v1/usage": return Self.linkedPage("u1", next: "/v1/usage?page=2")
            // The server's own address, as the client named it: an absolute link to the same origin.
            case "/v1/usage?page=2": return Self.linkedPage("u2", next: "http://\(request.values("Host").first ?? "")/v1/usage?page=3")
            default: return Self.linkedPage("u3", next: nil)
            }
        }
        defer { Task { await server.stop() } }

        let run = try await project.run(project.linkPipeline("\(server.baseURL)/v1/usage"))
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(server.requests.map(\.uri) == ["/v1/usage", "/v1/usage?page=2", "/v1/usage?page=3"])
        #expect(server.requests.allSatisfy { $0.values("X-Api-Token") == ["tok-123456"] })
        let fetch = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "fetch" })
        #expect(fetch.outputs["rows_written"] == .number(3))
    }

    @Test func aLinkHeaderToAnotherOriginFailsTheStepAndIsNeverFetched() async throws {
        let project = try Project()
        defer { project.remove() }
        // Another port on the same host is another origin: it would receive the headers.
        let elsewhere = try await FakeProviderServer.start(answering: Self.linkedPage("stolen", next: nil))
        defer { Task { await elsewhere.stop() } }
        let server = try await FakeProviderServer.start(answering: Self.linkedPage("u1", next: "\(elsewhere.baseURL)/collect?from=sluice"))
        defer { Task { await server.stop() } }

        let run = try await project.run(project.linkPipeline("\(server.baseURL)/v1/usage"))
        #expect(run.state == .failed)
        #expect(elsewhere.requests.isEmpty, "the other origin was asked: \(elsewhere.requests.map(\.everything))")
        #expect(server.requests.count == 1)
        let fetch = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "fetch" })
        #expect(fetch.errorCode == "http_link_other_origin")
        #expect(fetch.attempt == 1, "a link to another origin is permanent, not retried")
        #expect(
            fetch.reason == "page 1: the Link header's next page is on \(elsewhere.baseURL), not on \(server.baseURL) where 'url' points; "
                + "the step's headers (and the secrets in them) go only to the origin of 'url', so the link was not followed")
        #expect(!fetch.reason.contains("tok-123456"))
    }
}
