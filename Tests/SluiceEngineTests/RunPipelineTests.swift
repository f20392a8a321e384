import Foundation
import GRDB
import Logging
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// A throwaway project folder with schemas, data and pipelines, run for real on a backend:
/// SQLite files in its `.sluice/`, or a run store schema and warehouse schemas of its own on
/// the test PostgreSQL server.
struct PipelineProject {
    let root: URL
    let backend: Backend
    let store: any RunStore
    let warehouse: any Warehouse
    private let dropStorage: @Sendable () -> Void

    /// A project on SQLite (for the cases about SQLite itself).
    init() throws {
        root = Self.makeRoot()
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        backend = .sqlite
        store = try SQLiteRunStore(path: root.appendingPathComponent(".sluice/runs.sqlite").path)
        warehouse = SQLiteWarehouse(root: root.appendingPathComponent(".sluice"))
        dropStorage = {}
        try writeFixtures()
    }

    /// A project on `backend`.
    init(_ backend: Backend) async throws {
        root = Self.makeRoot()
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        self.backend = backend
        let storage = try await backend.open(root: root)
        store = storage.store
        warehouse = storage.warehouse
        dropStorage = storage.remove
        try writeFixtures()
    }

    static func makeRoot() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("sluice-run-\(UUID().uuidString)")
    }

    /// The SQLite warehouse of a project made with `init()`, for the cases about its files.
    var sqlite: SQLiteWarehouse {
        get throws { try #require(warehouse as? SQLiteWarehouse, "a SQLite-only case ran on \(backend)") }
    }

    private func writeFixtures() throws {
        try write(
            "schemas/events_raw.json",
            """
            [
              {"name": "event_id", "type": "STRING", "mode": "REQUIRED"},
              {"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"},
              {"name": "day", "type": "DATE", "mode": "REQUIRED"},
              {"name": "org", "type": "STRING", "mode": "REQUIRED"},
              {"name": "amount", "type": "NUMERIC"}
            ]
            """)
        try write(
            "schemas/events.json",
            """
            {"table": "events", "primary_key": ["event_id"], "fields": [
              {"name": "event_id", "type": "STRING", "mode": "REQUIRED"},
              {"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"},
              {"name": "day", "type": "DATE", "mode": "REQUIRED"},
              {"name": "org", "type": "STRING", "mode": "REQUIRED"},
              {"name": "amount", "type": "NUMERIC"},
              {"name": "x_run_id", "type": "STRING"},
              {"name": "x_pipeline", "type": "STRING"},
              {"name": "x_ingested_at", "type": "TIMESTAMP"}
            ]}
            """)
        try write("schemas/rates.json", #"[{"name": "org", "type": "STRING"}, {"name": "rate", "type": "FLOAT64"}]"#)
        try write("schemas/rates_raw.json", #"[{"name": "org", "type": "STRING", "mode": "REQUIRED"}, {"name": "rate", "type": "FLOAT64"}]"#)
        try write("data/rates.csv", "org,rate\nacme,2\nglobex,10\n")
    }

    func write(_ path: String, _ text: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// Lints the pipeline (it must be clean) and runs it.
    func run(_ pipeline: String, yaml: String, params: [String: String] = [:]) async throws -> RunRecord {
        try write("pipelines/\(pipeline).yml", yaml)
        let (plan, diagnostics) = Linter(projectRoot: root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/\(pipeline).yml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let executor = Executor(processors: .standard, store: store, warehouse: warehouse, project: ProjectContext(root: root), logger: quietLogger)
        return try await executor.start(try #require(plan), .init(org: "acme", logicalDate: "2026-03-01", params: params, env: [:]))
    }

    func rows(_ sql: String) async throws -> [[String]] {
        try await warehouse.query(org: "acme", sql, []).rows.map { $0.map(\.displayText) }
    }

    /// Whether the org has published `table`, asked of the warehouse as a reader would: a
    /// query of it fails as SQLite ("no such table") or PostgreSQL ("does not exist") says.
    func tableExists(_ table: String) async throws -> Bool {
        do {
            _ = try await warehouse.query(org: "acme", "SELECT 1 FROM \(table) LIMIT 1", [])
            return true
        } catch {
            let message = String(describing: error)
            guard message.contains("no such table") || message.contains("does not exist") else { throw error }
            return false
        }
    }

    func outputs(_ run: RunRecord, _ step: String) async throws -> [String: ExpressionValue] {
        try await store.steps(of: run.id).first { $0.stepID == step }?.outputs ?? [:]
    }

    func remove() {
        dropStorage()
        try? FileManager.default.removeItem(at: root)
    }

    /// The processors of a slow pipeline: the built-in ones and `test_sleep`.
    static let slowCatalog = ProcessorEnvironment.standard.adding([SleepProcessor()])

    /// `slow_events`: load and merge one event, then sleep for `wait` (the events file is written).
    func slowPlan(wait: String) throws -> PipelinePlan {
        try write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let loaded = PipelineLoader(registry: Self.slowCatalog.registry).load(
            Data(
                """
                pipeline: slow_events
                defaults: { timeout: 30m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
                  - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
                  - { id: wait, uses: test_sleep, needs: [merge], with: { for: \(wait) } }
                """.utf8), file: "pipelines/slow_events.yml")
        return try PipelinePlan.build(try #require(loaded.definition)).get()
    }

    /// The id of the `slow_events` run once its `wait` step is running.
    func slowRunSleeping() async throws -> String {
        var sleeping: String?
        try await eventually(every: .milliseconds(25)) {
            if let run = try await store.runs(pipeline: "slow_events", org: "acme", limit: 1).first,
                try await store.steps(of: run.id).contains(where: { $0.stepID == "wait" && $0.state == .running })
            {
                sleeping = run.id
            }
            return sleeping != nil
        }
        guard let sleeping else { throw StepFailure("test_timeout", "slow_events never reached its wait step") }
        return sleeping
    }

    static func mergePipeline(
        file: String = "data/events.csv", strategy: String = "latest_wins", check: String = "{ type: row_count, min: 1 }",
        maxBadRows: String? = nil
    ) -> String {
        let threshold = maxBadRows.map { ", max_bad_rows: \"\($0)\"" } ?? ""
        let latest = strategy == "latest_wins" ? ", latest_by: ts" : strategy == "replace_partitions" ? ", partition_by: day" : ""
        return """
            pipeline: merge_events
            defaults: { timeout: 1m }
            steps:
              - id: load
                uses: ingest
                with: { source: { format: csv, path: \(file) }, table: events_raw, schema: schemas/events_raw.json, on_bad_row: quarantine\(threshold) }
              - id: merge
                uses: merge_dedupe
                with: { from: events_raw, into: events, key: [event_id], strategy: \(strategy)\(latest) }
              - id: test
                uses: validate_data
                with: { table: events, checks: [\(check)] }
            """
    }
}

struct RunPipelineTests {
    @Test(arguments: Backend.all) func targetsArePublishedTogetherAndScratchTablesAreNot(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv",
            """
            event_id,ts,day,org,amount
            e1,2026-03-01T10:00:00Z,2026-03-01,acme,5
            e2,2026-03-01T11:00:00Z,2026-03-01,globex,1.5
            e3,2026-03-02T09:30:00+02:00,2026-03-02,acme,2
            """)
        let run = try await project.run(
            "daily",
            yaml: """
                pipeline: daily
                defaults: { timeout: 1m }
                params: { min_amount: { type: number, default: 0 } }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
                  - { id: load_rates, uses: ingest, with: { source: { format: csv, path: data/rates.csv }, table: rates_raw, schema: schemas/rates_raw.json } }
                  - { id: rates, uses: merge_dedupe, with: { from: rates_raw, into: rates, key: [org], strategy: first_wins, lineage: false } }
                  - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
                  - id: roll
                    uses: aggregate
                    with:
                      from: events
                      join: { table: rates, on: [org] }
                      where: amount >= :min_amount
                      params: { min_amount: "${{ params.min_amount }}" }
                      group_by: [day, org]
                      measures: { events: count(*), billed: sum(amount * rate) }
                      into: daily
                      mode: replace_partitions
                      partition_by: day
                """)
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(
            try await project.rows("SELECT event_id, ts, org FROM events ORDER BY event_id") == [
                ["e1", "2026-03-01T10:00:00.000000Z", "acme"], ["e2", "2026-03-01T11:00:00.000000Z", "globex"],
                ["e3", "2026-03-02T07:30:00.000000Z", "acme"],
            ])
        #expect(
            try await project.rows("SELECT day, org, events, billed FROM daily ORDER BY day, org") == [
                ["2026-03-01", "acme", "1", "10.0"], ["2026-03-01", "globex", "1", "15.0"], ["2026-03-02", "acme", "1", "4.0"],
            ])
        #expect(try await project.rows("SELECT DISTINCT x_run_id, x_pipeline FROM events") == [[run.id, "daily"]])
        #expect(try await project.tableExists("events_raw") == false)
        // The staging (SQLite: its file; PostgreSQL: its schemas) is gone once published.
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: run.id) == false)
    }

    @Test(arguments: Backend.all) func aFailingStepLeavesEveryTargetAsItWas(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let first = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(first.state == .succeeded)
        let before = try await project.rows("SELECT * FROM events ORDER BY event_id")

        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-02T10:00:00Z,2026-03-01,acme,99\ne2,2026-03-02T10:00:00Z,2026-03-02,acme,1\n")
        let failed = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(check: "{ type: row_count, max: 1 }"))
        #expect(failed.state == .failed)
        #expect(failed.reason == "step 'test' failed: 1 data test on 'events' failed: row_count_1 (2 rows)")
        // The merge ran and staged its rows, but nothing reached the published table.
        #expect(try await project.outputs(failed, "merge")["rows_updated"] == .number(1))
        #expect(try await project.rows("SELECT * FROM events ORDER BY event_id") == before)
        let results = try await project.store.checkResults(of: failed.id)
        #expect(results.map(\.passed) == [false])
    }

    @Test(arguments: Backend.all) func runningTheSameInputTwiceLeavesTargetsIdentical(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\ne2,2026-03-01T10:00:00Z,2026-03-01,acme,1\n")
        let first = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        let snapshot = try await project.rows("SELECT event_id, ts, day, org, amount FROM events ORDER BY event_id")
        let second = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(first.state == .succeeded && second.state == .succeeded)
        #expect(try await project.rows("SELECT event_id, ts, day, org, amount FROM events ORDER BY event_id") == snapshot)
        #expect(try await project.outputs(second, "merge")["rows_unchanged"] == .number(2))
        #expect(try await project.outputs(second, "merge")["rows_inserted"] == .number(0))
    }

    @Test(arguments: Backend.all) func redeliveredRowsCountOnceAndTheLatestVersionWins(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        var first = "event_id,ts,day,org,amount\n"
        for index in 0..<100 { first += "e\(index),2026-03-01T10:00:00Z,2026-03-01,acme,1\n" }
        try project.write("data/events.csv", first)
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())

        // The next delivery: 5 rows again as they were, 1 row updated later, 1 new row, and
        // inside the batch one key twice (the later version must win) and one older version.
        var second = "event_id,ts,day,org,amount\n"
        for index in 0..<5 { second += "e\(index),2026-03-01T10:00:00Z,2026-03-01,acme,1\n" }
        second += "e50,2026-03-01T12:00:00Z,2026-03-01,acme,7\n"
        second += "e50,2026-03-01T11:00:00Z,2026-03-01,acme,6\n"
        second += "e60,2026-03-01T09:00:00Z,2026-03-01,acme,99\n"
        second += "e100,2026-03-01T10:00:00Z,2026-03-01,acme,3\n"
        try project.write("data/events.csv", second)
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(run.state == .succeeded)
        let outputs = try await project.outputs(run, "merge")
        #expect(outputs["rows_inserted"] == .number(1))
        #expect(outputs["rows_updated"] == .number(1))
        #expect(outputs["rows_unchanged"] == .number(6))
        #expect(outputs["duplicates_collapsed"] == .number(1))
        #expect(
            try await project.rows("SELECT count(*), count(DISTINCT event_id), CAST(sum(amount) AS DOUBLE PRECISION) FROM events") == [
                ["101", "101", "109.0"]
            ])
        #expect(
            try await project.rows("SELECT CAST(amount AS DOUBLE PRECISION) FROM events WHERE event_id IN ('e50', 'e60') ORDER BY event_id") == [
                ["7.0"], ["1.0"],
            ])
    }

    @Test(arguments: Backend.all) func firstWinsKeepsWhatArrivedFirst(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,1\ne1,2026-03-01T11:00:00Z,2026-03-01,acme,2\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(strategy: "first_wins"))
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T12:00:00Z,2026-03-01,acme,3\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(strategy: "first_wins"))
        #expect(try await project.rows("SELECT CAST(amount AS DOUBLE PRECISION) FROM events") == [["1.0"]])
    }

    @Test(arguments: Backend.all) func replacePartitionsReplacesOnlyTheDaysInTheBatch(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\na,2026-03-01T10:00:00Z,2026-03-01,acme,1\nb,2026-03-02T10:00:00Z,2026-03-02,acme,1\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(strategy: "replace_partitions"))
        try project.write("data/events.csv", "event_id,ts,day,org,amount\nc,2026-03-02T11:00:00Z,2026-03-02,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(strategy: "replace_partitions"))
        #expect(try await project.rows("SELECT event_id, day FROM events ORDER BY event_id") == [["a", "2026-03-01"], ["c", "2026-03-02"]])
    }

    @Test(arguments: Backend.all) func badRowsAreQuarantinedWithTheirLineAndReason(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv",
            """
            event_id,ts,day,org,amount
            e1,2026-03-01T10:00:00Z,2026-03-01,acme,5
            e2,yesterday,2026-03-01,acme,1
            e3,2026-03-01T10:00:00Z,2026-02-30,acme,1
            """)
        // Two of three rows are bad: past the default max_bad_rows (10%), so this test allows them.
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(maxBadRows: "70%"))
        #expect(run.state == .succeeded)
        let quarantined = try await project.store.quarantined(of: run.id)
        #expect(quarantined.map { "\($0.file):\($0.line):\($0.column)" } == ["data/events.csv:3:4", "data/events.csv:4:25"])
        #expect(quarantined.first?.raw == "e2,yesterday,2026-03-01,acme,1")
        #expect(quarantined.first?.reason.hasPrefix("column ts: 'yesterday' is not a TIMESTAMP") == true)
        #expect(try await project.outputs(run, "load")["rows_quarantined"] == .number(2))
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }

    @Test(arguments: Backend.all) func aLoadWhoseEveryRowIsBadFailsWithTheCountAndTheFirstReasons(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        // A FOCUS-style export re-saved by a spreadsheet: every date in M/D/YYYY.
        try project.write(
            "data/events.csv",
            """
            event_id,ts,day,org,amount
            e1,2026-03-01T10:00:00Z,3/1/2026,acme,5
            e2,2026-03-01T11:00:00Z,3/1/2026,acme,1
            e3,2026-03-02T10:00:00Z,3/2/2026,acme,1
            """)
        // Even a threshold that allows every bad row doesn't make an empty load a success.
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(maxBadRows: "100%"))
        #expect(run.state == .failed)
        let step = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "load" })
        #expect(step.errorCode == "too_many_bad_rows")
        #expect(step.reason.hasPrefix("3 of 3 rows were bad (0 skipped, 3 quarantined): every row read was bad"), "\(step.reason)")
        #expect(step.reason.contains("data/events.csv:2:25: column day: '3/1/2026' is not a DATE"), "\(step.reason)")
        // Nothing is lost: the rows are kept with the run; nothing is published.
        #expect(try await project.store.quarantined(of: run.id).count == 3)
        #expect(try await project.tableExists("events") == false)
    }

    @Test(arguments: Backend.all) func maxBadRowsTakesACountOrAShare(_ backend: Backend) async throws {
        let rows = (1...20).map { "e\($0),2026-03-01T10:00:00Z,2026-03-01,acme,\($0 <= 3 ? "lots" : "1")" }
        let data = "event_id,ts,day,org,amount\n" + rows.joined(separator: "\n") + "\n"
        // 3 bad rows of 20 (15%): past the default 10%, past a count of 2, within 3 and 20%.
        for (threshold, passes) in [(nil, false), ("2", false), ("3", true), ("20%", true), ("14.9%", false)] as [(String?, Bool)] {
            let project = try await PipelineProject(backend)
            defer { project.remove() }
            try project.write("data/events.csv", data)
            let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(maxBadRows: threshold))
            #expect(run.state == (passes ? .succeeded : .failed), "max_bad_rows \(threshold ?? "default")")
            if passes {
                #expect(try await project.rows("SELECT count(*) FROM events") == [["17"]])
            } else {
                let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
                #expect(step?.errorCode == "too_many_bad_rows")
                #expect(step?.reason.contains("more than max_bad_rows (\(threshold ?? "10%")) allows") == true, "\(step?.reason ?? "")")
                #expect(try await project.tableExists("events") == false)
            }
        }
    }

    @Test(arguments: Backend.all) func limitsStopALoadBeforeItWritesPastThemAndTheLowerOfStepAndOrgWins(_ backend: Backend) async throws {
        let rows = (1...20).map { "e\($0),2026-03-01T10:00:00Z,2026-03-01,acme,1" }
        let data = "event_id,ts,day,org,amount\n" + rows.joined(separator: "\n") + "\n"
        func pipeline(_ limits: String?) -> String {
            PipelineProject.mergePipeline().replacingOccurrences(
                of: "on_bad_row: quarantine }", with: "on_bad_row: quarantine, batch_size: 5 }\(limits.map { "\n    limits: \($0)" } ?? "")")
        }
        // (the step's limits, sluice.yml, what happens)
        let cases: [(String?, String?, String?)] = [
            ("{ max_rows: 12 }", nil, "reached 15 rows, past limits.max_rows (12)"),
            ("{ max_rows: 100 }", "limits: { acme: { max_rows: 8 } }", "reached 10 rows, past limits.max_rows (8)"),
            (nil, "limits: { default: { max_rows: 8 }, acme: { max_rows: 50 } }", nil),
            (nil, "limits: { default: { max_rows: 8 }, globex: { max_rows: 50 } }", "reached 10 rows, past limits.max_rows (8)"),
            ("{ max_bytes: 100 }", nil, "bytes, past limits.max_bytes (100)"),
            ("{ max_rows: 20, max_bytes: 1MB }", nil, nil),
        ]
        for (limits, settings, failure) in cases {
            let project = try await PipelineProject(backend)
            defer { project.remove() }
            try project.write("data/events.csv", data)
            if let settings { try project.write("sluice.yml", settings) }
            let run = try await project.run("merge_events", yaml: pipeline(limits))
            let label = "\(limits ?? "-") / \(settings ?? "-")"
            guard let failure else {
                #expect(run.state == .succeeded, "\(label): \(run.reason)")
                #expect(try await project.rows("SELECT count(*) FROM events") == [["20"]], "\(label)")
                continue
            }
            #expect(run.state == .failed, "\(label)")
            let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
            #expect(step?.errorCode == "budget_exceeded", "\(label)")
            #expect(step?.reason.contains(failure) == true, "\(label): \(step?.reason ?? "")")
            #expect(step?.reason.contains("data/events.csv") == true, "\(label): \(step?.reason ?? "")")
            #expect(try await project.tableExists("events") == false, "\(label)")
        }
    }

    @Test(arguments: Backend.all) func aDeclaredDateFormatReadsWhatASpreadsheetWrote(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/events.csv",
            """
            event_id,ts,day,org,amount
            e1,9/9/2024 1:05 PM,9/9/2024,acme,5
            e2,12/31/2024 11:59 PM,12/31/2024,acme,1
            e3,13/1/2024 1:00 AM,2/30/2024,acme,1
            """)
        let yaml = PipelineProject.mergePipeline(maxBadRows: "50%").replacingOccurrences(
            of: "on_bad_row: quarantine",
            with: """
                on_bad_row: quarantine, columns: { day: { format: "%m/%d/%Y" }, ts: { from: ts, format: "%m/%d/%Y %I:%M %p", timezone: America/New_York } }
                """)
        let run = try await project.run("merge_events", yaml: yaml)
        #expect(run.state == .succeeded)
        // New York is UTC-4 in September and UTC-5 in December.
        #expect(
            try await project.rows("SELECT event_id, ts, day FROM events ORDER BY event_id") == [
                ["e1", "2024-09-09T17:05:00.000000Z", "2024-09-09"], ["e2", "2025-01-01T04:59:00.000000Z", "2024-12-31"],
            ])
        let quarantined = try await project.store.quarantined(of: run.id)
        #expect(
            quarantined.map(\.reason) == [
                "column ts: '13/1/2024 1:00 AM' does not match the format '%m/%d/%Y %I:%M %p' declared for this TIMESTAMP column"
            ])
    }

    @Test(arguments: Backend.all) func aBadRowUnderFailStopsTheRunAndPublishesNothing(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,lots\n")
        let yaml = PipelineProject.mergePipeline().replacingOccurrences(of: "on_bad_row: quarantine", with: "on_bad_row: fail")
        let run = try await project.run("merge_events", yaml: yaml)
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
        #expect(step?.errorCode == "bad_row")
        #expect(step?.reason == "data/events.csv:2:41: column amount: 'lots' is not a NUMERIC")
        #expect(try await project.tableExists("events") == false)
    }

    @Test(arguments: Backend.all) func nullKeysAreRefusedWithACountNotMergedSilently(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("schemas/loose_raw.json", #"[{"name": "event_id", "type": "STRING"}, {"name": "amount", "type": "NUMERIC"}]"#)
        try project.write("data/loose.csv", "event_id,amount\na,1\n,2\n,3\n")
        let run = try await project.run(
            "loose",
            yaml: """
                pipeline: loose
                defaults: { timeout: 1m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/loose.csv }, table: loose_raw, schema: schemas/loose_raw.json } }
                  - { id: merge, uses: merge_dedupe, with: { from: loose_raw, into: loose, key: [event_id], strategy: first_wins } }
                """)
        #expect(run.state == .failed)
        #expect(run.reason == "step 'merge' failed: 2 of 3 rows of 'loose_raw' have a null key (event_id); nothing was merged")
    }

    @Test func aMissingInputFileNamesTheFileAndPlace() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(file: "data/nope.csv"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
        #expect(step?.errorCode == "missing_input")
        #expect(step?.reason.hasSuffix("input file 'data/nope.csv' does not exist") == true)
        #expect(step?.reason.hasPrefix("pipelines/merge_events.yml:") == true)
    }

    @Test(arguments: Backend.all) func aProcedureWritesThroughStagingAndPublishesWithTheRun(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "schemas/day_totals.json", #"[{"name": "day", "type": "DATE"}, {"name": "total", "type": "FLOAT64"}, {"name": "note", "type": "STRING"}]"#
        )
        try project.write(
            "procedures/totals.sql",
            """
            -- One day's total; the day is a bound parameter, never spliced.
            DELETE FROM day_totals WHERE day = :day;
            INSERT INTO day_totals (day, total, note)
            SELECT day, sum(amount), :note FROM events WHERE day = :day GROUP BY day;
            """)
        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\ne2,2026-03-02T10:00:00Z,2026-03-02,acme,7\n")
        func pipeline(failAfter: Bool) -> String {
            """
            pipeline: totals
            defaults: { timeout: 1m }
            params: { day: { type: date, required: true } }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
              - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
              - { id: totals, uses: sql, needs: [merge], with: { procedure: procedures/totals.sql, params: { day: "${{ params.day }}", note: "it's; DROP TABLE events" } } }
              - { id: check, uses: validate_data, needs: [totals], with: { table: day_totals, checks: [{ type: row_count, max: \(failAfter ? 0 : 10) }] } }
            """
        }
        let first = try await project.run("totals", yaml: pipeline(failAfter: false), params: ["day": "2026-03-01"])
        #expect(first.state == .succeeded, "\(first.reason)")
        #expect(try await project.outputs(first, "totals")["rows_affected"] == .number(1))
        let second = try await project.run("totals", yaml: pipeline(failAfter: false), params: ["day": "2026-03-02"])
        #expect(second.state == .succeeded)
        let expected = [["2026-03-01", "5.0", "it's; DROP TABLE events"], ["2026-03-02", "7.0", "it's; DROP TABLE events"]]
        #expect(try await project.rows("SELECT day, CAST(total AS DOUBLE PRECISION), note FROM day_totals ORDER BY day") == expected)
        // A failure after the procedure leaves its table untouched.
        let failed = try await project.run("totals", yaml: pipeline(failAfter: true), params: ["day": "2026-03-01"])
        #expect(failed.state == .failed)
        #expect(try await project.rows("SELECT day, CAST(total AS DOUBLE PRECISION), note FROM day_totals ORDER BY day") == expected)
        #expect(try await project.tableExists("events"))
    }

    @Test(arguments: Backend.all) func aFractionOfASecondLaterStillWins(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        // Without a fixed-width fraction, '...:05.25Z' would sort before '...:05Z' as text.
        try project.write(
            "data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:05.25Z,2026-03-01,acme,2\ne1,2026-03-01T10:00:05Z,2026-03-01,acme,1\n"
        )
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(try await project.rows("SELECT CAST(amount AS DOUBLE PRECISION), ts FROM events") == [["2.0", "2026-03-01T10:00:05.250000Z"]])
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:05Z,2026-03-01,acme,3\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(try await project.rows("SELECT CAST(amount AS DOUBLE PRECISION) FROM events") == [["2.0"]])
    }

    static let header = Data("event_id,ts,day,org,amount\n".utf8)

    /// Input that can't be read at all fails the ingest step with the file, line and column,
    /// and the run publishes nothing.
    @Test(arguments: [
        (
            "unterminated quote", header + Data("e1,2026-03-01T10:00:00Z,2026-03-01,acme,5\ne2,\"2026-03-01".utf8),
            "unterminated_quote", "data/events.csv:3:4: "
        ),
        ("empty file", Data(), "empty_input", "data/events.csv:1:1: "),
        (
            "invalid UTF-8", header + Data("e1,2026-03-01T10:00:00Z,2026-03-01,ac".utf8) + Data([0xFF]) + Data("me,5\n".utf8),
            "invalid_utf8", "data/events.csv:2:38: "
        ),
    ])
    func unreadableInputFailsWithItsPlace(_ name: String, _ data: Data, _ code: String, _ place: String) async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try data.write(to: project.root.appendingPathComponent("data/events.csv"))
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
        #expect(step?.errorCode == code, "\(name): \(step?.reason ?? "")")
        #expect(step?.reason.hasPrefix(place) == true, "\(name): \(step?.reason ?? "")")
        #expect(try await project.tableExists("events") == false)
    }

    @Test func aHeaderWithoutARequiredColumnFailsBeforeAnyRow() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,org,amount\ne1,2026-03-01T10:00:00Z,acme,5\n")
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
        #expect(step?.errorCode == "missing_column")
        #expect(step?.reason.contains("day") == true)
    }

    @Test(arguments: Backend.all) func aTruncatedLastLineIsABadRowNotACrash(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\ne2,2026-03-01T1")
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(maxBadRows: "1"))
        #expect(run.state == .succeeded)
        let quarantined = try await project.store.quarantined(of: run.id)
        #expect(quarantined.map(\.line) == [3])
        #expect(quarantined.first?.raw == "e2,2026-03-01T1")
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }

    @Test(arguments: Backend.all) func aResumedRunReusesWhatSucceededAndRunsTheRest(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let yaml = """
            pipeline: two_loads
            defaults: { timeout: 1m }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
              - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
              - { id: load_rates, uses: ingest, needs: [merge], with: { source: { format: csv, path: data/late_rates.csv }, table: rates_raw, schema: schemas/rates_raw.json } }
              - { id: rates, uses: merge_dedupe, with: { from: rates_raw, into: rates, key: [org], strategy: first_wins, lineage: false } }
            """
        let failed = try await project.run("two_loads", yaml: yaml)
        #expect(failed.state == .failed)
        #expect(try await project.tableExists("events") == false)

        // The late file arrives; the events input changes, which a reused step must not see.
        try project.write("data/late_rates.csv", "org,rate\nacme,3\n")
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne9,2026-03-01T10:00:00Z,2026-03-01,acme,9\n")
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/two_loads.yml")
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let resumed = try await executor.resume(try #require(plan), runID: failed.id, env: [:])
        #expect(resumed.state == .succeeded, "\(resumed.reason)")
        #expect(resumed.resumeOf == failed.id)
        let steps = Dictionary(uniqueKeysWithValues: try await project.store.steps(of: resumed.id).map { ($0.stepID, $0) })
        #expect(steps["load"]?.reason == "reused from run \(failed.id)")
        #expect(steps["merge"]?.reason == "reused from run \(failed.id)")
        #expect(steps["load_rates"]?.state == .succeeded && steps["load_rates"]?.attempt == 1)
        #expect(steps["merge"]?.outputs["rows_inserted"] == .number(1))
        // The staged events from the first run were published, not the new file's.
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
        #expect(try await project.rows("SELECT org, rate FROM rates") == [["acme", "3.0"]])
        // Resuming the same failed run again is refused: the two would share its staging.
        let again = await #expect(throws: StepFailure.self) { try await executor.resume(try #require(plan), runID: failed.id, env: [:]) }
        #expect(again?.code == "not_resumable")
        #expect(again?.message.contains("was resumed already, as run '\(resumed.id)' (succeeded)") == true, "\(String(describing: again))")
        // Resuming a run that succeeded is refused.
        await #expect(throws: StepFailure.self) { try await executor.resume(try #require(plan), runID: resumed.id, env: [:]) }
    }

    @Test(arguments: Backend.all) func aRunMarkedAbandonedByAnotherProcessStopsWithoutPublishingDiscardingOrRecording(_ backend: Backend) async throws
    {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let plan = try project.slowPlan(wait: "15m")
        var options = ExecutorOptions()
        options.heartbeatInterval = .milliseconds(50)
        let executor = Executor(
            processors: PipelineProject.slowCatalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), options: options, logger: quietLogger)
        let execution = Task { try await executor.start(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:])) }

        // While it sleeps, another process's watchdog finds it (as if this one had been suspended).
        let id = try await project.slowRunSleeping()
        let marked = try await project.store.abandonRuns(heartbeatBefore: Date().addingTimeInterval(60), reason: "no heartbeat for 30s", at: Date())
        #expect(marked.map(\.id) == [id])

        // It stops within a few heartbeats, not after its 15 min step.
        let deadline = Task {
            try await Task.sleep(for: TestTime.patience)
            execution.cancel()
            return true
        }
        _ = try? await execution.value
        deadline.cancel()
        #expect((try? await deadline.value) != true, "the run went on after it was marked abandoned")
        let run = try #require(try await project.store.run(id))
        #expect(run.state == .failed)
        #expect(run.reason == "abandoned: no heartbeat for 30s", "nothing recorded over the watchdog's state")
        #expect(try await project.tableExists("events") == false, "nothing published")
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: id), "the staging is kept for a resume")
    }

    @Test(arguments: Backend.all) func aCancelledRunsResumeRunsEveryStepAgainAndRecordsWhoCancelled(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let executor = Executor(
            processors: PipelineProject.slowCatalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let note = CancellationNote()
        let slow = try project.slowPlan(wait: "15m")
        let execution = Task {
            try await executor.start(slow, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:]), cancellation: note)
        }
        let runID = try await project.slowRunSleeping()
        note.set("cancelled by a test")
        execution.cancel()
        let cancelled = try await execution.value
        #expect(cancelled.id == runID)
        #expect(cancelled.state == .cancelled)
        #expect(cancelled.reason == "cancelled by a test")

        // Its staging went with the cancel, so nothing is reused: every step runs again.
        let resumed = try await executor.resume(try project.slowPlan(wait: "1ms"), runID: cancelled.id, env: [:])
        #expect(resumed.state == .succeeded, "\(resumed.reason)")
        let steps = try await project.store.steps(of: resumed.id)
        #expect(steps.allSatisfy { $0.attempt == 1 && $0.state == .succeeded }, "\(steps.map { "\($0.stepID) \($0.attempt) \($0.reason)" })")
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }

    @Test func aPublishThatCannotGetTheDatabaseRollsBackAndFailsTheRun() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        let before = try await project.rows("SELECT * FROM events")

        // Another writer holds the org's database past the busy timeout while the run publishes.
        let blocker = try DatabaseQueue(path: try project.sqlite.warehousePath(org: "acme"))
        let locked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            do {
                try blocker.inTransaction(.exclusive) { _ in
                    locked.signal()
                    // Held until the run below has ended (or, should the test fail first, for
                    // longer than any test waits).
                    _ = release.wait(timeout: .now() + .seconds(Int(TestTime.patience.components.seconds)))
                    return .rollback
                }
            } catch {
                locked.signal()  // the expectations below then fail rather than wait for ever
            }
        }
        // Waited for on a thread of its own, not on one that runs the other tests.
        try await onItsOwnThread { locked.wait() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-02T10:00:00Z,2026-03-01,acme,7\n")
        try project.write("pipelines/merge_events.yml", PipelineProject.mergePipeline())
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/merge_events.yml")
        let executor = Executor(
            processors: .standard, store: project.store,
            warehouse: SQLiteWarehouse(root: project.root.appendingPathComponent(".sluice"), busyTimeout: .milliseconds(300)),
            project: ProjectContext(root: project.root), logger: quietLogger)
        let run = try await executor.start(try #require(plan), .init(org: "acme", logicalDate: "2026-03-02", env: [:]))
        release.signal()

        #expect(run.state == .failed)
        #expect(run.reason.hasPrefix("publishing failed, nothing was changed:"))
        #expect(run.reason.contains("locked"), "\(run.reason)")
        #expect(try await project.rows("SELECT * FROM events") == before)
    }

    @Test func aPublishThatRunsOutOfSpaceRollsBackAndFailsTheRun() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        let before = try await project.rows("SELECT * FROM events")
        let size = try FileManager.default.attributesOfItem(atPath: try project.sqlite.warehousePath(org: "acme"))[.size] as? Int ?? 0

        // 20,000 new rows cannot fit in the few pages the org may grow by.
        var csv = "event_id,ts,day,org,amount\n"
        for index in 0..<20_000 { csv += "n\(index),2026-03-02T10:00:00Z,2026-03-02,acme,1\n" }
        try project.write("data/events.csv", csv)
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/merge_events.yml")
        let executor = Executor(
            processors: .standard, store: project.store,
            warehouse: SQLiteWarehouse(root: project.root.appendingPathComponent(".sluice"), maxBytesPerOrg: size + 64 * 1024),
            project: ProjectContext(root: project.root), logger: quietLogger)
        let run = try await executor.start(try #require(plan), .init(org: "acme", logicalDate: "2026-03-02", env: [:]))
        #expect(run.state == .failed)
        #expect(run.reason.hasPrefix("publishing failed, nothing was changed:"))
        #expect(run.reason.contains("full"), "\(run.reason)")
        #expect(try await project.rows("SELECT * FROM events") == before)
    }
}
