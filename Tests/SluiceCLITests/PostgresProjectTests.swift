import Foundation
import SluiceTestSupport
import Testing

/// A project pointed at a PostgreSQL server (`SLUICE_DATABASE_URL`) works as it does on the
/// embedded files, through the built binary; a server that can't be used is named with its
/// host:port and never its password. Each test gets a database of its own on the test server.
@Suite(.enabled(if: PostgresTestDatabase.isAvailable))
struct PostgresProjectTests {
    /// The test's variables with the project pointed at `database`.
    func environment(_ database: String, _ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = database
        environment["SLUICE_LOG_LEVEL"] = "warning"
        environment.merge(extra) { $1 }
        return environment
    }

    /// The daily cost table, a line a row, costs to 9 decimals, in one order on both backends.
    func dailyCosts(in project: URL, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> [String] {
        let result = try await run(
            sluiceBinary,
            [
                "query", "default",
                "SELECT usage_date, org_slug, provider, model, requests, input_tokens, cost_usd FROM genai_costs_daily ORDER BY 1, 2, 3, 4",
                "--format", "csv",
            ], in: project, environment: environment)
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\r\n").dropFirst().map { line in
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if let cost = Double(fields[6]) { fields[6] = String(format: "%.9f", cost) }
            return fields.joined(separator: ",")
        }
    }

    @Test func theMainJobRunsOnAServerAndPublishesWhatItPublishesOnSQLite() async throws {
        let local = try exampleProject()
        defer { try? FileManager.default.removeItem(at: local) }
        let localRun = try await run(sluiceBinary, ["run", "genai_costs_daily"], in: local)
        try #require(localRun.status == 0, "\(localRun.stdout)\(localRun.stderr)")
        let expected = try await dailyCosts(in: local)
        #expect(expected.count > 5)

        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try await PostgresTestDatabase.with { database in
            let environment = environment(database.url)
            let first = try await run(sluiceBinary, ["run", "genai_costs_daily"], in: project, environment: environment)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("every step succeeded"), "\(first.stdout)")
            #expect(first.stdout.contains("on postgres@127.0.0.1:"), "\(first.stdout)")
            // Nothing of the run is kept in the project's folder: the server holds it.
            #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent(".sluice/runs.sqlite").path))
            #expect(try await dailyCosts(in: project, environment: environment) == expected)

            // The tables are the server's, for any SQL client; the run is in its history.
            let published = try database.sql("SELECT count(*) FROM sluice_warehouse_org_default.genai_costs_daily")
            #expect(Int(published) == expected.count)
            let runs = try await run(sluiceBinary, ["runs", "list"], in: project, environment: environment)
            #expect(runs.status == 0 && runs.stdout.contains("genai_costs_daily") && runs.stdout.contains("succeeded"), "\(runs)")

            // Loaded again: the same table (latest wins, partitions replaced), no duplicates.
            let second = try await run(sluiceBinary, ["run", "genai_costs_daily"], in: project, environment: environment)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(try await dailyCosts(in: project, environment: environment) == expected)
        }
    }

    @Test func aServerThatCantBeUsedIsNamedWithItsProblemAndNeverItsPassword() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try await PostgresTestDatabase.with { database in
            let server = try #require(URLComponents(string: database.url))
            let endpoint = "\(server.host ?? ""):\(server.port ?? 5432)"
            let secret = "pw-\(UUID().uuidString.prefix(8))-never-shown"
            // Roles are the server's, not the database's: a name of this test's own.
            let role = "sluice_pw_\(database.name.suffix(8))"
            try database.sql("CREATE ROLE \(role) LOGIN PASSWORD '\(secret)-right'")
            defer { try? database.sql("DROP ROLE IF EXISTS \(role)") }

            // The wrong password.
            let wrongPassword = try await run(
                sluiceBinary, ["runs", "list"], in: project,
                environment: environment(
                    "postgres://\(role)@\(endpoint)/\(database.name)?sslmode=disable", ["SLUICE_DATABASE_PASSWORD": secret]))
            #expect(wrongPassword.status == 1)
            #expect(
                wrongPassword.stderr.contains("sluice runs: PostgreSQL at \(endpoint) refused the password of the user \(role)"),
                "\(wrongPassword.stderr)")

            // A port nothing listens on.
            let closed = try await run(
                sluiceBinary, ["run", "genai_costs_daily"], in: project, environment: environment("postgres://postgres@127.0.0.1:1/x"))
            #expect(closed.status == 1)
            #expect(closed.stderr.contains("PostgreSQL at 127.0.0.1:1 can't be reached"), "\(closed.stderr)")

            // A database that isn't there.
            let missing = try await run(
                sluiceBinary, ["query", "default", "SELECT 1"], in: project,
                environment: environment("postgres://postgres@\(endpoint)/no_such_db_here"))
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("PostgreSQL at \(endpoint) has no database no_such_db_here"), "\(missing.stderr)")

            // A password in the URL is refused before anything connects, and not repeated.
            let inURL = try await run(
                sluiceBinary, ["runs", "list"], in: project,
                environment: environment("postgres://postgres:\(secret)@\(endpoint)/\(database.name)"))
            #expect(inURL.status == 1)
            #expect(inURL.stderr.contains("SLUICE_DATABASE_URL: the URL carries a password"), "\(inURL.stderr)")

            // The right password, but a user who may not create the stores' schema.
            let unprivileged = try await run(
                sluiceBinary, ["runs", "list"], in: project,
                environment: environment(
                    "postgres://\(role)@\(endpoint)/\(database.name)?sslmode=disable", ["SLUICE_DATABASE_PASSWORD": "\(secret)-right"]))
            #expect(unprivileged.status == 1)
            #expect(
                unprivileged.stderr.hasPrefix("sluice runs: PostgreSQL at \(endpoint) refused: permission denied for"),
                "\(unprivileged.stderr)")

            for result in [wrongPassword, closed, missing, inURL, unprivileged] {
                #expect(!(result.stdout + result.stderr).contains(secret))
            }
            // Nothing fell back to the embedded files.
            #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent(".sluice/runs.sqlite").path))
        }
    }
}
