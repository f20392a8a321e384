import Foundation
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

/// How workers share runs, whichever backend keeps them: a claim goes to one worker, a lease
/// that expired or was released is taken over once, and a worker that lost its lease hears so.
@Suite struct RunClaimTests {
    let t0 = Date(timeIntervalSince1970: 1_790_001_000)

    /// A run left for workers (unless `forWorkers` is false) of org `org`, created `offset`
    /// seconds after `t0`.
    func record(org: String = "acme", offset: Double = 0, forWorkers: Bool = true) -> RunRecord {
        let createdAt = t0.addingTimeInterval(offset)
        return RunRecord(
            id: RunRecord.newID(at: createdAt), pipeline: "p", org: org, logicalDate: "2026-03-01", trigger: .api,
            createdAt: createdAt, lease: .seconds(30), forWorkers: forWorkers)
    }

    func create(_ run: RunRecord, in store: any RunStore) async throws {
        _ = try await store.createRun(run, steps: [StepRunRecord(runID: run.id, stepID: "load", processor: "ingest")])
    }

    /// Claims until nothing is left, each of `claimers` in a task of its own, at `at`.
    func claimAll(_ store: any RunStore, claimers: Int, at: Date) async throws -> [(worker: String, claim: RunClaim)] {
        try await withThrowingTaskGroup(of: [(String, RunClaim)].self) { group in
            for index in 0..<claimers {
                group.addTask {
                    var claimed: [(String, RunClaim)] = []
                    let worker = "w\(index)"
                    // Bounded, so a store that hands out one run again and again fails the test
                    // instead of hanging it.
                    while claimed.count < 100, let claim = try await store.claimRun(worker: worker, lease: .seconds(10), orgs: nil, at: at) {
                        claimed.append((worker, claim))
                    }
                    return claimed
                }
            }
            return try await group.reduce(into: [(String, RunClaim)]()) { $0 += $1 }.map { (worker: $0.0, claim: $0.1) }
        }
    }

    @Test(arguments: Backend.all)
    func eightClaimersOverFiftyRunsClaimEachRunOnce(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            var runs: [RunRecord] = []
            for index in 0..<50 {
                let run = record(offset: Double(index) / 10)
                try await create(run, in: store)
                runs.append(run)
            }
            // Runs executed where they were created are never a worker's.
            let inProcess = record(offset: -1, forWorkers: false)
            try await create(inProcess, in: store)

            let claims = try await claimAll(store, claimers: 8, at: t0.addingTimeInterval(60))
            #expect(claims.count == 50, "each run claimed once: \(claims.count) claims")
            #expect(Set(claims.map(\.claim.run.id)) == Set(runs.map(\.id)))
            for (worker, claim) in claims {
                #expect(claim.run.worker == worker && claim.previousWorker == nil && !claim.isTakeover)
                #expect(claim.run.leaseExpiresAt == t0.addingTimeInterval(70))
                let stored = try #require(try await store.run(claim.run.id))
                #expect(stored.worker == worker && stored.state == .pending && stored.forWorkers)
                let claimed = try await store.transitions(of: claim.run.id).filter { $0.reason.hasPrefix("claimed by") }
                #expect(claimed.map(\.reason) == ["claimed by worker \(worker)"])
            }
            #expect(try await store.run(inProcess.id)?.worker == nil)
        }
    }

    @Test(arguments: Backend.all)
    func claimsGoOldestFirstAndKeepToTheOrgsGiven(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let newer = record(org: "acme", offset: 2)
            let older = record(org: "acme", offset: 1)
            let globex = record(org: "globex", offset: 3)
            for run in [newer, older, globex] { try await create(run, in: store) }
            let at = t0.addingTimeInterval(10)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: [], at: at) == nil, "no org, no run")
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: ["initech"], at: at) == nil)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: ["globex", "initech"], at: at)?.run.id == globex.id)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: ["globex"], at: at) == nil)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: nil, at: at)?.run.id == older.id)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: ["acme"], at: at)?.run.id == newer.id)
            #expect(try await store.claimRun(worker: "w", lease: .seconds(5), orgs: nil, at: at) == nil)
        }
    }

    @Test(arguments: Backend.all)
    func anExpiredLeaseIsTakenOverOnceByConcurrentClaimers(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            var runs: [RunRecord] = []
            for index in 0..<6 {
                let run = record(offset: Double(index))
                try await create(run, in: store)
                runs.append(run)
                let claim = try #require(try await store.claimRun(worker: "dead", lease: .seconds(10), orgs: nil, at: t0.addingTimeInterval(10)))
                // Half of them had started, half had not.
                if index.isMultiple(of: 2) {
                    try await store.recordRun(claim.run.id, state: .running, reason: "started", at: t0.addingTimeInterval(10))
                }
            }
            // While the lease lasts, nobody takes them.
            #expect(try await claimAll(store, claimers: 4, at: t0.addingTimeInterval(19)).isEmpty)

            let claims = try await claimAll(store, claimers: 8, at: t0.addingTimeInterval(21))
            #expect(claims.count == 6, "each run taken over once: \(claims.count) claims")
            #expect(Set(claims.map(\.claim.run.id)) == Set(runs.map(\.id)))
            for (worker, claim) in claims {
                #expect(claim.previousWorker == "dead")
                let started = runs.firstIndex { $0.id == claim.run.id }!.isMultiple(of: 2)
                #expect(claim.isTakeover == started, "a started run is continued, one that never started is started")
                let verb = started ? "taken over" : "claimed"
                let last = try #require(try await store.transitions(of: claim.run.id).last)
                #expect(last.reason.hasPrefix("\(verb) by worker \(worker) from worker dead: its lease expired at "))
                #expect(last.state == (started ? .running : .pending))
                #expect(try await store.renewLease(claim.run.id, worker: "dead", lease: .seconds(10), at: t0.addingTimeInterval(22)) == false)
                #expect(try await store.renewLease(claim.run.id, worker: worker, lease: .seconds(10), at: t0.addingTimeInterval(22)))
            }
        }
    }

    @Test(arguments: Backend.all)
    func aRenewedLeaseHoldsAndARenewalAfterLossReturnsFalse(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record()
            try await create(run, in: store)
            _ = try #require(try await store.claimRun(worker: "a", lease: .seconds(10), orgs: nil, at: t0))
            try await store.recordRun(run.id, state: .running, reason: "started", at: t0)
            #expect(try await store.renewLease(run.id, worker: "a", lease: .seconds(10), at: t0.addingTimeInterval(8)))
            #expect(try await store.run(run.id)?.leaseExpiresAt == t0.addingTimeInterval(18))
            #expect(try await store.run(run.id)?.heartbeatAt == t0.addingTimeInterval(8))
            #expect(try await store.claimRun(worker: "b", lease: .seconds(10), orgs: nil, at: t0.addingTimeInterval(12)) == nil, "renewed")
            #expect(try await store.renewLease(run.id, worker: "b", lease: .seconds(10), at: t0.addingTimeInterval(12)) == false, "not b's")

            // Lapsed, but a is still starting it, say: a never takes a run over from itself.
            #expect(try await store.claimRun(worker: "a", lease: .seconds(10), orgs: nil, at: t0.addingTimeInterval(19)) == nil)
            let taken = try #require(try await store.claimRun(worker: "b", lease: .seconds(10), orgs: nil, at: t0.addingTimeInterval(19)))
            #expect(taken.isTakeover && taken.previousWorker == "a" && taken.run.worker == "b")
            #expect(try await store.renewLease(run.id, worker: "a", lease: .seconds(10), at: t0.addingTimeInterval(20)) == false)
            #expect(try await store.releaseRun(run.id, worker: "a", reason: "shutting down", at: t0.addingTimeInterval(20)) == false)
            #expect(try await store.run(run.id)?.worker == "b")

            // A run that ended is nobody's to renew or claim.
            try await store.recordRun(run.id, state: .succeeded, reason: "every step succeeded", at: t0.addingTimeInterval(21))
            #expect(try await store.renewLease(run.id, worker: "b", lease: .seconds(10), at: t0.addingTimeInterval(22)) == false)
            #expect(try await store.claimRun(worker: "c", lease: .seconds(10), orgs: nil, at: t0.addingTimeInterval(100)) == nil)
        }
    }

    @Test(arguments: Backend.all)
    func aReleasedRunIsContinuedAtOnceByAnotherWorker(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record()
            try await create(run, in: store)
            _ = try #require(try await store.claimRun(worker: "a", lease: .seconds(60), orgs: nil, at: t0))
            try await store.recordRun(run.id, state: .running, reason: "started", at: t0)
            #expect(try await store.releaseRun(run.id, worker: "b", reason: "not mine", at: t0.addingTimeInterval(1)) == false)
            #expect(try await store.releaseRun(run.id, worker: "a", reason: "shutting down (SIGTERM)", at: t0.addingTimeInterval(2)))
            let released = try #require(try await store.run(run.id))
            #expect(released.state == .running && released.worker == "a" && released.leaseExpiresAt == nil)
            #expect(try await store.renewLease(run.id, worker: "a", lease: .seconds(60), at: t0.addingTimeInterval(3)) == false)
            #expect(try await store.releaseRun(run.id, worker: "a", reason: "again", at: t0.addingTimeInterval(3)) == false)

            // Long before a's lease would have run out.
            let continued = try #require(try await store.claimRun(worker: "b", lease: .seconds(60), orgs: nil, at: t0.addingTimeInterval(4)))
            #expect(continued.run.id == run.id && continued.isTakeover && continued.previousWorker == "a")
            let history = try await store.transitions(of: run.id).map { "\($0.state.rawValue) \($0.reason)" }
            #expect(
                history == [
                    "pending created", "pending claimed by worker a", "running started",
                    "running released by worker a: shutting down (SIGTERM)",
                    "running taken over by worker b from worker a: it released the run",
                ])
        }
    }

    /// The watchdog that fails runs whose process died leaves workers' runs to the workers: a
    /// pending one waits to be claimed, and one whose worker died is taken over, not failed.
    @Test(arguments: Backend.all)
    func theWatchdogLeavesRunsForWorkersAlone(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let waiting = record(offset: 0)
            let held = record(offset: 1)
            let inProcess = record(offset: 2, forWorkers: false)
            for run in [waiting, held, inProcess] { try await create(run, in: store) }
            let claim = try #require(try await store.claimRun(worker: "a", lease: .seconds(10), orgs: nil, at: t0))
            #expect(claim.run.id == waiting.id)
            _ = try #require(try await store.claimRun(worker: "a", lease: .seconds(10), orgs: nil, at: t0))
            try await store.recordRun(held.id, state: .running, reason: "started", at: t0)
            let later = t0.addingTimeInterval(3600)
            #expect(try await store.abandonRuns(at: later, fallbackLease: .seconds(30)) { _ in "dead" }.map(\.id) == [inProcess.id])
            #expect(try await store.abandonRuns(heartbeatBefore: later, reason: "dead", at: later).isEmpty)
            #expect(try await store.run(held.id)?.state == .running)
            #expect(try await store.claimRun(worker: "b", lease: .seconds(10), orgs: nil, at: later)?.run.id == waiting.id)
        }
    }
}
