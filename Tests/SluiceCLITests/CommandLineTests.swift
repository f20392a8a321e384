import Foundation
import SluiceTestSupport
import Testing

/// Drives the built `sluice` binary the way a user and CI do.
struct LintCommandTests {
    let fixtureProject = repositoryRoot.appendingPathComponent("Tests/SluiceModelTests/Fixtures/lint/project")

    @Test func theExamplesLintClean() async throws {
        let result = try await sluice("lint", "--strict")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout == "4 files checked, no problems\n")
    }

    @Test func errorsExitOneAndWarningsOnlyWithStrict() async throws {
        let errors = try await sluice("lint", "pipelines/cycle.yml", in: fixtureProject)
        #expect(errors.status == 1)
        #expect(
            errors.stdout.hasPrefix(
                "pipelines/cycle.yml:4:9: error: steps depend on each other in a circle: a → b (needs) → c (needs) → a (needs) [cycle]\n"))
        #expect(errors.stdout.hasSuffix("1 file checked: 2 errors, 0 warnings\n"))

        let warnings = try await sluice("lint", "pipelines/missing_timeout.yml", in: fixtureProject)
        #expect(warnings.status == 0)
        #expect(warnings.stdout.contains("warning: step 'load' has no timeout"))
        let strict = try await sluice("lint", "--strict", "pipelines/missing_timeout.yml", in: fixtureProject)
        #expect(strict.status == 1)
    }

    @Test func usageErrorsExitTwo() async throws {
        let badFormat = try await sluice("lint", "--format", "xml")
        #expect(badFormat.status == 2)
        #expect(badFormat.stderr.contains("unknown format 'xml'"))
        #expect(try await sluice("lint", "--no-such-flag").status == 2)
    }

    @Test func everyFormatNamesFileLineAndColumn() async throws {
        let json = try await sluice("lint", "--format", "json", "pipelines/unknown_need.yml", in: fixtureProject)
        #expect(json.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let first = try #require((document["diagnostics"] as? [[String: Any]])?.first)
        #expect(first["file"] as? String == "pipelines/unknown_need.yml")
        #expect(first["line"] as? Int == 12 && first["column"] as? Int == 13)
        #expect(first["rule"] as? String == "unknown-need")

        let github = try await sluice("lint", "--format", "github", "pipelines/unknown_need.yml", in: fixtureProject)
        #expect(
            github.stdout
                == "::error file=pipelines/unknown_need.yml,line=12,col=13,title=sluice unknown-need::step 'dedupe' needs 'lod', which is not a step of this pipeline; did you mean 'load'?\n"
        )

        let sarif = try await sluice("lint", "--format", "sarif", "pipelines/unknown_need.yml", in: fixtureProject)
        let log = try #require(try JSONSerialization.jsonObject(with: Data(sarif.stdout.utf8)) as? [String: Any])
        #expect(log["version"] as? String == "2.1.0")
        let run = try #require((log["runs"] as? [[String: Any]])?.first)
        #expect(run["columnKind"] as? String == "unicodeCodePoints")
        let result = try #require((run["results"] as? [[String: Any]])?.first)
        #expect(result["ruleId"] as? String == "unknown-need")
        let location = (result["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any]
        #expect((location?["artifactLocation"] as? [String: Any])?["uri"] as? String == "pipelines/unknown_need.yml")
        #expect((location?["region"] as? [String: Any])?["startLine"] as? Int == 12)
        #expect((location?["region"] as? [String: Any])?["startColumn"] as? Int == 13)
    }

    @Test func textHasNoColourWhenNotATerminal() async throws {
        let result = try await sluice("lint", "pipelines/cycle.yml", in: fixtureProject)
        #expect(!result.stdout.contains("\u{1B}["))
    }

    @Test func theProjectIsFoundFromASubfolder() async throws {
        let result = try await sluice("lint", in: repositoryRoot.appendingPathComponent("pipelines"))
        #expect(result.status == 0)
        #expect(result.stdout == "4 files checked, no problems\n")
    }
}

struct PlanCommandTests {
    @Test func textShowsLayersReadsAndWrites() async throws {
        let result = try await sluice("plan", "genai_costs_daily")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("genai_costs_daily: 6 steps in 4 layers\n"))
        #expect(
            result.stdout.contains(
                "layer 3\n  daily_costs       aggregate      reads genai_usage, genai_pricing; writes genai_costs_daily; after dedupe_usage, dedupe_pricing\n"
            ))
    }

    @Test func dotAndMermaidDrawTheSameEdges() async throws {
        let dot = try await sluice("plan", "pipelines/genai_costs_daily.yml", "--format", "dot")
        #expect(dot.stdout.hasPrefix("digraph \"genai_costs_daily\" {"))
        #expect(dot.stdout.contains("\"load_usage\" -> \"dedupe_usage\" [style=dashed, label=\"genai_usage_raw\"];"))
        #expect(dot.stdout.contains("\"dedupe_usage\" -> \"daily_costs\";"))
        #expect(dot.stdout.contains("[label=\"daily_costs\\naggregate\"]"))
        let mermaid = try await sluice("plan", "genai_costs_daily", "--format", "mermaid")
        #expect(mermaid.stdout.hasPrefix("flowchart LR\n"))
        #expect(mermaid.stdout.contains("  load_usage -.->|genai_usage_raw| dedupe_usage\n"))
        #expect(mermaid.stdout.contains("  dedupe_usage --> daily_costs\n"))
    }

    @Test func aBrokenPipelineGetsItsDiagnosticsNotAPlan() async throws {
        let project = repositoryRoot.appendingPathComponent("Tests/SluiceModelTests/Fixtures/lint/project")
        let result = try await sluice("plan", "cycle", in: project)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("[cycle]"))
        let missing = try await sluice("plan", "no_such_pipeline")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no pipeline file 'no_such_pipeline'"))
    }
}

struct ProcessorsCommandTests {
    @Test func listsEveryProcessorAndDocumentsOne() async throws {
        let list = try await sluice("processors")
        for name in [
            "kms_decrypt", "validate_openai", "validate_anthropic", "validate_gcp", "validate_http",
            "ingest", "merge_dedupe", "aggregate", "sql", "validate_data", "notify",
        ] {
            #expect(list.stdout.contains("\n\(name) ") || list.stdout.hasPrefix("\(name) "), "\(name) missing")
        }
        let page = try await sluice("processors", "merge_dedupe")
        #expect(page.stdout.contains("latest_by is required when strategy is latest_wins"))
        #expect(page.stdout.contains("strategy (latest_wins | first_wins | replace_partitions, default latest_wins)"))
        let unknown = try await sluice("processors", "injest")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("did you mean 'ingest'?"))
    }
}

struct InitCommandTests {
    /// The latest 03:00 UTC at or before now (the new project's schedule), as `sluice` prints it.
    static func latestThreeOClock() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let now = Date()
        var day = calendar.date(bySettingHour: 3, minute: 0, second: 0, of: now)!
        if day > now { day = calendar.date(byAdding: .day, value: -1, to: day)! }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: day)
    }

    @Test func aNewProjectLintsCleanAndPlans() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let created = try await sluice("init", "demo", in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        let project = folder.appendingPathComponent("demo")
        let lint = try await sluice("lint", "--strict", in: project)
        #expect(lint.status == 0, "\(lint.stdout)")
        #expect(lint.stdout == "1 file checked, no problems\n")
        let plan = try await sluice("plan", "daily_usage", in: project)
        #expect(plan.stdout.hasPrefix("daily_usage: 4 steps in 4 layers"))
        // Its settings read, the scheduler runs the latest fire time (no catch-up), then finds
        // nothing due; the backfill runs an earlier day.
        let scheduler = try await sluice("scheduler", "--once", in: project)
        #expect(scheduler.status == 0, "\(scheduler.stderr)")
        #expect(scheduler.stdout.hasSuffix("  daily_usage  org default  \(Self.latestThreeOClock())  succeeded\n"), "\(scheduler.stdout)")
        #expect(try await sluice("scheduler", "--once", in: project).stdout == "No runs were due.\n")
        let backfill = try await sluice("backfill", "daily_usage", "--from", "2026-03-01", "--to", "2026-03-01", in: project)
        #expect(backfill.stdout.contains("org default  2026-03-01T03:00:00Z  succeeded"), "\(backfill.stdout)\(backfill.stderr)")
        let again = try await sluice("init", "demo", in: folder)
        #expect(again.status == 1)
        #expect(again.stderr.contains("nothing was written"))
    }
}

struct SchemaCommandTests {
    /// The editor schema accepts every example pipeline and refuses broken ones, as judged by
    /// python-jsonschema (an independent implementation).
    @Test func examplesValidateAgainstTheEditorSchema() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let schemaFile = folder.appendingPathComponent("sluice.schema.json")
        let written = try await sluice("schema", "--output", schemaFile.path)
        #expect(written.status == 0, "\(written.stderr)")

        let examples = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("pipelines").path)
            .filter { $0.hasSuffix(".yml") }.sorted().map { "pipelines/\($0)" }
        #expect(examples.count >= 3)
        let fixtures = "Tests/SluiceModelTests/Fixtures/lint/project/pipelines/"
        let broken = [
            fixtures + "unknown_key.yml", fixtures + "unknown_field.yml", fixtures + "invalid_value.yml", fixtures + "unknown_processor.yml",
        ]
        let valid = [fixtures + "valid_pipeline.yml"]
        let script = repositoryRoot.appendingPathComponent("Tests/SluiceCLITests/Support/validate_pipelines.py").path
        let result = try await run(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, schemaFile.path] + examples + valid + broken,
            in: repositoryRoot)
        #expect(result.status == 0, "python3 with jsonschema and pyyaml is needed (.ci/run installs them): \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for file in examples + valid {
            #expect(lines.contains("ok \(file)"), "\(file): \(lines.first { $0.contains(file) } ?? "not checked")")
        }
        for file in broken {
            #expect(lines.contains { $0.hasPrefix("invalid \(file):") }, "\(file) passed the schema")
        }
    }
}

struct DocumentationTests {
    @Test func theReadmeListsEveryLintRule() async throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let rules = try await sluice("lint", "--format", "sarif", "pipelines")
        let log = try #require(try JSONSerialization.jsonObject(with: Data(rules.stdout.utf8)) as? [String: Any])
        let driver = try #require(((log["runs"] as? [[String: Any]])?.first?["tool"] as? [String: Any])?["driver"] as? [String: Any])
        let ids = try #require(driver["rules"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count >= 30)
        for id in ids {
            #expect(readme.contains("| `\(id)`"), "README's rule table lacks \(id)")
        }
    }

    /// `.ci/run` runs exactly the README's test command, after installing what is missing.
    @Test func ciRunsTheReadmesTestCommand() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let ci = try String(contentsOf: repositoryRoot.appendingPathComponent(".ci/run"), encoding: .utf8)
        let section = try #require(readme.range(of: "Run the tests (what `.ci/run` runs"), "README lost its test command")
        let block = readme[section.upperBound...].split(separator: "```", maxSplits: 2)
        let command = try #require(block.count > 1 ? block[1].split(separator: "\n").dropFirst().first.map(String.init) : nil)
        #expect(command == "scripts/test.sh", "\(command)")
        let ciLines = ci.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(ciLines.suffix(2) == ["scripts/install-deps.sh", command], "\(ciLines)")
    }
}

struct RunCommandTests {
    /// A copy of the repository's example project in a temp folder, so runs don't touch the checkout.
    @Test func theExampleRunsEndToEndAndAgainWithTheSameResult() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let first = try await sluice("run", "genai_costs_daily", in: project)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains(": succeeded — every step succeeded"))
        #expect(first.stdout.contains("quarantined rows: 3"))
        #expect(first.stderr.contains("run_id="))
        let totals = "SELECT count(*), printf('%.6f', sum(cost_usd)), sum(requests) FROM genai_costs_daily"
        let before = try await sluice("query", "default", totals, in: project)
        #expect(before.status == 0, "\(before.stderr)")
        #expect(before.stdout.contains("\n374 "))

        let second = try await sluice("run", "genai_costs_daily", in: project)
        #expect(second.status == 0)
        #expect(try await sluice("query", "default", totals, in: project).stdout == before.stdout)

        let list = try await sluice("runs", "list", in: project)
        #expect(list.stdout.components(separatedBy: "genai_costs_daily").count - 1 == 2)
        let runID = try #require(first.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        let show = try await sluice("runs", "show", runID, in: project)
        #expect(show.status == 0)
        #expect(show.stdout.contains("transitions:"))
        #expect(show.stdout.contains("step daily_costs (attempt 1) → succeeded"))
    }

    @Test func sluiceRunHonoursTheSchedulesMaxActiveRuns() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        #expect(try await sluice("runs", "list", in: project).status == 0)
        // A run of the pipeline is running elsewhere (another terminal, the scheduler), alive.
        let now = Date().timeIntervalSince1970
        let script = """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1])
            c.execute("INSERT INTO run (id, pipeline, org, logical_date, trigger, params, state, reason, created_at, updated_at, heartbeat_at, lease_seconds) VALUES ('r0000000000000000001', 'genai_costs_daily', 'default', '2026-12-01', 'schedule', '{}', 'running', 'started', ?, ?, ?, 3600)", (\(now), \(now), \(now)))
            c.commit()
            """
        let inserted = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, ".sluice/runs.sqlite"], in: project)
        #expect(inserted.status == 0, "\(inserted.stderr)")

        let refused = try await sluice("run", "genai_costs_daily", in: project)
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("has 1 run pending or running in org 'default', its schedule's max_active_runs; nothing was run"),
            "\(refused.stderr)")
        #expect(
            try await sluice("runs", "list", in: project).stdout.components(separatedBy: "\n").filter { $0.contains("genai_costs_daily") }.count == 1)
        // Another org has its own count.
        #expect(try await sluice("run", "genai_costs_daily", "--org", "acme", in: project).status == 0)
    }

    @Test func sluiceRunOfAPipelineThatDecryptsCredentialsNeedsTheKeys() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLUICE_KEY") }
        let refused = try await run(sluiceBinary, ["run", "openai_usage_api"], in: project, environment: environment)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("sluice run: the pipeline decrypts credentials, and the keys could not be loaded: "), "\(refused.stderr)")
        #expect(try await sluice("runs", "list", in: project).stdout == "no runs yet\n")
    }

    @Test func sluiceRunRefusesParamsThatDontCheckAndRecordsNoRun() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try Data(
            """
            pipeline: needs_day
            defaults: { timeout: 1m }
            params:
              day: { type: date, required: true }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: "data/${{ params.day }}.csv" }, table: genai_usage_raw, schema: schemas/genai_usage_raw.json } }
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/needs_day.yml"))
        let missing = try await sluice("run", "needs_day", in: project)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("sluice run: param 'day' is required; give it with --param day=…; nothing was run"), "\(missing.stderr)")
        let pattern = try await sluice("run", "genai_costs_daily", "--param", "usage_file=usage.txt", in: project)
        #expect(pattern.status == 1)
        #expect(
            pattern.stderr.contains("sluice run: param 'usage_file': 'usage.txt' does not match its pattern .+\\.csv; nothing was run"),
            "\(pattern.stderr)")
        #expect(try await sluice("runs", "list", in: project).stdout == "no runs yet\n")
    }

    @Test func aFailedRunResumesFromItsFailedStep() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let usage = project.appendingPathComponent("examples/data/genai_usage.csv")
        let pricing = project.appendingPathComponent("examples/data/genai_pricing.csv")
        let moved = project.appendingPathComponent("pricing-later.csv")
        try FileManager.default.moveItem(at: pricing, to: moved)
        let failed = try await sluice("run", "genai_costs_daily", in: project)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("To run it again from the failed steps, reusing what succeeded: sluice run --resume "))
        let runID = try #require(failed.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })

        try FileManager.default.moveItem(at: moved, to: pricing)
        try Data("broken\n".utf8).write(to: usage)  // a reused load must not read the file again
        let resumed = try await sluice("run", "--resume", runID, in: project)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("reused from run \(runID)"))
        let totals = try await sluice("query", "default", "SELECT count(*) FROM genai_costs_daily", in: project)
        #expect(totals.stdout.contains("\n374\n"))
        #expect(try await sluice("run", "--resume", runID, "--param", "x=1", in: project).status == 2)
    }

    @Test func pruningRemovesAFailedRunsStagingAndItCanNoLongerBeResumed() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try FileManager.default.removeItem(at: project.appendingPathComponent("examples/data/genai_pricing.csv"))
        let failed = try await sluice("run", "genai_costs_daily", in: project)
        #expect(failed.status == 1)
        let runID = try #require(failed.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        let staging = project.appendingPathComponent(".sluice/orgs/default/staging/\(runID).sqlite").path
        #expect(FileManager.default.fileExists(atPath: staging))

        // The default retention (7 days) keeps it; --older-than 0s removes it.
        #expect(try await sluice("runs", "prune", in: project).stdout == "nothing to remove\n")
        #expect(FileManager.default.fileExists(atPath: staging))
        let pruned = try await sluice("runs", "prune", "--older-than", "0s", in: project)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(pruned.stdout.contains(runID))
        #expect(pruned.stdout.contains("removed 1 staging database"))
        #expect(!FileManager.default.fileExists(atPath: staging))

        let resumed = try await sluice("run", "--resume", runID, in: project)
        #expect(resumed.status != 0)
        #expect((resumed.stdout + resumed.stderr).contains("its staging was removed"))
        #expect(try await sluice("runs", "prune", "--older-than", "later", in: project).status == 2)
    }

    @Test func aPipelineWithLintErrorsRunsNothing() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let broken = try String(contentsOf: project.appendingPathComponent("pipelines/genai_costs_daily.yml"), encoding: .utf8)
            .replacingOccurrences(of: "uses: merge_dedupe", with: "uses: merge_dedup")
        try Data(broken.utf8).write(to: project.appendingPathComponent("pipelines/genai_costs_daily.yml"))
        let result = try await sluice("run", "genai_costs_daily", in: project)
        #expect(result.status == 1)
        #expect(result.stderr.contains("unknown processor 'merge_dedup'; did you mean 'merge_dedupe'?"))
        #expect(result.stderr.contains("nothing was run"))
        #expect(try await sluice("runs", "list", in: project).stdout == "no runs yet\n")
    }

    @Test func queryingAnOrgWithoutAWarehouseSaysSo() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let result = try await sluice("query", "nobody", "SELECT 1", in: project)
        #expect(result.status == 1)
        #expect(result.stderr.contains("org 'nobody' has no warehouse yet"))
    }
}

/// Invariant 2: killing `sluice run` (SIGKILL) at any moment leaves every target table exactly
/// as before the run, or, if the kill came after the publish committed, exactly as the run
/// made it; never a mix. After a restart the run shows as abandoned, with the reason.
struct CrashSafetyTests {
    func writeEvents(_ project: URL, rows: Int, amount: Int, hour: Int) throws {
        var text = "event_id,ts,day,org,amount\n"
        text.reserveCapacity(rows * 50)
        for index in 0..<rows {
            text += "e\(index),2026-03-0\(index % 7 + 1)T\(hour):00:00Z,2026-03-0\(index % 7 + 1),org\(index % 13),\(amount)\n"
        }
        try Data(text.utf8).write(to: project.appendingPathComponent("data/events.csv"))
    }

    func snapshot(_ project: URL, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> String {
        let events = try await run(
            sluiceBinary, ["query", "acme", "SELECT count(*), sum(amount), count(DISTINCT x_run_id) FROM events"], in: project,
            environment: environment)
        let daily = try await run(sluiceBinary, ["query", "acme", "SELECT count(*), sum(total) FROM daily"], in: project, environment: environment)
        #expect(events.status == 0 && daily.status == 0, "\(events.stderr)\(daily.stderr)")
        return events.stdout + daily.stdout
    }

    /// On SQLite files, and on a PostgreSQL database of the test's own (`SLUICE_DATABASE_URL`).
    @Test(arguments: Backend.all)
    func ctrlCCancelsTheRunAndPublishesNothing(_ backend: Backend) async throws {
        switch backend {
        case .sqlite: try await interruptARun(database: nil)
        case .postgres: try await PostgresTestDatabase.with { try await interruptARun(database: $0) }
        }
    }

    func interruptARun(database: PostgresTestDatabase?) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = database?.url
        let project = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: project) }
        try FileManager.default.createDirectory(at: project.appendingPathComponent("schemas"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: project.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: project.appendingPathComponent("data"), withIntermediateDirectories: true)
        try Data(
            #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "day", "type": "DATE"}, {"name": "org", "type": "STRING"}, {"name": "amount", "type": "INT64"}]"#
                .utf8
        )
        .write(to: project.appendingPathComponent("schemas/events_raw.json"))
        try Data(
            """
            pipeline: crash
            defaults: { timeout: 10m }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
              - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/crash.yml"))
        try writeEvents(project, rows: 300_000, amount: 1, hour: 10)

        let process = Process()
        process.executableURL = sluiceBinary
        process.arguments = ["run", "crash"]
        process.currentDirectoryURL = project
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        // Interrupt once the run is under way (its staging exists). Watched from a thread of its
        // own, so the interrupt comes within milliseconds even while the other tests are busy.
        let staging = project.appendingPathComponent(".sluice/orgs/default/staging")
        /// The names of the stagings: SQLite's files, or the lines of the PostgreSQL warehouse's list.
        @Sendable func stagings() -> [String] {
            guard let database else { return (try? FileManager.default.contentsOfDirectory(atPath: staging.path)) ?? [] }
            let listed = (try? database.sql("SELECT run_id FROM sluice_warehouse.staging")) ?? ""
            return listed.split(separator: "\n").map(String.init)
        }
        let interrupted = try await onItsOwnThread {
            let underWay = eventuallyBlocking(every: .milliseconds(5)) { !stagings().isEmpty || !process.isRunning }
            guard underWay, process.isRunning else { return false }
            kill(process.processIdentifier, SIGINT)
            return true
        }
        #expect(interrupted, "the run ended before its staging was seen")
        try await waitForExit(of: process)
        #expect(process.terminationStatus == 1)

        let list = try await run(sluiceBinary, ["runs", "list"], in: project, environment: environment)
        #expect(list.stdout.contains("  cancelled  "), "\(list.stdout)")
        #expect(list.stdout.contains("cancelled by Ctrl-C (SIGINT); nothing was published, resume it with sluice run --resume"))
        let query = try await run(sluiceBinary, ["query", "default", "SELECT count(*) FROM events"], in: project, environment: environment)
        #expect(query.status == 1, "nothing may be published: \(query.stdout)")
        // The cancelled run's staging is removed.
        #expect(stagings().filter { database != nil || $0.hasSuffix(".sqlite") } == [])

        // Its resume runs every step again, as the list's advice says.
        let cancelledID = try #require(list.stdout.split(separator: "\n").first { $0.contains("  cancelled  ") }?.split(separator: " ").first)
        let resumed = try await run(sluiceBinary, ["run", "--resume", String(cancelledID)], in: project, environment: environment)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        let published = try await run(sluiceBinary, ["query", "default", "SELECT count(*) FROM events"], in: project, environment: environment)
        #expect(published.stdout.contains("300000"), "\(published.stdout)\(published.stderr)")
    }

    /// On SQLite files, and on a PostgreSQL database of the test's own (`SLUICE_DATABASE_URL`).
    @Test(arguments: Backend.all)
    func killingARunAtAnyPointLeavesTargetsWholeAndTheRunAbandoned(_ backend: Backend) async throws {
        switch backend {
        case .sqlite: try await killAtEachPoint(database: nil)
        case .postgres: try await PostgresTestDatabase.with { try await killAtEachPoint(database: $0) }
        }
    }

    func killAtEachPoint(database: PostgresTestDatabase?) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_DATABASE_URL"] = database?.url
        let project = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: project) }
        try writeFiles(eventsPipelineFiles(id: "crash"), in: project)
        try FileManager.default.createDirectory(at: project.appendingPathComponent("data"), withIntermediateDirectories: true)

        // Before: a small run publishes state A.
        try writeEvents(project, rows: 1_000, amount: 1, hour: 10)
        let first = try await run(sluiceBinary, ["run", "crash", "--org", "acme"], in: project, environment: environment)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let before = try await snapshot(project, environment: environment)

        // The runs that get killed: newer rows with a new amount, so a partial publish would show;
        // 150,000 on SQLite, 50,000 on PostgreSQL, where a run of them takes as long (it goes
        // through a server) and the kill points land inside it the same way.
        let rows = database == nil ? 150_000 : 50_000
        try writeEvents(project, rows: rows, amount: 2, hour: 11)
        var killedWhileRunning = 0
        var outcomes: [String] = []
        var previous = before
        let staging = project.appendingPathComponent(".sluice/orgs/acme/staging")
        /// The runs' stagings: SQLite's files, or the lines of the PostgreSQL warehouse's list.
        @Sendable func stagings() -> Set<String> {
            guard let database else { return Set((try? FileManager.default.contentsOfDirectory(atPath: staging.path)) ?? []) }
            let listed = (try? database.sql("SELECT run_id FROM sluice_warehouse.staging")) ?? ""
            return Set(listed.split(separator: "\n").map(String.init))
        }
        // Kill points counted from the moment the run's own staging appears (the run exists and
        // is under way), not from the start of the process, so a busy machine moves them less.
        for delay in [0.0, 0.5, 1.5, 4.0] {
            let process = Process()
            process.executableURL = sluiceBinary
            process.arguments = ["run", "crash", "--org", "acme"]
            process.currentDirectoryURL = project
            // The run's own lease, stored with it: 1 s, so a restart can tell soon that it died.
            process.environment = environment.merging(["SLUICE_RUN_LEASE": "1s"]) { $1 }
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            let earlier = stagings()
            try process.run()
            // Watched from a thread of its own, so the kill comes when meant even while other
            // tests are busy.
            let killed = try await onItsOwnThread {
                eventuallyBlocking(every: .milliseconds(5)) { !stagings().subtracting(earlier).isEmpty || !process.isRunning }
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                guard process.isRunning else { return false }
                kill(process.processIdentifier, SIGKILL)
                return true
            }
            if killed { killedWhileRunning += 1 }
            try await waitForExit(of: process)
            try await Task.sleep(for: .milliseconds(1200))

            // A restart notices the dead run (its lease, 1 s, has passed) and says why.
            let list = try await run(sluiceBinary, ["runs", "list", "--limit", "1"], in: project, environment: environment)
            let state = list.stdout.contains("  succeeded  ") ? "succeeded" : list.stdout.contains("  failed  ") ? "failed" : "?"
            outcomes.append("\(delay)s: \(state)")
            let now = try await snapshot(project, environment: environment)
            if state == "failed" {
                #expect(list.stdout.contains("abandoned: no heartbeat for 1s; the process running it stopped"), "\(list.stdout)")
                #expect(now == previous, "killed \(delay)s after its staging appeared: the targets changed")
            } else {
                #expect(state == "succeeded", "\(list.stdout)")
                #expect(now != before && now.contains("\(rows)") && now.contains("\(2 * rows)"), "\(now)")
                previous = now
            }
        }
        #expect(killedWhileRunning >= 2, "\(outcomes)")
        #expect(outcomes.contains { $0.hasSuffix("failed") }, "no kill landed before the publish: \(outcomes)")

        // After: an uninterrupted run leaves state B in full.
        #expect(try await run(sluiceBinary, ["run", "crash", "--org", "acme"], in: project, environment: environment).status == 0)
        let totals = try await run(
            sluiceBinary, ["query", "acme", "SELECT count(*) || '/' || sum(amount) FROM events"], in: project, environment: environment)
        #expect(totals.stdout.contains("\(rows)/\(2 * rows)"), "\(totals.stdout)")
    }
}
