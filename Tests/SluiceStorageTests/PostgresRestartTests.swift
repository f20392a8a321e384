import Foundation
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluicePostgres

/// A server that goes away under a running store, and comes back: a server of the test's own
/// (scripts/postgres-test-server.sh), so stopping it disturbs no other test.
struct PostgresRestartTests {
    /// The test server script, run with a state file of this test's own.
    struct OwnServer {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pg-own-\(UUID().uuidString).state").path
        static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres-test-server.sh").path

        /// Runs `command` of the script; its standard output. With posix_spawn and waitpid on
        /// a thread of its own: Foundation's `Process` was seen never to notice the script's
        /// end here (the script left a zombie behind, having started a server that outlives it).
        @discardableResult
        func run(_ command: String) async throws -> String {
            let (script, state) = (Self.script, state)
            return try await onItsOwnThread {
                let output = state + ".\(command).out"
                defer { unlink(output) }
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                let arguments = ["/bin/bash", script, command]
                let environment = ProcessInfo.processInfo.environment.merging(["SLUICE_TEST_POSTGRES_STATE": state]) { $1 }
                    .map { "\($0.key)=\($0.value)" }
                let argv = arguments.map { strdup($0) } + [nil]
                let envp = environment.map { strdup($0) } + [nil]
                defer { (argv + envp).forEach { free($0) } }
                var pid: pid_t = 0
                let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp)
                guard spawned == 0 else { throw ScriptFailed(command: command, status: spawned) }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let exited = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                guard exited == 0 else { throw ScriptFailed(command: command, status: exited) }
                return String(decoding: try Data(contentsOf: URL(fileURLWithPath: output)), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        struct ScriptFailed: Error, CustomStringConvertible {
            var command: String
            var status: Int32
            var description: String { "postgres-test-server.sh \(command) ended with status \(status)" }
        }
    }

    @Test func aServerThatStopsIsReportedAndTheStoreWorksAgainWhenItIsBack() async throws {
        // Only where PostgreSQL tests run at all (the script needs the server binaries).
        guard try Backend.Postgres.settings() != nil else { return }
        let server = OwnServer()
        let url = try await server.run("start")
        do {
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
        } catch {
            try? await server.run("stop")
            throw error
        }
        try await server.run("stop")
    }
}
