import Foundation
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// `ingest` with `source: { format: sql }`: rows of a procedure over the org's warehouse, run
/// for real on each backend.
@Suite struct SQLSourceTests {
    static let events = """
        event_id,ts,day,org,amount
        e1,2026-03-01T10:00:00Z,2026-03-01,acme,5
        e2,2026-03-01T11:00:00Z,2026-03-01,acme,1
        e3,2026-03-02T09:00:00Z,2026-03-02,globex,9
        e4,2026-03-02T10:00:00Z,2026-03-02,acme,12

        """

    /// A project whose `events` table is published by a first run.
    func projectWithEvents(_ backend: Backend) async throws -> PipelineProject {
        let project = try await PipelineProject(backend)
        try project.write("data/events.csv", Self.events)
        let first = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(first.state == .succeeded, "\(first.reason)")
        try project.write(
            "schemas/big_events_raw.json",
            #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "INT64"}, {"name": "note", "type": "STRING"}]"#)
        return project
    }

    /// `big_events`: ingest the rows of `procedure` (params `params`), then merge them into
    /// `big_events` so they publish.
    static func pipeline(procedure: String = "procedures/big_events.sql", params: String, onBadRow: String = "fail") -> String {
        """
        pipeline: big_events
        defaults: { timeout: 1m }
        steps:
          - id: extract
            uses: ingest
            with:
              source: { format: sql, procedure: \(procedure), params: \(params) }
              table: big_events_raw
              schema: schemas/big_events_raw.json
              on_bad_row: \(onBadRow)
          - { id: merge, uses: merge_dedupe, with: { from: big_events_raw, into: big_events, key: [event_id], strategy: first_wins } }
        """
    }

    /// Runs `yaml` without linting it first (lint would refuse what the run must refuse too).
    func runUnlinted(_ project: PipelineProject, _ name: String, _ yaml: String) async throws -> RunRecord {
        try project.write("pipelines/\(name).yml", yaml)
        let loaded = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/\(name).yml")
        let plan = try PipelinePlan.build(try #require(loaded.definition)).get()
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse, project: ProjectContext(root: project.root),
            logger: quietLogger)
        return try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", params: [:], env: [:]))
    }

    @Test(arguments: Backend.all) func maxRowsBoundsWhatASqlSourceReadsNotOnlyWhatItWrites(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        // Five million rows, were they all read: max_rows stops the query one row past it. Row
        // 1,001 on is an error in the warehouse's SQL, so a source that read past the limit
        // fails with that error (procedure_failed), not with the limit: a bound without a clock.
        let failsPastTheLimit =
            backend == .sqlite
            ? "CASE WHEN i > 1000 THEN json('not json') ELSE i END" : "CASE WHEN i > 1000 THEN CAST('x' || i AS integer) ELSE i END"
        try project.write(
            "procedures/big_events.sql",
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000)
            SELECT 'e' || i AS event_id, \(failsPastTheLimit) AS amount FROM n -- every row a new event
            """)
        let yaml = Self.pipeline(params: "{}").replacingOccurrences(
            of: "on_bad_row: fail\n", with: "on_bad_row: fail\n    limits: { max_rows: 10 }\n")
        let run = try await project.run("big_events", yaml: yaml)
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.errorCode == "budget_exceeded")
        #expect(step?.reason.contains("reached 11 rows, past limits.max_rows (10)") == true, "\(step?.reason ?? "")")
    }

    @Test(arguments: Backend.all) func rowsOfAProcedureOverAPublishedTableAreIngestedWithTheirParamsBound(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write(
            "procedures/big_events.sql",
            """
            -- An org's events from an amount up; the values are bound, never spliced.
            SELECT event_id, CAST(amount AS INTEGER) AS amount, :note AS note
            FROM events WHERE org = :org AND amount >= :min
            ORDER BY event_id;
            """)
        let run = try await project.run(
            "big_events", yaml: Self.pipeline(params: #"{ org: acme, min: 5, note: "it's; DROP TABLE events" }"#))
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(
            try await project.rows("SELECT event_id, amount, note FROM big_events ORDER BY event_id") == [
                ["e1", "5", "it's; DROP TABLE events"], ["e4", "12", "it's; DROP TABLE events"],
            ])
        let outputs = try await project.outputs(run, "extract")
        #expect(outputs["rows_read"] == .number(2))
        #expect(outputs["rows_written"] == .number(2))
        #expect(outputs["bytes_read"] == .number(0))
        #expect(try await project.rows("SELECT count(*) FROM events") == [["4"]])
    }

    @Test(arguments: Backend.all) func aProcedureReadsWhatAnEarlierStepOfTheRunStaged(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", Self.events)
        try project.write("schemas/totals_raw.json", #"[{"name": "org", "type": "STRING"}, {"name": "total", "type": "NUMERIC"}]"#)
        try project.write("procedures/totals.sql", "SELECT org, sum(amount) AS total FROM events GROUP BY org ORDER BY org")
        let run = try await project.run(
            "totals",
            yaml: """
                pipeline: totals
                defaults: { timeout: 1m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
                  - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
                  - { id: extract, uses: ingest, with: { source: { format: sql, procedure: procedures/totals.sql }, table: totals_raw, schema: schemas/totals_raw.json } }
                  - { id: keep, uses: merge_dedupe, with: { from: totals_raw, into: totals, key: [org], strategy: first_wins } }
                """)
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(
            try await project.rows("SELECT org, CAST(total AS DOUBLE PRECISION) FROM totals ORDER BY org") == [["acme", "18.0"], ["globex", "9.0"]])
    }

    @Test(arguments: Backend.all) func aValueThatDoesNotFitIsABadRowAtItsResultRow(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write(
            "procedures/big_events.sql",
            "SELECT event_id, CASE WHEN event_id = 'e2' THEN 'lots' ELSE CAST(CAST(amount AS INTEGER) AS TEXT) END AS amount FROM events ORDER BY event_id"
        )
        // One of four rows is bad: past the default max_bad_rows (10%), so this test allows it.
        let run = try await project.run("big_events", yaml: Self.pipeline(params: "{}", onBadRow: "quarantine\n      max_bad_rows: 1"))
        #expect(run.state == .succeeded, "\(run.reason)")
        let quarantined = try await project.store.quarantined(of: run.id)
        #expect(quarantined.map { "\($0.file):\($0.line)" } == ["procedures/big_events.sql:2"])
        #expect(quarantined.first?.raw == #"{"event_id":"e2","amount":"lots"}"#)
        #expect(quarantined.first?.reason.contains("column amount: 'lots' is not a") == true, "\(quarantined.first?.reason ?? "")")
        #expect(try await project.rows("SELECT event_id FROM big_events ORDER BY event_id") == [["e1"], ["e3"], ["e4"]])

        // Under on_bad_row: fail, the same row fails the step, naming the procedure and row.
        let failed = try await project.run("big_events", yaml: Self.pipeline(params: "{}", onBadRow: "fail"))
        #expect(failed.state == .failed)
        let step = try await project.store.steps(of: failed.id).first { $0.stepID == "extract" }
        #expect(step?.errorCode == "bad_row")
        #expect(step?.reason.hasPrefix("procedures/big_events.sql:2:") == true, "\(step?.reason ?? "")")
    }

    @Test(arguments: Backend.all) func aRequiredColumnTheQueryLacksFailsEvenWithoutRows(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write("procedures/big_events.sql", "SELECT amount FROM events WHERE org = 'nobody'")
        let run = try await project.run("big_events", yaml: Self.pipeline(params: "{}"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.errorCode == "missing_column")
        #expect(step?.reason.contains("procedures/big_events.sql has no column 'event_id'") == true, "\(step?.reason ?? "")")
        #expect(try await project.tableExists("big_events") == false)
    }

    @Test(arguments: Backend.all) func anEmptyResultIngestsNothingAndSucceeds(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write("procedures/big_events.sql", "SELECT event_id, 1 AS amount FROM events WHERE org = :org")
        let run = try await project.run("big_events", yaml: Self.pipeline(params: "{ org: nobody }"))
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(try await project.outputs(run, "extract")["rows_written"] == .number(0))
    }

    @Test(arguments: Backend.all) func aProcedureOverATableThatIsNotThereFailsNamingTheProcedure(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        // Lint knows `events` from its schema; the org has never published it.
        try project.write(
            "schemas/big_events_raw.json",
            #"[{"name": "event_id", "type": "STRING"}, {"name": "amount", "type": "INT64"}, {"name": "note", "type": "STRING"}]"#)
        try project.write("procedures/big_events.sql", "SELECT event_id FROM events")
        let run = try await project.run("big_events", yaml: Self.pipeline(params: "{}"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.reason.contains("procedure procedures/big_events.sql: ") == true, "\(step?.reason ?? "")")
        let missing = backend == .sqlite ? "no such table: events" : #"relation "events" does not exist"#
        #expect(step?.reason.contains(missing) == true, "\(step?.reason ?? "")")
        #expect(try await project.tableExists("big_events") == false)
    }

    @Test(arguments: Backend.all) func aProcedureWithASyntaxErrorFailsNamingTheProcedure(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write("procedures/big_events.sql", "SELEC event_id FROM events")
        let run = try await runUnlinted(project, "big_events", Self.pipeline(params: "{}"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.reason.contains("procedure procedures/big_events.sql: ") == true, "\(step?.reason ?? "")")
        #expect(step?.reason.contains("syntax error") == true, "\(step?.reason ?? "")")
        #expect(try await project.tableExists("big_events") == false)
    }

    @Test(arguments: Backend.all) func aProcedureThatWritesIsRefusedAndChangesNothing(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        try project.write("procedures/big_events.sql", "DELETE FROM events RETURNING event_id")
        let run = try await runUnlinted(project, "big_events", Self.pipeline(params: "{}"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.errorCode == "procedure_refused", "\(step?.reason ?? "")")
        #expect(step?.reason.contains("procedure procedures/big_events.sql: ") == true, "\(step?.reason ?? "")")
        #expect(try await project.rows("SELECT count(*) FROM events") == [["4"]])
    }

    @Test(arguments: Backend.all) func aProcedureOutsideTheProjectIsRefused(_ backend: Backend) async throws {
        let project = try await projectWithEvents(backend)
        defer { project.remove() }
        let outside = project.root.deletingLastPathComponent().appendingPathComponent("outside-\(UUID().uuidString).sql")
        try Data("SELECT 'x' AS event_id".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }
        let run = try await runUnlinted(project, "big_events", Self.pipeline(procedure: "../\(outside.lastPathComponent)", params: "{}"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "extract" }
        #expect(step?.errorCode == "invalid_config")
        #expect(step?.reason.contains("is outside the project folder") == true, "\(step?.reason ?? "")")
        #expect(try await project.tableExists("big_events") == false)
    }
}
