import Foundation
import Testing

/// A database of its own on the test PostgreSQL server (`SLUICE_TEST_POSTGRES_URL`, which
/// `scripts/test.sh` starts), for a test that points a whole project at a server: created
/// empty, dropped afterwards. Made with the server's own `psql`, so a test needs no client of
/// ours to set up what it then checks through ours.
public struct PostgresTestDatabase: Sendable {
    /// `postgres://postgres@127.0.0.1:PORT/NAME`: the database's URL, without a password (the
    /// test server trusts its superuser on 127.0.0.1).
    public let url: String
    public let name: String
    /// The server's URL (its `sluice_test` database), for statements about the server.
    public let serverURL: String

    /// The test server's URL; nil when there is none and none is required (the caller leaves
    /// its test out). With `SLUICE_TEST_REQUIRE_POSTGRES=1` a missing server is an error.
    public static var serverURL: String? {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            if let url = environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty { return url }
            if environment["SLUICE_TEST_REQUIRE_POSTGRES"] == "1" { throw MissingServer() }
            return nil
        }
    }

    /// Whether PostgreSQL cases run here: the server is set, or required (then a missing one
    /// fails them instead of leaving them out).
    public static var isAvailable: Bool {
        let environment = ProcessInfo.processInfo.environment
        return !(environment["SLUICE_TEST_POSTGRES_URL"] ?? "").isEmpty || environment["SLUICE_TEST_REQUIRE_POSTGRES"] == "1"
    }

    /// Creates an empty database, gives it to `body`, then drops it (closing what still
    /// connects to it).
    public static func with<T>(_ body: (PostgresTestDatabase) async throws -> T) async throws -> T {
        guard let server = try serverURL else { throw MissingServer() }
        let name = "sluice_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        // psql on threads of its own, never on one that runs the tests' async code:
        // `DROP DATABASE … WITH (FORCE)` waits until every session on the server has taken in
        // its signal, and a session in the middle of a COPY does so only when its client sends
        // more. Two drops blocking the two threads of a two-core machine kept this process's
        // own COPYs from sending: the suite hung.
        try await onItsOwnThread { try psql(server, "CREATE DATABASE \(name)") }
        let database = PostgresTestDatabase(url: replacingDatabase(of: server, with: String(name)), name: String(name), serverURL: server)
        let drop = { () async in _ = try? await onItsOwnThread { try psql(server, "DROP DATABASE \(name) WITH (FORCE)") } }
        do {
            let result = try await body(database)
            await drop()
            return result
        } catch {
            await drop()
            throw error
        }
    }

    /// Runs SQL in this database as the superuser and returns what psql printed (unaligned,
    /// tuples only, `|` between columns).
    @discardableResult
    public func sql(_ statement: String) throws -> String {
        try Self.psql(url, statement)
    }

    /// The tables of `schema` (the stores' own, `sluice`, by default) with a row that holds
    /// `text`, in clear or as the hex of its bytes (how a `bytea` column reads as text): where a
    /// secret that must be stored sealed would show if it were not.
    public func tablesHolding(_ text: String, schema: String = "sluice") throws -> [String] {
        let literal = "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
        let hex = "'" + text.utf8.map { String(format: "%02x", $0) }.joined() + "'"
        let tables = try sql("SELECT table_name FROM information_schema.tables WHERE table_schema = '\(schema)' ORDER BY 1")
            .split(separator: "\n").map(String.init)
        return try tables.filter { table in
            let found = try sql(
                "SELECT count(*) FROM \(schema).\(table) AS t WHERE strpos(t::text, \(literal)) > 0 OR strpos(t::text, \(hex)) > 0")
            return found != "0"
        }
    }

    /// Runs `statement` with psql against `url`; throws psql's error output when it fails.
    @discardableResult
    public static func psql(_ url: String, _ statement: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complaint = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PSQLFailed(statement: statement, message: String(decoding: complaint, as: UTF8.self))
        }
        return String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `url` naming `database` instead of its own.
    static func replacingDatabase(of url: String, with database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + database
        return components.string ?? url
    }

    public struct MissingServer: Error, CustomStringConvertible {
        public init() {}

        public var description: String {
            "SLUICE_TEST_REQUIRE_POSTGRES=1 but SLUICE_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh"
        }
    }

    public struct PSQLFailed: Error, CustomStringConvertible {
        public var statement: String
        public var message: String
        public var description: String { "psql failed on \(statement): \(message)" }
    }
}
