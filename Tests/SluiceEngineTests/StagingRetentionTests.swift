import Foundation
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// Failed runs keep their staging for a resume, but not for ever.
struct StagingRetentionTests {
    static let failingPipeline = """
        pipeline: late_rates
        defaults: { timeout: 1m }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
          - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
          - { id: load_rates, uses: ingest, needs: [merge], with: { source: { format: csv, path: data/late_rates.csv }, table: rates_raw, schema: schemas/rates_raw.json } }
        """

    func failedRun(_ project: PipelineProject) async throws -> RunRecord {
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let run = try await project.run("late_rates", yaml: Self.failingPipeline)
        #expect(run.state == .failed)
        return run
    }

    @Test(arguments: Backend.all) func aFailedRunKeepsItsStagingUntilTheRetentionPasses(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let failed = try await failedRun(project)
        #expect(try await project.warehouse.stagings().map(\.runID) == [failed.id])

        // Within the retention: kept.
        let early = try await StagingRetention.prune(store: project.store, warehouse: project.warehouse, keep: .seconds(3600))
        #expect(early.isEmpty)
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: failed.id))

        // A day later with a retention of an hour: removed, with the reason.
        let removed = try await StagingRetention.prune(
            store: project.store, warehouse: project.warehouse, keep: .seconds(3600),
            now: Date().addingTimeInterval(86_400))
        #expect(removed.map(\.staging.runID) == [failed.id])
        #expect(removed.first?.reason.contains("can no longer be resumed") == true)
        #expect(try await project.warehouse.stagings().isEmpty)
        if backend == .sqlite {
            let folder = project.root.appendingPathComponent(".sluice/orgs/acme/staging").path
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty, "no -wal or -shm left either")
        }

        // Resuming it now is refused with the reason, and creates no run.
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/late_rates.yml")
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let before = try await project.store.runs(pipeline: nil, org: nil, limit: 100).count
        await #expect {
            _ = try await executor.resume(try #require(plan), runID: failed.id, env: [:])
        } throws: { error in
            (error as? StepFailure)?.code == "not_resumable" && "\(error)".contains("staging was removed")
        }
        #expect(try await project.store.runs(pipeline: nil, org: nil, limit: 100).count == before)
    }

    @Test func aDamagedStagingIsNotResumed() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let failed = try await failedRun(project)
        // What a power loss in the middle of a staging write could leave: pages of garbage.
        let path = try project.sqlite.stagingPath(org: "acme", runID: failed.id)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        #expect(size >= 4 * 4096)
        try handle.seek(toOffset: 4096)
        handle.write(Data(repeating: 0xA5, count: Int(size) - 4096))
        try handle.close()

        try project.write("data/late_rates.csv", "org,rate\nacme,3\n")
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/late_rates.yml")
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let resumed = try await executor.resume(try #require(plan), runID: failed.id, env: [:])
        #expect(resumed.state == .failed)
        #expect(resumed.reason.contains("damaged") || resumed.reason.contains("malformed"), "\(resumed.reason)")
        #expect(try await project.tableExists("events") == false)
    }

    @Test(arguments: Backend.all) func theStagingOfAnActiveRunIsNeverRemoved(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let failed = try await failedRun(project)
        // A resume of it is running (its record is active and names the failed run).
        let resume = RunRecord(
            pipeline: "late_rates", org: "acme", logicalDate: failed.logicalDate, trigger: .resume,
            params: [:], resumeOf: failed.id)
        _ = try await project.store.createRun(resume, steps: [])
        try await project.store.recordRun(resume.id, state: .running, reason: "started", at: Date())

        let removed = try await StagingRetention.prune(
            store: project.store, warehouse: project.warehouse, keep: .zero,
            now: Date().addingTimeInterval(86_400))
        #expect(removed.isEmpty)
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: failed.id))
    }

    @Test(arguments: Backend.all) func stagingNothingCanUseIsRemoved(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        // Left by a run that succeeded (its process died after the publish committed) and by a
        // run the store has never heard of.
        let succeeded = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli, params: [:])
        _ = try await project.store.createRun(succeeded, steps: [])
        try await project.store.recordRun(succeeded.id, state: .succeeded, reason: "published", at: Date())
        for id in [succeeded.id, "r_orphan"] {
            let workspace = try await project.warehouse.workspace(org: "acme", runID: id)
            _ = try await workspace.stage("t", columns: [ColumnDefinition("a", .string)], change: .replace, primaryKey: [])
        }
        // Now: the succeeded run's goes at once; the orphan only once it is old.
        let now = try await StagingRetention.prune(store: project.store, warehouse: project.warehouse, keep: .seconds(3600))
        #expect(now.map(\.staging.runID) == [succeeded.id])
        let later = try await StagingRetention.prune(
            store: project.store, warehouse: project.warehouse, keep: .seconds(3600),
            now: Date().addingTimeInterval(7200))
        #expect(later.map(\.staging.runID) == ["r_orphan"])
        #expect(later.first?.reason == "no run has this id")
    }
}

/// Incremental cursors live with the data: staged by the run, published in its transaction.
struct CursorTests {
    @Test(arguments: Backend.all) func aCursorIsPublishedWithTheTablesAndOnlyThen(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let first = try await project.warehouse.workspace(org: "acme", runID: "r_cursor_1")
        #expect(try await first.cursor("p/load") == nil)
        let staged = try await first.stage("t", columns: [ColumnDefinition("a", .string)], change: .replace, primaryKey: [])
        try await first.insert(into: staged, columns: ["a"], rows: [[.text("x")]])
        try await first.stageCursor("p/load", value: "2026-03-01T00:00:00.000000Z")
        // Not visible before the publish, to this run or any other.
        #expect(try await first.cursor("p/load") == nil)
        try await first.publish()
        let second = try await project.warehouse.workspace(org: "acme", runID: "r_cursor_2")
        #expect(try await second.cursor("p/load") == "2026-03-01T00:00:00.000000Z")

        // A run that stages a newer cursor and is discarded leaves the published one.
        try await second.stageCursor("p/load", value: "2026-04-01T00:00:00.000000Z")
        try await second.discard()
        let third = try await project.warehouse.workspace(org: "acme", runID: "r_cursor_3")
        #expect(try await third.cursor("p/load") == "2026-03-01T00:00:00.000000Z")
        #expect(
            try await project.rows("SELECT key, value, run_id FROM _sluice_cursors") == [["p/load", "2026-03-01T00:00:00.000000Z", "r_cursor_1"]])
        try await third.discard()
    }
}

/// Several processes (here: connections) opening a new run store at once migrate it once.
struct RunStoreOpeningTests {
    @Test func storesOpenedAtOnceOnANewFileAllOpen() async throws {
        for _ in 0..<5 {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-open-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("runs.sqlite").path
            let opened = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do { _ = try SQLiteRunStore(path: path); return nil } catch { return "\(error)" }
                    }
                }
                return await group.reduce(into: [String]()) { if let error = $1 { $0.append(error) } }
            }
            #expect(opened.isEmpty, "\(opened)")
        }
    }

    /// Runs of one org that start together on its new warehouse all get their workspace.
    @Test func workspacesOpenedAtOnceOnANewWarehouseAllOpen() async throws {
        for _ in 0..<5 {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-open-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let warehouse = SQLiteWarehouse(root: folder)
            let opened = await withTaskGroup(of: String?.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        do {
                            let workspace = try await warehouse.workspace(org: "acme", runID: "r_open_\(index)")
                            try await workspace.discard()
                            return nil
                        } catch { return "\(error)" }
                    }
                }
                return await group.reduce(into: [String]()) { if let error = $1 { $0.append(error) } }
            }
            #expect(opened.isEmpty, "\(opened)")
        }
    }
}
