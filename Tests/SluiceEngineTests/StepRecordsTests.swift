import Foundation
import GRDB
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// What steps keep with their run goes through one port and one table, whatever the processor.
struct StepRecordsTests {
    func store() throws -> (SQLiteRunStore, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-records-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return (try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path), folder)
    }

    func run(in store: SQLiteRunStore) async throws -> RunRecord {
        let record = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli)
        return try await store.createRun(record, steps: [StepRunRecord(runID: record.id, stepID: "check", processor: "validate_data")]).run
    }

    func result(_ run: RunRecord, _ name: String, passed: Bool) -> CheckResult {
        CheckResult(runID: run.id, stepID: "check", name: name, table: "events", passed: passed, severity: "error", observed: passed ? "0" : "3")
    }

    @Test func aKeyedRecordReplacesItsEarlierOneInPlaceAndUnkeyedOnesAdd() async throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try await run(in: store)
        let recorder = StepRecorder(store: store, runID: run.id, stepID: "check")
        try await recorder.keep([result(run, "a", passed: false), result(run, "b", passed: true)], as: .checkResults)
        // A second attempt of the step: `a` now passes, `c` is new.
        try await recorder.keep([result(run, "a", passed: true), result(run, "c", passed: true)], as: .checkResults)
        #expect(try await store.checkResults(of: run.id).map { "\($0.name):\($0.passed)" } == ["a:true", "b:true", "c:true"])

        let row = QuarantinedRow(runID: run.id, stepID: "check", file: "data/x.csv", line: 3, column: 2, reason: "not a number", raw: "x,y")
        try await recorder.keep([row], as: .quarantinedRows)
        try await recorder.keep([row], as: .quarantinedRows)
        #expect(try await store.quarantined(of: run.id) == [row, row])
        #expect(try await store.checkResults(of: run.id).count == 3, "kinds are kept apart")
    }

    /// A run store written by an earlier version keeps its data test results and quarantined
    /// rows: the migration moves them into the step records, in their order.
    @Test func resultsStoredBeforeTheUpgradeReadTheSameAfterIt() async throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try await run(in: store)
        let path = folder.appendingPathComponent("runs.sqlite").path
        // Put the file back as the previous version left it: the two old tables, with rows.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    DROP TABLE step_record;
                    DELETE FROM grdb_migrations WHERE identifier = 'v8: step records';
                    CREATE TABLE check_result (run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE, step_id TEXT NOT NULL,
                        name TEXT NOT NULL, table_name TEXT NOT NULL, passed INTEGER NOT NULL, severity TEXT NOT NULL,
                        observed TEXT NOT NULL, PRIMARY KEY (run_id, step_id, name));
                    CREATE TABLE quarantined_row (run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE, step_id TEXT NOT NULL,
                        file TEXT NOT NULL, line INTEGER NOT NULL, column_number INTEGER NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL);
                    """)
            try db.execute(
                sql:
                    "INSERT INTO check_result VALUES (?, 'check', 'rows', 'events', 0, 'warn', '0 rows'), (?, 'check', 'fresh', 'events', 1, 'error', '2026-03-01')",
                arguments: [run.id, run.id])
            try db.execute(
                sql:
                    "INSERT INTO quarantined_row VALUES (?, 'load', 'data/a.csv', 7, 3, 'not a date', 'a,\"b\",ü'), (?, 'load', 'data/a.csv', 9, 1, 'empty', '')",
                arguments: [run.id, run.id])
        }
        try queue.close()

        let upgraded = try SQLiteRunStore(path: path)
        #expect(
            try await upgraded.checkResults(of: run.id) == [
                CheckResult(runID: run.id, stepID: "check", name: "rows", table: "events", passed: false, severity: "warn", observed: "0 rows"),
                CheckResult(runID: run.id, stepID: "check", name: "fresh", table: "events", passed: true, severity: "error", observed: "2026-03-01"),
            ])
        #expect(
            try await upgraded.quarantined(of: run.id) == [
                QuarantinedRow(runID: run.id, stepID: "load", file: "data/a.csv", line: 7, column: 3, reason: "not a date", raw: "a,\"b\",ü"),
                QuarantinedRow(runID: run.id, stepID: "load", file: "data/a.csv", line: 9, column: 1, reason: "empty", raw: ""),
            ])
        // Keyed as before: the check named `rows` saved again replaces the migrated one.
        try await StepRecorder(store: upgraded, runID: run.id, stepID: "check").keep([result(run, "rows", passed: true)], as: .checkResults)
        #expect(try await upgraded.checkResults(of: run.id).map { "\($0.name):\($0.passed)" } == ["rows:true", "fresh:true"])
    }

    /// A step gets the services its spec declares and no others, even when the run has them.
    @Test func aStepReachesOnlyTheServicesItsSpecDeclares() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let probe = ServiceProbe()
        let declared = ServiceProbe(name: "test_probe_declared", capabilities: [.warehouse, .stepRecords, .credentials])
        let processors = ProcessorEnvironment.standard.adding([probe, declared])
        let yaml = """
            pipeline: probes
            defaults: { timeout: 1m }
            steps:
              - { id: bare, uses: test_probe }
              - { id: full, uses: test_probe_declared }
            """
        try project.write("pipelines/probes.yml", yaml)
        let loaded = PipelineLoader(registry: processors.registry).load(Data(yaml.utf8), file: "pipelines/probes.yml")
        let plan = try PipelinePlan.build(try #require(loaded.definition, "\(loaded.diagnostics)")).get()
        let executor = Executor(
            processors: processors, store: project.store, warehouse: project.warehouse, project: ProjectContext(root: project.root),
            logger: quietLogger)
        let run = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:]))
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(try await project.outputs(run, "bare")["services"] == .string(""))
        #expect(try await project.outputs(run, "full")["services"] == .string("credentials records warehouse"))
    }
}

/// Says which services it was handed.
struct ServiceProbe: Processor {
    var name = "test_probe"
    var capabilities: Set<ProcessorSpec.Capability> = []

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: name, summary: "s", description: "d", fields: [], outputs: [OutputSpec("services", "string", "x")], example: "",
            capabilities: capabilities)
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        var handed: [String] = []
        if (try? step.requireWorkspace()) != nil { handed.append("warehouse") }
        if (try? step.requireRecords()) != nil { handed.append("records") }
        if (try? step.requireSecrets()) != nil { handed.append("credentials") }
        return ["services": .string(handed.sorted().joined(separator: " "))]
    }
}
