import Foundation

/// A PostgreSQL server of a test's own (scripts/postgres-test-server.sh with a state file of
/// its own), for a test that stops the server and starts it again (`pause`, `resume`): that
/// disturbs no other test, which all share the one `scripts/test.sh` started.
public struct PostgresTestServer: Sendable {
    let state = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pg-own-\(UUID().uuidString).state").path
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/postgres-test-server.sh").path

    public init() {}

    /// Runs `command` of the script (`start` prints the server's URL); its standard output.
    /// With posix_spawn and waitpid on a thread of its own: Foundation's `Process` was seen
    /// never to notice the script's end here (the script left a zombie behind, having started
    /// a server that outlives it).
    @discardableResult
    public func run(_ command: String) async throws -> String {
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

    /// Starts the server, gives `body` its URL (`postgres://postgres@127.0.0.1:PORT/sluice_test`),
    /// then stops it and removes its folder, whether `body` succeeds or not.
    public func with<T>(_ body: (String) async throws -> T) async throws -> T {
        let url = try await run("start")
        do {
            let result = try await body(url)
            try await run("stop")
            return result
        } catch {
            _ = try? await run("stop")
            throw error
        }
    }

    public struct ScriptFailed: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var description: String { "postgres-test-server.sh \(command) ended with status \(status)" }
    }
}
