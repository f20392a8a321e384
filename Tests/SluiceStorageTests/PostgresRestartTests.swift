import Foundation
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluicePostgres

/// A server that goes away under a running store, and comes back: a server of the test's own
/// (`PostgresTestServer`), so stopping it disturbs no other test.
struct PostgresRestartTests {
    @Test func aServerThatStopsIsReportedAndTheStoreWorksAgainWhenItIsBack() async throws {
        // Only where PostgreSQL tests run at all (the script needs the server binaries).
        guard try Backend.Postgres.settings() != nil else { return }
        let server = PostgresTestServer()
        try await server.with { url in
            var settings = try PostgresSettings(url: url, environment: [:])
            settings.connectTimeout = .seconds(2)
            let pool = try await PostgresPool.open(settings)
            let store = try await PostgresRunStore(pool: pool)
            let run = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli)
            _ = try await store.createRun(run, steps: [])

            try await server.run("pause")
            let error = try await #require(throws: PostgresError.self) { _ = try await store.run(run.id) }
            switch error.problem {
            case .connectionLost, .unreachable: break
            default: Issue.record("expected a lost or unreachable server, got \(error)")
            }
            #expect(error.description.contains(settings.server), "\(error)")

            try await server.run("resume")
            let back = try await eventually(every: .milliseconds(200)) {
                (try? await store.run(run.id))?.id == run.id
            }
            #expect(back, "the pool makes new connections once the server is back")
            await pool.close()
        }
    }
}
