import Foundation
import SluiceModel
import SluiceStorage

/// Finds runs whose process died: `running` runs whose heartbeat is older than the lease are
/// marked failed (abandoned) with the reason, unless the warehouse shows their publish
/// committed, in which case they are marked succeeded. Called when a command starts.
public enum RunRecovery {
    /// Each run is judged by the lease stored with it; `lease` is for runs stored without one.
    @discardableResult
    public static func recover(store: any RunStore, warehouse: (any Warehouse)?, lease: Duration, now: Date = Date()) async throws -> [RunRecord] {
        let abandoned = try await store.abandonRuns(at: now, fallbackLease: lease) { lease in
            "no heartbeat for \(DurationText.format(lease)); the process running it stopped (killed or crashed)"
        }
        var recovered: [RunRecord] = []
        for var run in abandoned {
            if let warehouse, try await warehouse.wasPublished(org: run.org, runID: try await stagingRun(of: run, store: store)) {
                try await store.recordRun(
                    run.id, state: .succeeded,
                    reason: "its changes were published before the process stopped", at: now)
                run.state = .succeeded
            }
            recovered.append(run)
        }
        return recovered
    }

    /// The run whose staging a run works in: its own, or for a resumed run, that of the run
    /// the chain of resumes started from.
    public static func stagingRun(of run: RunRecord, store: any RunStore) async throws -> String {
        try await origin(of: run, store: store).id
    }

    /// The run a chain of resumes started from (the run itself when it resumes nothing): its
    /// staging is the chain's, and its trigger says whether the chain's params came from a
    /// caller (`RunTrigger.passesCallerValues`). When the chain breaks (a run missing from the
    /// store), the last run found, still a `resume`, which counts as untrusted.
    public static func origin(of run: RunRecord, store: any RunStore) async throws -> RunRecord {
        var current = run
        var seen: Set<String> = [run.id]
        while let previous = current.resumeOf, seen.insert(previous).inserted, let record = try await store.run(previous) {
            current = record
        }
        return current
    }
}
