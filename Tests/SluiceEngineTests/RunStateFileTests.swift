import Foundation
import SluiceModel
import SluiceSQLite
import SluiceStorage
import Testing

@testable import SluiceEngine

/// What a run leaves in `.sluice/` and who may touch it: leases judged per run, stagings a run
/// has open never pruned, files created owner-only, a damaged warehouse named as such.
struct RunStateFileTests {
    @Test func eachRunIsJudgedByItsOwnLeaseNotTheCallersSetting() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let plan = try project.slowPlan(wait: "15m")
        var options = ExecutorOptions()
        options.lease = .seconds(60)
        options.heartbeatInterval = .seconds(15)
        let executor = Executor(
            processors: PipelineProject.slowCatalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), options: options, logger: quietLogger)
        let execution = Task { try await executor.start(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:])) }
        defer { execution.cancel() }
        let id = try await project.slowRunSleeping()
        #expect(try await project.store.run(id)?.lease == .seconds(60))

        // Another process, set up with a 1 s lease (`SLUICE_RUN_LEASE=1s sluice runs list`), looks
        // 5 s after the last heartbeat: well inside the run's own lease.
        let recovered = try await RunRecovery.recover(
            store: project.store, warehouse: project.warehouse, lease: .seconds(1),
            now: Date().addingTimeInterval(5))
        #expect(recovered.isEmpty)
        #expect(try await project.store.run(id)?.state == .running)

        // Past its own lease, it is abandoned, with that lease in the reason.
        let later = try await RunRecovery.recover(
            store: project.store, warehouse: project.warehouse, lease: .seconds(1),
            now: Date().addingTimeInterval(120))
        #expect(later.map(\.id) == [id])
        #expect(later.first?.reason == "abandoned: no heartbeat for 1m; the process running it stopped (killed or crashed)")
    }

    @Test func aStagingThatARunHasOpenIsNeverPruned() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let failed = try await project.run("late_rates", yaml: StagingRetentionTests.failingPipeline)
        #expect(failed.state == .failed)

        // A resume has opened the failed run's staging, but retention looks before its run is
        // in the store (the moment between listing active runs and removing files).
        let resuming = try await project.warehouse.workspace(org: "acme", runID: failed.id, targets: [], existing: true)
        let removed = try await StagingRetention.prune(
            store: project.store, warehouse: project.warehouse, keep: .seconds(0),
            now: Date().addingTimeInterval(86_400))
        #expect(removed.isEmpty, "\(removed)")
        #expect(try await project.warehouse.hasStaging(org: "acme", runID: failed.id))
        #expect(try await resuming.isStaged("events"), "the staging is whole")

        // Once the workspace is closed, retention may take it; a resume then finds it gone.
        await resuming.close()
        let later = try await StagingRetention.prune(
            store: project.store, warehouse: project.warehouse, keep: .seconds(0),
            now: Date().addingTimeInterval(86_400))
        #expect(later.map(\.staging.runID) == [failed.id])
        await #expect {
            _ = try await project.warehouse.workspace(org: "acme", runID: failed.id, targets: [], existing: true)
        } throws: { error in
            (error as? StepFailure)?.code == "not_resumable"
        }
    }

    @Test func tenantDataIsCreatedOwnerOnly() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        let failed = try await project.run("late_rates", yaml: StagingRetentionTests.failingPipeline)
        #expect(failed.state == .failed)
        let succeeded = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(succeeded.state == .succeeded)

        let state = project.root.appendingPathComponent(".sluice")
        #expect(try mode(of: state) == 0o700)
        var checked = 0
        for path in try FileManager.default.subpathsOfDirectory(atPath: state.path) {
            let url = state.appendingPathComponent(path)
            var isFolder: ObjCBool = false
            FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
            let found = try mode(of: url)
            #expect(found & 0o077 == 0, "\(path) is \(String(found, radix: 8))")
            checked += isFolder.boolValue ? 0 : 1
        }
        // The run store, the warehouse, the failed run's staging and the lock files.
        #expect(checked >= 4)
    }

    @Test func aStateFolderFromAnEarlierVersionIsClosedToOthers() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        // Versions before this one made .sluice/ 0755 and its files 0644.
        let state = project.root.appendingPathComponent(".sluice")
        #expect(chmod(state.path, 0o755) == 0)
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(try mode(of: state) == 0o700)
    }

    @Test func aStateFolderSharedWithAGroupGivesTheGroupItsFiles() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let state = project.root.appendingPathComponent(".sluice")
        #expect(chmod(state.path, 0o2770) == 0)
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        let warehouse = try project.sqlite.warehousePath(org: "acme")
        let umask = currentUmask()
        #expect(try mode(of: URL(fileURLWithPath: warehouse)) == 0o660 & ~umask)
        #expect(try mode(of: state.appendingPathComponent("orgs")) & 0o777 == 0o770 & ~umask)
    }

    @Test func aDamagedWarehouseIsNamedWithARemedy() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        let path = try project.sqlite.warehousePath(org: "acme")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))

        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline())
        #expect(run.state == .failed)
        #expect(run.reason.contains("is damaged"), "\(run.reason)")
        #expect(run.reason.contains(".recover"), "\(run.reason)")
        await #expect {
            _ = try await project.warehouse.query(org: "acme", "SELECT 1", [])
        } throws: { error in
            (error as? StepFailure)?.code == "warehouse_corrupt"
        }
    }

    private func mode(of url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    private func currentUmask() -> Int {
        let current = umask(0o022)
        umask(current)
        return Int(current)
    }
}
