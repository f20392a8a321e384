import Foundation
import SluiceTestSupport
import Testing

/// `sluice runs show` prints the version of the pipeline a run ran, and `sluice run --resume`
/// refuses a run whose pipeline changed since, unless `--force`: through the built binary, on
/// SQLite files and on a PostgreSQL database of the test's own.
struct RunVersionTests {
    @Test(arguments: Backend.all)
    func aResumeAfterThePipelineFileChangedIsRefusedUnlessForced(_ backend: Backend) async throws {
        switch backend {
        case .sqlite: try await resumeAfterAChange(database: nil)
        case .postgres: try await PostgresTestDatabase.with { try await resumeAfterAChange(database: $0) }
        }
    }

    func resumeAfterAChange(database: PostgresTestDatabase?) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = database?.url
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        func sluice(_ arguments: String...) async throws -> CommandResult {
            try await run(sluiceBinary, arguments, in: project, environment: environment)
        }
        let pricing = project.appendingPathComponent("examples/data/genai_pricing.csv")
        let moved = project.appendingPathComponent("pricing-later.csv")
        try FileManager.default.moveItem(at: pricing, to: moved)
        let failed = try await sluice("run", "genai_costs_daily")
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        let runID = try #require(failed.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })

        // The version: its short form, then every file with its hash.
        let shown = try await sluice("runs", "show", runID)
        #expect(shown.status == 0, "\(shown.stderr)")
        let versionLine = try #require(shown.stdout.split(separator: "\n").first { $0.hasPrefix("version: ") }, "\(shown.stdout)")
        let short = String(versionLine.dropFirst("version: ".count).prefix(12))
        #expect(short.allSatisfy(\.isHexDigit) && short.count == 12, "\(versionLine)")
        #expect(shown.stdout.contains("  pipelines/genai_costs_daily.yml"), "\(shown.stdout)")
        #expect(shown.stdout.contains("  schemas/genai_usage_raw.json"), "\(shown.stdout)")
        let json = try await sluice("runs", "show", runID, "--format", "json")
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let version = try #require(object["version"] as? [String: Any])
        #expect(version["short"] as? String == short)
        #expect((version["hash"] as? String)?.hasPrefix(short) == true)
        let files = try #require(version["files"] as? [String: String])
        #expect(files["pipelines/genai_costs_daily.yml"]?.count == 64)
        #expect(files.keys.allSatisfy { $0.hasPrefix("pipelines/") || $0.hasPrefix("schemas/") || $0.hasPrefix("procedures/") })
        let plan = try #require(object["plan"] as? [String: Any])
        #expect((plan["steps"] as? [[String: Any]])?.isEmpty == false)

        // The pipeline file changes: the resume is refused, naming it, and creates nothing.
        let file = project.appendingPathComponent("pipelines/genai_costs_daily.yml")
        try (try String(contentsOf: file, encoding: .utf8) + "\n# pricing moved\n").write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(at: moved, to: pricing)
        let refused = try await sluice("run", "--resume", runID)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("sluice run: run \(runID) can't be resumed: its pipeline changed since it ran"), "\(refused.stderr)")
        #expect(refused.stderr.contains("\n  pipelines/genai_costs_daily.yml changed\n"), "\(refused.stderr)")
        #expect(refused.stderr.contains("sluice run --resume \(runID) --force"), "\(refused.stderr)")
        let listed = try await sluice("runs", "list")
        #expect(listed.stdout.split(separator: "\n").count == 2, "the header and the one run: \(listed.stdout)")
        #expect(try await sluice("run", "genai_costs_daily", "--force").status == 2, "--force goes with --resume")

        // Forced: it resumes with the new definition, says so, and records the new version.
        let forced = try await sluice("run", "--resume", runID, "--force")
        #expect(forced.status == 0, "\(forced.stdout)\(forced.stderr)")
        #expect(
            forced.stdout.contains("resuming run \(runID) with the new definition (--force): version \(short) → "), "\(forced.stdout)")
        #expect(forced.stdout.contains("reused from run \(runID)"), "a comment changes no step: \(forced.stdout)")
        let newLine = try #require(forced.stdout.split(separator: "\n").first { $0.hasPrefix("version: ") })
        #expect(!newLine.hasPrefix("version: \(short)"), "\(newLine)")
    }
}
