import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceStorage
import SluiceTestSupport
import Testing

/// Each run records the version of its pipeline (the hashes of its pipeline file, schemas and
/// procedures) and its plan; a resume after the definition changed is refused, naming what
/// changed, unless forced.
struct PipelineVersionTests {
    static let twoLoads = """
        pipeline: two_loads
        defaults: { timeout: 1m }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
          - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
          - { id: load_rates, uses: ingest, needs: [merge], with: { source: { format: csv, path: data/late_rates.csv }, table: rates_raw, schema: schemas/rates_raw.json } }
          - { id: rates, uses: merge_dedupe, with: { from: rates_raw, into: rates, key: [org], strategy: first_wins, lineage: false } }
        """

    /// The pipeline's plan and version as its files are now.
    static func planned(_ project: PipelineProject, _ file: String = "pipelines/two_loads.yml") throws -> (PipelinePlan, PipelineVersion) {
        let (plan, diagnostics) = ProcessorEnvironment.standard.plan(file: file, projectRoot: project.root)
        let linted = LintedPipeline(id: "two_loads", file: file, plan: plan, diagnostics: diagnostics)
        return (try #require(plan, "\(diagnostics)"), try #require(linted.currentVersion(projectRoot: project.root)))
    }

    @Test func aVersionHashesThePipelineFileTheSchemasOfItsTablesAndItsProcedures() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("schemas/unrelated.json", #"[{"name": "x", "type": "STRING"}]"#)
        try project.write("procedures/totals.sql", "INSERT INTO totals SELECT org, sum(amount) AS total FROM events GROUP BY org")
        try project.write("schemas/totals.json", #"[{"name": "org", "type": "STRING"}, {"name": "total", "type": "NUMERIC"}]"#)
        try project.write(
            "pipelines/two_loads.yml",
            Self.twoLoads + "\n  - { id: totals, uses: sql, needs: [merge], with: { procedure: procedures/totals.sql } }\n")
        let (_, version) = try Self.planned(project)
        #expect(
            version.files.keys.sorted() == [
                "pipelines/two_loads.yml", "procedures/totals.sql", "schemas/events.json", "schemas/events_raw.json", "schemas/rates.json",
                "schemas/rates_raw.json", "schemas/totals.json",
            ], "not schemas/unrelated.json, which no step reads or writes")
        #expect(version.hash.count == 64 && version.short == String(version.hash.prefix(12)))
        #expect(try Self.planned(project).1 == version, "the same files, the same version")

        try project.write("schemas/unrelated.json", #"[{"name": "y", "type": "STRING"}]"#)
        #expect(try Self.planned(project).1 == version, "a file the pipeline does not use changes nothing")
        try project.write("procedures/totals.sql", "INSERT INTO totals SELECT org, sum(amount) + 0 AS total FROM events GROUP BY org")
        let changed = try Self.planned(project).1
        #expect(changed.hash != version.hash)
        #expect(changed.changes(since: version).map(\.description) == ["procedures/totals.sql changed"])
        try project.write("pipelines/two_loads.yml", Self.twoLoads)
        let fewer = try Self.planned(project).1
        #expect(
            fewer.changes(since: changed).map(\.description) == [
                "pipelines/two_loads.yml changed", "procedures/totals.sql removed", "schemas/totals.json removed",
            ])
        #expect(
            changed.changes(since: fewer).map(\.description) == [
                "pipelines/two_loads.yml changed", "procedures/totals.sql added", "schemas/totals.json added",
            ])
    }

    @Test(arguments: Backend.all) func aResumeAfterThePipelineFileChangedIsRefusedNamingItAndForcedRunsTheNewOne(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        try project.write("pipelines/two_loads.yml", Self.twoLoads)
        let (plan, version) = try Self.planned(project)
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse, project: ProjectContext(root: project.root),
            logger: quietLogger)
        let failed = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:], version: version))
        #expect(failed.state == .failed, "data/late_rates.csv is missing")
        let stored = try #require(try await project.store.run(failed.id))
        #expect(stored.version == version)
        let storedPlan = try #require(stored.plan)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(storedPlan.utf8)) as? [String: Any])
        let steps = try #require(json["steps"] as? [[String: Any]])
        #expect(steps.map { $0["id"] as? String } == ["load", "merge", "load_rates", "rates"], "in the order they run")
        #expect(steps.first?["timeout"] as? String == "1m")

        // The failing step now reads another file, and a schema changed too: refused, naming both.
        try project.write("data/rates_late.csv", "org,rate\nacme,3\n")
        try project.write("pipelines/two_loads.yml", Self.twoLoads.replacingOccurrences(of: "data/late_rates.csv", with: "data/rates_late.csv"))
        let rates = try String(contentsOf: project.root.appendingPathComponent("schemas/rates.json"), encoding: .utf8)
        try project.write("schemas/rates.json", rates + "\n")
        let (newPlan, both) = try Self.planned(project)
        let refusal = await #expect(throws: DefinitionChanged.self) {
            try await executor.resume(newPlan, runID: failed.id, env: [:], version: both)
        }
        #expect(refusal?.changes.map(\.description) == ["pipelines/two_loads.yml changed", "schemas/rates.json changed"])
        #expect(
            refusal?.description.contains("run \(failed.id) ran version \(version.short) of its pipeline, which is now version \(both.short)") == true
        )
        #expect(try await project.store.runs(pipeline: "two_loads", org: "acme", limit: 10).map(\.id) == [failed.id], "nothing was created")

        // With only the pipeline file changed, forced: the new definition runs; the steps whose
        // part of the plan is unchanged are reused, and the run says it was forced.
        try project.write("schemas/rates.json", rates)
        let (forcedPlan, newVersion) = try Self.planned(project)
        #expect(newVersion.changes(since: version).map(\.description) == ["pipelines/two_loads.yml changed"])
        await #expect(throws: DefinitionChanged.self) { try await executor.resume(forcedPlan, runID: failed.id, env: [:], version: newVersion) }
        let resumed = try await executor.resume(forcedPlan, runID: failed.id, env: [:], version: newVersion, force: true)
        #expect(resumed.state == .succeeded, "\(resumed.reason)")
        #expect(resumed.version == newVersion)
        #expect(try await project.store.run(resumed.id)?.version == newVersion, "the resume records the version it ran")
        let transitions = try await project.store.transitions(of: resumed.id)
        #expect(
            transitions.first?.reason
                == "created with a changed definition (forced): pipelines/two_loads.yml changed since run \(failed.id)")
        let resumedSteps = Dictionary(uniqueKeysWithValues: try await project.store.steps(of: resumed.id).map { ($0.stepID, $0) })
        #expect(resumedSteps["load"]?.reason == "reused from run \(failed.id)")
        #expect(resumedSteps["load_rates"]?.attempt == 1, "the changed step ran")
        #expect(try await project.rows("SELECT org, rate FROM rates") == [["acme", "3.0"]])
    }

    @Test func aRunStoredWithoutAVersionResumesWithTheCurrentOne() async throws {
        let project = try await PipelineProject(.sqlite)
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        try project.write("pipelines/two_loads.yml", Self.twoLoads)
        let (plan, version) = try Self.planned(project)
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse, project: ProjectContext(root: project.root),
            logger: quietLogger)
        // As a sluice from before versions stored it.
        let failed = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:]))
        #expect(failed.state == .failed && failed.version == nil)
        try project.write("data/late_rates.csv", "org,rate\nacme,3\n")
        let resumed = try await executor.resume(plan, runID: failed.id, env: [:], version: version)
        #expect(resumed.state == .succeeded, "\(resumed.reason)")
        #expect(try await project.store.run(resumed.id)?.version == version)
    }
}
