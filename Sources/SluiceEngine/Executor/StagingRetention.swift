import Foundation
import SluiceModel
import SluiceStorage

/// Removes run workspaces (staging) nothing can use any more. A failed run keeps its staging
/// so `sluice run --resume` can reuse what succeeded; that staging is removed once it has not
/// been written for the retention period. Staging of a run that succeeded or was cancelled
/// (left behind by a process that died after its publish committed) and staging without a
/// run are removed too; staging a pending or running run works in is never touched.
public enum StagingRetention {
    /// A staging that was removed, and why.
    public struct Removal: Sendable, Hashable {
        public var staging: StagingInfo
        public var reason: String
    }

    @discardableResult
    public static func prune(store: any RunStore, warehouse: any Warehouse, keep: Duration, now: Date = Date()) async throws -> [Removal] {
        let cutoff = now.addingTimeInterval(-keep.timeInterval)
        // Files first, then runs: a run that starts after the files were listed has no file in
        // the list, and one that started before is active in the store by now. A staging a run
        // opens between the check and the removal is kept by the warehouse, which removes only
        // stagings no run has open.
        let stagings = try await warehouse.stagings()
        var inUse: Set<String> = []
        for run in try await store.activeRuns() {
            inUse.insert(try await RunRecovery.stagingRun(of: run, store: store))
        }
        var removed: [Removal] = []
        for staging in stagings where !inUse.contains(staging.runID) {
            let reason: String?
            switch try await store.run(staging.runID)?.state {
            case nil:
                reason = staging.modifiedAt < cutoff ? "no run has this id" : nil
            case .failed?:
                reason =
                    staging.modifiedAt < cutoff
                    ? "the run failed and its staging was not used for \(DurationText.format(keep)); it can no longer be resumed"
                    : nil
            case let state?:
                reason = "the run is \(state.rawValue); nothing can resume it"
            }
            guard let reason, try await warehouse.removeStaging(org: staging.org, runID: staging.runID) else { continue }
            removed.append(Removal(staging: staging, reason: reason))
        }
        return removed
    }
}
