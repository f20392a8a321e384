import Foundation
import SluiceStorage
import SluiceTestSupport
import Synchronization
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

    /// postgres-nio never answers a statement written to a connection that has closed (here
    /// the server ended the session, as a restart does): the pool gives up on it, with the
    /// server's name and what happened, instead of waiting forever. Without that, a worker
    /// whose server restarted between two statements of a step hung in the step.
    @Test func aStatementOnAConnectionTheServerClosedFailsInsteadOfWaiting() async throws {
        guard let settings = try Backend.Postgres.settings() else { return }
        let pool = try await PostgresPool.open(settings)
        let logger = pool.logger
        let outcome = Outcome()
        // Unstructured, so that a statement that never ends fails the test rather than hang it.
        Task {
            do {
                try await pool.withConnection { connection in
                    let pid = try await connection.rows("SELECT pg_backend_pid()", logger: logger)[0].decode(Int32.self)
                    try await pool.withConnection { other in try await other.execute("SELECT pg_terminate_backend(\(pid))", logger: logger) }
                    guard try await eventually(every: .milliseconds(10), { connection.isClosed }) else { return outcome.set("still open") }
                    try await connection.execute("SELECT 1", logger: logger)
                }
                outcome.set("answered")
            } catch {
                outcome.set("\(error)")
            }
        }
        #expect(try await eventually(every: .milliseconds(50)) { outcome.value != nil }, "the statement never ended")
        #expect(outcome.value?.contains("the connection to PostgreSQL at \(settings.server) was lost") == true, "\(outcome.value ?? "")")
        // The pool hands out a working connection afterwards.
        #expect(try await pool.withConnection { try await $0.rows("SELECT 41 + 1", logger: logger)[0].decode(Int.self) } == 42)
        await pool.close()
    }
}

/// What a task ended with, read by another.
private final class Outcome: Sendable {
    private let text = Mutex<String?>(nil)
    var value: String? { text.withLock { $0 } }
    func set(_ value: String) { text.withLock { $0 = value } }
}
