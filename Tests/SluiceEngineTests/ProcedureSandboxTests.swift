import Foundation
import SluiceModel
import SluicePostgres
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// Procedures run sandboxed at run time, whatever lint saw: a server runs the files as they
/// are when the run starts, so these plans are built without lint's procedure checks.
struct ProcedureSandboxTests {
    /// A project on `backend` whose org acme has published `events` (one row, e1).
    func publishedEvents(on backend: Backend) async throws -> PipelineProject {
        let project = try await PipelineProject(backend)
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let first = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(first.state == .succeeded, "\(first.reason)")
        return project
    }

    /// Runs a `sql` step with `procedure` (and `kind` as its processor: sql, aggregate, validate_data).
    func runProcedure(
        _ project: PipelineProject, _ sql: String, step: String = "{ id: work, uses: sql, with: { procedure: procedures/p.sql } }"
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

    @Test(arguments: Backend.all) func aProcedureCannotWriteThePublishedTablesDirectly(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        let (run, step) = try await runProcedure(project, "-- empties the published table\nDELETE FROM main.events;\n")
        #expect(run.state == .failed)
        #expect(step.errorCode == "procedure_refused")
        #expect(step.reason.hasPrefix("procedures/p.sql:2:1: procedures run sandboxed"), "\(step.reason)")
        #expect(step.reason.contains("published table events"), "\(step.reason)")
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]], "nothing was deleted")
    }

    @Test(arguments: Backend.all) func aProcedureCannotReadAnotherOrgsWarehouse(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        // globex has a warehouse of its own (SQLite: a file; PostgreSQL: a schema).
        let globex = try await project.warehouse.workspace(org: "globex", runID: "r_globex")
        let staged = try await globex.stage("secrets_of_globex", columns: [ColumnDefinition("v", .string)], change: .replace)
        try await globex.insert(into: staged, columns: ["v"], rows: [[.text("GLOBEX-SECRET")]])
        _ = try await globex.publish()
        switch backend {
        case .sqlite:
            let path = try project.sqlite.warehousePath(org: "globex")
            let (run, step) = try await runProcedure(
                project, "ATTACH DATABASE '\(path)' AS other;\nCREATE TEMP TABLE stolen AS SELECT * FROM other.secrets_of_globex;\n")
            #expect(run.state == .failed)
            #expect(step.errorCode == "procedure_refused")
            #expect(step.reason.contains("may not ATTACH"), "\(step.reason)")
        case .postgres:
            let schema = PostgresWarehouse.orgSchema("globex", prefix: try #require(project.warehouse as? PostgresWarehouse).schemaPrefix)
            let theft =
                "CREATE TEMP TABLE stolen AS SELECT * FROM \(schema).secrets_of_globex;\nINSERT INTO events (event_id) SELECT v FROM stolen;\n"
            // Through a run: the check the sql step asks first knows no such table.
            let (run, step) = try await runProcedure(project, theft)
            #expect(run.state == .failed)
            #expect(step.errorCode == "invalid_procedure", "\(step.reason)")
            #expect(!step.reason.contains("GLOBEX-SECRET"))
            // The warehouse itself, asked directly: acme's role may not read globex's schema.
            let workspace = try await project.warehouse.workspace(org: "acme", runID: "r_theft", targets: ["events"], existing: false)
            await #expect {
                try await workspace.runScript(theft, named: [:], writes: [(table: "events", columns: [])], step: "work")
            } throws: { error in
                (error as? StepFailure)?.code == "procedure_refused" && !"\(error)".contains("GLOBEX-SECRET")
            }
            try await workspace.discard()
        }
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }

    @Test(arguments: Backend.all) func pragmasThatChangeSettingsAndTransactionsAreRefused(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        for sql in [
            "PRAGMA writable_schema = ON;", "PRAGMA main.journal_mode = DELETE;", "COMMIT;", "CREATE TABLE kept (x INTEGER);",
            "CREATE TEMP TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM main.events; END;",
        ] {
            let (run, step) = try await runProcedure(project, sql)
            #expect(run.state == .failed, "\(sql)")
            #expect(step.errorCode == "procedure_refused", "\(sql): \(step.reason)")
        }
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
        #expect(try await project.tableExists("kept") == false)
    }

    @Test(arguments: Backend.all) func whatAProcedureMayDoStillWorks(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        try project.write("schemas/totals.json", #"[{"name": "day", "type": "DATE"}, {"name": "total", "type": "NUMERIC"}]"#)
        let (run, step) = try await runProcedure(
            project,
            """
            CREATE TEMP TABLE scratch AS SELECT day, sum(amount) AS total FROM events GROUP BY day;
            \(backend == .sqlite ? "SELECT name FROM pragma_table_info('events');" : "SELECT count(*) FROM scratch;")
            INSERT INTO totals (day, total) SELECT day, total FROM scratch;
            """)
        #expect(run.state == .succeeded, "\(step.reason)")
        #expect(try await project.rows("SELECT day, total FROM totals") == [["2026-03-01", "5"]])
    }

    @Test(arguments: Backend.all) func anAggregatesOrADataTestsProcedureRunsSandboxedToo(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        let steps = [
            "{ id: work, uses: aggregate, with: { procedure: procedures/p.sql, into: counts } }",
            "{ id: work, uses: validate_data, with: { table: events, checks: [{ type: sql, procedure: procedures/p.sql }] } }",
        ]
        // A function that reaches the server's files (SQLite: loads a library; PostgreSQL: reads one).
        let function = backend == .sqlite ? "load_extension" : "pg_read_file"
        for step in steps {
            let (run, work) = try await runProcedure(
                project,
                "SELECT day, count(*) AS n FROM events WHERE \(function)('/tmp/x') IS NULL GROUP BY day",
                step: step)
            #expect(run.state == .failed)
            #expect(work.errorCode == "procedure_refused", "\(work.reason)")
            #expect(work.reason.contains("procedure procedures/p.sql: procedures run sandboxed"), "\(work.reason)")
            #expect(work.reason.contains("may not call \(function)()"), "\(work.reason)")
        }
    }

    @Test(arguments: Backend.all) func aDataTestsQueryCanNotCloseItsWrapperAndCopyTheWarehouseOut(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        // The check is wrapped as SELECT count(*) FROM (<file>): a file that closes the
        // parenthesis would run statements of its own, VACUUM INTO among them (found by a
        // hostile test of this session's first fix, which copied the warehouse to /tmp).
        let copy = project.root.appendingPathComponent("copy.sqlite").path
        let (run, step) = try await runProcedure(
            project,
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
            (error as? StepFailure)?.code == "procedure_refused"
                && "\(error)".contains(backend == .sqlite ? "may not VACUUM" : "may not use VACUUM")
        }
        try await workspace.discard()
        #expect(!FileManager.default.fileExists(atPath: copy))
    }

    @Test(arguments: Backend.all) func theWarehouseRefusesAScriptThatLintNeverSaw(_ backend: Backend) async throws {
        let project = try await publishedEvents(on: backend)
        defer { project.remove() }
        // The workspace itself enforces the rules, whoever calls it. (The published table by
        // its full name: SQLite's `main`, the org's schema on PostgreSQL.)
        let published =
            backend == .sqlite
            ? "main.events"
            : PostgresWarehouse.orgSchema("acme", prefix: try #require(project.warehouse as? PostgresWarehouse).schemaPrefix) + ".events"
        let workspace = try await project.warehouse.workspace(org: "acme", runID: "r_direct", targets: ["events"], existing: false)
        await #expect {
            try await workspace.runScript(
                "DELETE FROM events;\nDELETE FROM \(published);", named: [:],
                writes: [(table: "events", columns: [])], step: "work")
        } throws: { error in
            guard let failure = error as? StepFailure else { return false }
            return failure.code == "procedure_refused" && failure.location?.line == 2 && failure.location?.column == 1
        }
        await #expect(throws: StepFailure.self) {
            _ = try await workspace.queryProcedure("SELECT 1; DELETE FROM \(published)", [])
        }
        try await workspace.discard()
        #expect(try await project.rows("SELECT event_id FROM events") == [["e1"]])
    }
}
