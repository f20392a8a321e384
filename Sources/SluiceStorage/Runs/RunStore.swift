import Foundation
import SluiceModel

/// Run history: runs, their steps, every transition, step outputs, heartbeats. The executor
/// writes through this protocol; SluiceSQLite implements it on SQLite, and a PostgreSQL
/// implementation can follow without changing the engine.
public protocol RunStore: Sendable {
    /// Creates a run, or returns the existing one when a run with the same trigger key
    /// exists (enforced by a unique key, so two callers at once still create one run).
    func createRun(_ run: RunRecord, steps: [StepRunRecord]) async throws -> (run: RunRecord, created: Bool)

    /// Like `createRun(_:steps:)`, and with `activeLimit`, creates nothing while that many runs
    /// of the same pipeline and org are pending or running. The check and the insert are one
    /// transaction, so schedulers in several processes together never pass the limit.
    func createRun(_ run: RunRecord, steps: [StepRunRecord], activeLimit: Int?) async throws -> RunCreation

    /// Like `createRun(_:steps:activeLimit:)`, and with `orgActiveLimit`, also creates nothing
    /// while that many runs of the org (any pipeline) are pending or running (`.orgLimited`).
    /// The limit a server keeps for each tenant.
    func createRun(_ run: RunRecord, steps: [StepRunRecord], activeLimit: Int?, orgActiveLimit: Int?) async throws -> RunCreation

    /// Stores a new state for the run, with its reason, as a transition.
    func recordRun(_ runID: String, state: RunState, reason: String, at: Date) async throws

    /// Stores a new state for a step, with its attempt, reason and error code, as a transition.
    func recordStep(
        _ runID: String, step: String, state: RunState, attempt: Int, reason: String,
        errorCode: String?, at: Date) async throws

    /// Stores the outputs a step published.
    func saveOutputs(_ runID: String, step: String, outputs: [String: ExpressionValue]) async throws

    /// Marks the run alive; a run whose heartbeat is older than its lease is abandoned.
    /// Returns false, changing nothing, when the run is no longer pending or running: another
    /// process found it without a heartbeat and marked it abandoned, so this one no longer
    /// owns it.
    @discardableResult
    func heartbeat(_ runID: String, at: Date) async throws -> Bool

    /// Marks runs that are `running` but whose last heartbeat is before `cutoff` as failed,
    /// with the reason, and their unfinished steps as failed. Returns those runs. Runs left for
    /// workers are left out: a worker that stops loses its lease, and another takes the run
    /// over (`claimRun`) instead of it failing.
    func abandonRuns(heartbeatBefore cutoff: Date, reason: String, at: Date) async throws -> [RunRecord]

    /// Like `abandonRuns(heartbeatBefore:reason:at:)`, each run measured against its own lease
    /// (the one stored with it by the process that created it), or `fallbackLease` for runs
    /// stored without one; `reason` says why, given the lease.
    func abandonRuns(at now: Date, fallbackLease: Duration, reason: @escaping @Sendable (Duration) -> String) async throws -> [RunRecord]

    /// Claims for `worker`, until `now + lease`, the oldest run left for workers that no
    /// worker holds: a pending run, or a running one whose worker's lease expired (it died, or
    /// lost the network) or that its worker released (it shut down). With `orgs`, only runs
    /// of those orgs. One run goes to one claimer however many claim at once (PostgreSQL:
    /// `FOR UPDATE SKIP LOCKED`; SQLite: one write transaction). The claim is recorded as a
    /// transition naming the worker (and the one it took the run from). nil when there is
    /// nothing to claim.
    func claimRun(worker: String, lease: Duration, orgs: Set<String>?, at now: Date) async throws -> RunClaim?

    /// Extends `worker`'s lease on the run to `now + lease`. Returns false, changing nothing,
    /// once the worker no longer holds it: another worker took it over after the lease
    /// expired, or the run ended. A worker whose renewal fails stops without touching the run.
    @discardableResult
    func renewLease(_ runID: String, worker: String, lease: Duration, at now: Date) async throws -> Bool

    /// Gives up `worker`'s lease on a run it could not finish (it is shutting down), so that
    /// another worker continues it at once from its staging; records `reason` as a transition
    /// naming the worker. The run stays pending or running. Returns false, changing nothing,
    /// when the worker no longer holds it.
    @discardableResult
    func releaseRun(_ runID: String, worker: String, reason: String, at now: Date) async throws -> Bool

    /// Keeps what a step wants stored with its run beyond its outputs (a data test's result,
    /// a row an ingest quarantined), under a kind the processor names. A record with a key
    /// replaces the step's earlier record of that kind and key, in its place; one without is
    /// added after the others.
    func saveStepRecords(_ runID: String, step: String, kind: String, _ records: [StepRecordBody]) async throws

    /// The run's records of `kind`, every step's, in the order they were first kept.
    func stepRecords(of runID: String, kind: String) async throws -> [StepRecord]

    /// The records of `kind` kept by the runs of `org` created at or after `since`, in the
    /// order they were kept: what an org has spent this month, say.
    func stepRecords(org: String, kind: String, since: Date) async throws -> [StepRecord]

    func run(_ id: String) async throws -> RunRecord?
    /// The run of the pipeline and org created with `triggerKey`, if any.
    func run(pipeline: String, org: String, triggerKey: String) async throws -> RunRecord?
    func steps(of runID: String) async throws -> [StepRunRecord]
    /// A run and its steps, read together (one consistent snapshot); nil if there is no such
    /// run, or (with `org`) if it belongs to another org, which then costs no more than a
    /// missing one.
    func runWithSteps(_ id: String, org: String?) async throws -> (run: RunRecord, steps: [StepRunRecord])?
    func transitions(of runID: String) async throws -> [Transition]
    /// Newest first (by creation time, then id), at most `limit`; with a cursor, only the
    /// runs that come after the run the cursor names (keyset pagination, so a page is stable
    /// while new runs are created).
    func runs(pipeline: String?, org: String?, limit: Int, after cursor: RunCursor?) async throws -> [RunRecord]

    /// Runs that are `pending` or `running`, oldest first.
    func activeRuns() async throws -> [RunRecord]

    /// How many runs the store holds in each state now (states without runs are left out).
    func runCounts() async throws -> [RunState: Int]
}

extension RunStore {
    public func createRun(_ run: RunRecord, steps: [StepRunRecord]) async throws -> (run: RunRecord, created: Bool) {
        switch try await createRun(run, steps: steps, activeLimit: nil) {
        case .created(let created): return (created, true)
        case .existing(let existing): return (existing, false)
        case .limited, .orgLimited: preconditionFailure("no limit was given")
        }
    }

    public func createRun(_ run: RunRecord, steps: [StepRunRecord], activeLimit: Int?) async throws -> RunCreation {
        try await createRun(run, steps: steps, activeLimit: activeLimit, orgActiveLimit: nil)
    }

    public func runWithSteps(_ id: String) async throws -> (run: RunRecord, steps: [StepRunRecord])? {
        try await runWithSteps(id, org: nil)
    }

    /// Newest first, at most `limit`.
    public func runs(pipeline: String?, org: String?, limit: Int) async throws -> [RunRecord] {
        try await runs(pipeline: pipeline, org: org, limit: limit, after: nil)
    }
}

/// A run a worker claimed (`RunStore.claimRun`), and what it takes to execute it.
public struct RunClaim: Sendable, Hashable {
    /// The run as claimed: `worker` and `leaseExpiresAt` are the claimer's.
    public var run: RunRecord
    /// The worker that held the run before (its lease expired, or it released the run); nil
    /// for a run no worker had claimed.
    public var previousWorker: String?

    public init(run: RunRecord, previousWorker: String?) {
        self.run = run
        self.previousWorker = previousWorker
    }

    /// The claim of `previous` (as the store read it) by `worker` until `expires`: what both
    /// stores return once they have recorded it.
    public init(claiming previous: RunRecord, worker: String, until expires: Date, lease: Duration, reason: String, at now: Date) {
        var run = previous
        run.worker = worker
        run.leaseExpiresAt = expires
        run.heartbeatAt = now
        run.lease = lease
        run.reason = reason
        run.updatedAt = now
        self.init(run: run, previousWorker: previous.worker)
    }

    /// Whether the run had started (`running`): its worker stopped mid-way, and the claimer
    /// continues it from its staging rather than starting it.
    public var isTakeover: Bool { run.state == .running }

    /// The transition a claim records, naming who claims and from whom.
    public static func reason(worker: String, previous: RunRecord, at now: Date) -> String {
        guard let holder = previous.worker else { return "claimed by worker \(worker)" }
        // A release keeps the worker's name and clears the expiry.
        let how = previous.leaseExpiresAt.map { "its lease expired at \($0.formatted(.iso8601))" } ?? "it released the run"
        let verb = previous.state == .running ? "taken over" : "claimed"
        return "\(verb) by worker \(worker) from worker \(holder): \(how)"
    }

    /// The transition a release records.
    public static func releaseReason(worker: String, _ why: String) -> String {
        "released by worker \(worker): \(why)"
    }
}

/// What `createRun(_:steps:activeLimit:)` did.
public enum RunCreation: Sendable, Hashable {
    /// The run was created, pending.
    case created(RunRecord)
    /// A run with the same trigger key exists: this one.
    case existing(RunRecord)
    /// Nothing was created: this many runs of the pipeline and org are active, the limit.
    case limited(active: Int)
    /// Nothing was created: this many runs of the org are active, the org's limit.
    case orgLimited(active: Int)
}

/// Where a page of runs ends: the creation time and id of its last run, the order runs are
/// listed in. Shown to clients as an opaque token.
public struct RunCursor: Sendable, Hashable {
    public var createdAt: Date
    public var id: String

    public init(createdAt: Date, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    /// The cursor of the page that ends with `run`.
    public init(after run: RunRecord) {
        self.init(createdAt: run.createdAt, id: run.id)
    }

    /// The opaque form: base64url of the time's exact bits and the id, so that a cursor
    /// round-trips without losing precision.
    public var token: String {
        let text = "1.\(String(createdAt.timeIntervalSince1970.bitPattern, radix: 16)).\(id)"
        return Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A cursor from its opaque form; nil for anything that is not one.
    public init?(token: String) {
        guard token.utf8.count <= 200 else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "1", let bits = UInt64(parts[1], radix: 16), !parts[2].isEmpty,
            parts[2].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        let seconds = Double(bitPattern: bits)
        guard seconds.isFinite else { return nil }
        self.init(createdAt: Date(timeIntervalSince1970: seconds), id: String(parts[2]))
    }
}

/// One record a step keeps, as it goes to the store: its key (nil to add it after the
/// others) and its JSON.
public struct StepRecordBody: Sendable, Hashable {
    public var key: String?
    public var json: Data

    public init(key: String?, json: Data) {
        self.key = key
        self.json = json
    }
}

/// One record a step kept with its run, as the store gives it back.
public struct StepRecord: Sendable, Hashable {
    public var stepID: String
    public var key: String?
    public var json: Data

    public init(stepID: String, key: String?, json: Data) {
        self.stepID = stepID
        self.key = key
        self.json = json
    }
}
