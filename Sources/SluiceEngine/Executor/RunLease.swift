import Synchronization

/// A worker's hold on a run it claimed (`RunStore.claimRun`): which worker, how long each
/// renewal extends it, and whether the worker asked to hand the run back.
///
/// The executor renews the lease while the run executes, a third of the lease apart, so two
/// renewals may fail (a slow database, a short network outage) before another worker may take
/// the run over. When a renewal says the lease is lost, the run is another worker's: this one
/// stops without touching it, as `RunOwnership` does for a run found abandoned.
public final class RunLease: Sendable {
    public let worker: String
    public let duration: Duration
    private let release = Mutex<String?>(nil)

    public init(worker: String, duration: Duration) {
        self.worker = worker
        self.duration = duration
    }

    /// How often the executor renews the lease.
    public var renewalInterval: Duration { duration / 3 }

    /// Asks that the run, once its task is cancelled, be released with `reason` (the worker is
    /// shutting down) rather than ended cancelled: its staging stays, and another worker
    /// continues it at once. The first reason given stays.
    public func requestRelease(_ reason: String) {
        release.withLock { if $0 == nil { $0 = reason } }
    }

    /// Why the worker asked to release the run; nil while it has not.
    public var releaseReason: String? { release.withLock { $0 } }
}
