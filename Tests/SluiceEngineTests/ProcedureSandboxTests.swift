import Foundation
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import Testing

@testable import SluiceEngine

/// Procedures run sandboxed at run time, whatever lint saw: a server runs the files as they
/// are when the run starts, so these plans are built without lint's procedure checks.
struct ProcedureSandboxTests {
    let project: PipelineProject

    init() async throws {
        project = try PipelineProject()
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let first = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(first.state == .succeeded)
    }

    /// Runs a `sql` step with `procedure` (and `kind` as its processor: sql, aggregate, validate_data).
    func runProcedure(
        _ sql: String, step: String = "{ id: work, uses: sql, with: { procedure: procedures/p.sql } }"
    ) async throws
        -> (RunRecord, StepRunRecord)
    {
        try project.write("procedures/p.sql", sql)
        let loaded = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(
            Data(
                """
                pipeline: sandboxed
                defaults: { timeout: 1m }
                steps:
                  - \(step)
                """.utf8), file: "pipelines/sandboxed.yml")
        let plan = try PipelinePlan.build(try #require(loaded.definition)).get()
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let run = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:]))
        let work = try #require(try await project.store.steps(of: run.id).first)
        return (run, work)
    }

    @Test func aProcedureCannotWriteThePublishedTablesDirectly() async throws {
        defer { project.remove() }
        let (run, step) = try await runProcedure("-- empties the published table\nDELETE FROM main.events;\n")
        #expect(run.state == .failed)
        #expect(step.errorCode == "procedure_refused")
        #expect(step.reason.hasPrefix("procedures/p.sql:2:1: procedures run sandboxed"), "\(step.reason)")
        #expect(step.reason.contains("published table events"), "\(step.reason)")
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]], "nothing was deleted")
    }

    @Test func aProcedureCannotAttachAnotherOrgsWarehouse() async throws {
        defer { project.remove() }
        // globex has a warehouse of its own.
        let globex = try await project.warehouse.workspace(org: "globex", runID: "r_globex")
        _ = try await globex.stage("secrets_of_globex", columns: [ColumnDefinition("v", .string)], change: .replace)
        try await globex.publish()
        let path = try project.warehouse.warehousePath(org: "globex")
        let (run, step) = try await runProcedure(
            "ATTACH DATABASE '\(path)' AS other;\nCREATE TEMP TABLE stolen AS SELECT * FROM other.secrets_of_globex;\n")
        #expect(run.state == .failed)
        #expect(step.errorCode == "procedure_refused")
        #expect(step.reason.contains("may not ATTACH"), "\(step.reason)")
    }

    @Test func pragmasThatChangeSettingsAndTransactionsAreRefused() async throws {
        defer { project.remove() }
        for sql in [
            "PRAGMA writable_schema = ON;", "PRAGMA main.journal_mode = DELETE;", "COMMIT;", "CREATE TABLE kept (x INTEGER);",
            "CREATE TEMP TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM main.events; END;",
        ] {
            let (run, step) = try await runProcedure(sql)
            #expect(run.state == .failed, "\(sql)")
            #expect(step.errorCode == "procedure_refused", "\(sql): \(step.reason)")
        }
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
        #expect(try await project.tableExists("kept") == false)
    }

    @Test func whatAProcedureMayDoStillWorks() async throws {
        defer { project.remove() }
        try project.write("schemas/totals.json", #"[{"name": "day", "type": "DATE"}, {"name": "total", "type": "NUMERIC"}]"#)
        let (run, step) = try await runProcedure(
            """
            CREATE TEMP TABLE scratch AS SELECT day, sum(amount) AS total FROM events GROUP BY day;
            SELECT name FROM pragma_table_info('events');
            INSERT INTO totals (day, total) SELECT day, total FROM scratch;
            """)
        #expect(run.state == .succeeded, "\(step.reason)")
        #expect(try await project.rows("SELECT day, total FROM totals") == [["2026-03-01", "5"]])
    }

    @Test func anAggregatesOrADataTestsProcedureRunsSandboxedToo() async throws {
        defer { project.remove() }
        let steps = [
            "{ id: work, uses: aggregate, with: { procedure: procedures/p.sql, into: counts } }",
            "{ id: work, uses: validate_data, with: { table: events, checks: [{ type: sql, procedure: procedures/p.sql }] } }",
        ]
        for step in steps {
            let (run, work) = try await runProcedure(
                "SELECT day, count(*) AS n FROM events WHERE load_extension('/tmp/x') IS NULL GROUP BY day",
                step: step)
            #expect(run.state == .failed)
            #expect(work.errorCode == "procedure_refused", "\(work.reason)")
            #expect(work.reason.contains("procedure procedures/p.sql: procedures run sandboxed"), "\(work.reason)")
            #expect(work.reason.contains("may not call load_extension()"), "\(work.reason)")
        }
    }

    @Test func aDataTestsQueryCanNotCloseItsWrapperAndCopyTheWarehouseOut() async throws {
        defer { project.remove() }
        // The check is wrapped as SELECT count(*) FROM (<file>): a file that closes the
        // parenthesis would run statements of its own, VACUUM INTO among them (found by a
        // hostile test of this session's first fix, which copied the warehouse to /tmp).
        let copy = project.root.appendingPathComponent("copy.sqlite").path
        let (run, step) = try await runProcedure(
            """
            SELECT 1 WHERE 0) AS x;
            VACUUM main INTO '\(copy)';
            SELECT count(*) FROM (SELECT 1 WHERE 0
            """, step: "{ id: work, uses: validate_data, with: { table: events, checks: [{ type: sql, procedure: procedures/p.sql }] } }")
        #expect(run.state == .failed)
        #expect(step.errorCode == "procedure_refused", "\(step.reason)")
        #expect(step.reason.contains("a query procedure is one statement"), "\(step.reason)")
        #expect(!FileManager.default.fileExists(atPath: copy))

        // In a script, VACUUM is refused for what it is, whether or not lint saw it.
        let workspace = try await project.warehouse.workspace(org: "acme", runID: "r_vacuum", targets: [], existing: false)
        await #expect {
            try await workspace.runScript("VACUUM main INTO '\(copy)'", named: [:], writes: [], step: "work")
        } throws: { error in
            (error as? StepFailure)?.code == "procedure_refused" && "\(error)".contains("may not VACUUM")
        }
        try await workspace.discard()
        #expect(!FileManager.default.fileExists(atPath: copy))
    }

    @Test func theWarehouseRefusesAScriptThatLintNeverSaw() async throws {
        defer { project.remove() }
        // The workspace itself enforces the rules, whoever calls it.
        let workspace = try await project.warehouse.workspace(org: "acme", runID: "r_direct", targets: ["events"], existing: false)
        await #expect {
            try await workspace.runScript(
                "DELETE FROM events;\nDELETE FROM main.events;", named: [:],
                writes: [(table: "events", columns: [])], step: "work")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.code == "procedure_refused" && failure.location?.line == 2 && failure.location?.column == 1
        }
        await #expect(throws: StepFailure.self) {
            _ = try await workspace.queryProcedure("SELECT 1; DELETE FROM main.events", [])
        }
        try await workspace.discard()
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }
}
