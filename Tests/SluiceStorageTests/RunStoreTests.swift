import Foundation
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

/// What every run store does, whichever backend keeps it: one suite, run against each
/// `Backend`. The semantics are `SQLiteRunStore`'s, the first implementation.
@Suite struct RunStoreTests {
    /// A run of pipeline `p` in org `acme`, created at `createdAt` (now, as seconds since
    /// 1970: the form both stores keep, so that the run reads back equal).
    func record(
        pipeline: String = "p", org: String = "acme", triggerKey: String? = nil,
        createdAt: Date = Date(timeIntervalSince1970: Date().timeIntervalSince1970),
        lease: Duration? = nil
    ) -> RunRecord {
        RunRecord(
            id: RunRecord.newID(at: createdAt), pipeline: pipeline, org: org, logicalDate: "2026-03-01", trigger: .api,
            triggerKey: triggerKey, requestID: "req-1", params: ["day": "2026-03-01", "ünï": "cödé"], createdAt: createdAt,
            lease: lease)
    }

    func steps(_ run: RunRecord, _ ids: [String] = ["load", "merge"]) -> [StepRunRecord] {
        ids.map { StepRunRecord(runID: run.id, stepID: $0, processor: "ingest") }
    }

    @Test(arguments: Backend.all)
    func aRunReadsBackAsItWasCreated(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let created = Date(timeIntervalSince1970: 1_790_000_000.123_456_789)
            let run = record(triggerKey: "k1", createdAt: created, lease: .milliseconds(90_500))
            let (stored, isNew) = try await store.createRun(run, steps: steps(run))
            #expect(isNew)
            #expect(stored == run)
            let read = try #require(try await store.run(run.id))
            #expect(read == run, "every field, the creation time to the bit and the lease included")
            #expect(read.createdAt.timeIntervalSince1970.bitPattern == created.timeIntervalSince1970.bitPattern)
            #expect(try await store.run(pipeline: "p", org: "acme", triggerKey: "k1") == run)
            #expect(try await store.run(pipeline: "p", org: "other", triggerKey: "k1") == nil)
            #expect(try await store.run("r-none") == nil)
            #expect(try await store.steps(of: run.id).map(\.stepID) == ["load", "merge"], "in the order given")
        }
    }

    @Test(arguments: Backend.all)
    func aRunKeepsItsPipelineVersionAndPlan(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            var run = record(triggerKey: "versioned")
            run.version = PipelineVersion(
                hash: String(repeating: "0123456789abcdef", count: 4),
                files: [
                    "pipelines/p.yml": String(repeating: "a", count: 64), "schemas/events.json": String(repeating: "b", count: 64),
                    "procedures/ünï côdé.sql": String(repeating: "c", count: 64),
                ])
            run.plan = #"{"pipeline":"p","steps":[{"id":"load","uses":"ingest","with":{"table":"events","note":"ünï 'quoted'"}}]}"#
            let (stored, isNew) = try await store.createRun(run, steps: steps(run))
            #expect(isNew && stored == run)
            #expect(try await store.run(run.id) == run, "the version with every file's hash, and the plan")
            #expect(try await store.runWithSteps(run.id)?.run == run)
            #expect(try await store.runs(pipeline: "p", org: "acme", limit: 10) == [run])
            #expect(try await store.activeRuns() == [run])
            // A second create with the trigger key finds the run as stored, version included.
            #expect(try await store.createRun(record(triggerKey: "versioned"), steps: []).run == run)

            let bare = record()
            _ = try await store.createRun(bare, steps: [])
            let read = try #require(try await store.run(bare.id))
            #expect(read.version == nil && read.plan == nil, "a run created without them has none")
        }
    }

    @Test(arguments: Backend.all)
    func runsStoredBeforeVersionsLoadWithTheirVersionUnknown(_ backend: Backend) async throws {
        var old = record()
        old.state = .failed
        old.reason = "step load failed"
        try await backend.withRunStoreStoredBeforeVersions(holding: old) { store in
            let read = try #require(try await store.run(old.id))
            #expect(read == old, "every field as stored, and no version or plan")
            #expect(read.version == nil && read.plan == nil)
            #expect(try await store.runs(pipeline: "p", org: "acme", limit: 10) == [old])
            // Runs stored from now on keep theirs beside it.
            var run = record()
            run.version = PipelineVersion(hash: String(repeating: "f", count: 64), files: ["pipelines/p.yml": String(repeating: "e", count: 64)])
            _ = try await store.createRun(run, steps: [])
            #expect(try await store.run(run.id)?.version == run.version)
        }
    }

    @Test(arguments: Backend.all)
    func twentyCreatesWithOneTriggerKeyAtOnceCreateOneRun(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let results = try await withThrowingTaskGroup(of: (RunRecord, Bool).self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let run = record(triggerKey: "schedule:2026-03-01T00:00")
                        let result = try await store.createRun(run, steps: steps(run))
                        return (result.run, result.created)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter(\.1).count == 1)
            #expect(Set(results.map(\.0.id)).count == 1, "every caller gets the one run")
            #expect(try await store.runCounts() == [.pending: 1])
            let run = try #require(results.first?.0)
            #expect(try await store.steps(of: run.id).count == 2)
            #expect(try await store.transitions(of: run.id).count == 1)
        }
    }

    @Test(arguments: Backend.all)
    func theActiveLimitHoldsWhenTwentyCreateAtOnce(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let outcomes = try await withThrowingTaskGroup(of: RunCreation.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await store.createRun(record(), steps: [], activeLimit: 3) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let created = outcomes.filter(\.isCreated)
            #expect(created.count == 3)
            #expect(outcomes.filter { $0 == .limited(active: 3) }.count == 17)
            // A run that ends makes room for one more.
            guard case .created(let first) = try #require(created.first) else { return }
            try await store.recordRun(first.id, state: .succeeded, reason: "done", at: Date())
            guard case .created = try await store.createRun(record(), steps: [], activeLimit: 3) else {
                Issue.record("a finished run still counted against the limit")
                return
            }
            guard case .limited(active: 3) = try await store.createRun(record(), steps: [], activeLimit: 3) else {
                Issue.record("the limit no longer held")
                return
            }
            // Another pipeline of the org has a limit of its own.
            guard case .created = try await store.createRun(record(pipeline: "q"), steps: [], activeLimit: 3) else {
                Issue.record("another pipeline's runs counted")
                return
            }
        }
    }

    @Test(arguments: Backend.all)
    func theOrgLimitHoldsAcrossPipelinesWhenTwentyCreateAtOnce(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let outcomes = try await withThrowingTaskGroup(of: RunCreation.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        try await store.createRun(record(pipeline: "p\(index % 5)"), steps: [], activeLimit: 10, orgActiveLimit: 4)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter(\.isCreated).count == 4)
            #expect(outcomes.filter { $0 == .orgLimited(active: 4) }.count == 16)
            guard case .created = try await store.createRun(record(org: "globex"), steps: [], activeLimit: nil, orgActiveLimit: 4) else {
                Issue.record("another org's runs counted")
                return
            }
        }
    }

    @Test(arguments: Backend.all)
    func anExistingTriggerKeyWinsOverTheLimit(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let first = record(triggerKey: "t")
            _ = try await store.createRun(first, steps: [], activeLimit: 1)
            #expect(try await store.createRun(record(triggerKey: "t"), steps: [], activeLimit: 1) == .existing(first))
            #expect(try await store.createRun(record(triggerKey: "u"), steps: [], activeLimit: 1) == .limited(active: 1))
        }
    }

    /// Steps record their states at once (a hundred steps of a layer): every write is kept,
    /// and one that can't be stored (a run that does not exist) fails alone, with its caller
    /// told, while the writes committed with it are kept.
    @Test(arguments: Backend.all)
    func concurrentStepRecordsAreEachKeptAndAFailingOneFailsAlone(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record()
            _ = try await store.createRun(run, steps: steps(run))
            let at = Date(timeIntervalSince1970: 1_790_000_100)
            let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<60 {
                    group.addTask {
                        do {
                            let runID = index == 30 ? "no-such-run" : run.id
                            try await store.recordStep(
                                runID, step: "load", state: .running, attempt: index + 1, reason: "attempt \(index + 1)", errorCode: nil, at: at)
                            return false
                        } catch {
                            return true
                        }
                    }
                }
                return try await group.reduce(into: 0) { if $1 { $0 += 1 } }
            }
            #expect(failures == 1, "only the write for a run that does not exist fails")
            let attempts = try await store.transitions(of: run.id).filter { $0.stepID == "load" }.map(\.attempt)
            #expect(attempts.count == 59 && Set(attempts) == Set((1...60).filter { $0 != 31 }))
        }
    }

    @Test(arguments: Backend.all)
    func transitionsAreKeptInTheOrderTheyHappened(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record()
            _ = try await store.createRun(run, steps: steps(run))
            let t0 = Date(timeIntervalSince1970: 1_790_000_100)
            func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }
            try await store.recordRun(run.id, state: .running, reason: "started", at: at(1))
            try await store.recordStep(run.id, step: "load", state: .running, attempt: 1, reason: "attempt 1", errorCode: nil, at: at(2))
            try await store.recordStep(run.id, step: "load", state: .retrying, attempt: 1, reason: "timeout", errorCode: "timed_out", at: at(3))
            try await store.recordStep(run.id, step: "load", state: .running, attempt: 2, reason: "attempt 2", errorCode: nil, at: at(4))
            try await store.recordStep(run.id, step: "load", state: .succeeded, attempt: 2, reason: "ok", errorCode: nil, at: at(5))
            try await store.saveOutputs(run.id, step: "load", outputs: ["rows": .number(42), "file": .string("a.csv"), "ok": .bool(true)])
            try await store.recordStep(run.id, step: "merge", state: .running, attempt: 1, reason: "attempt 1", errorCode: nil, at: at(6))
            try await store.recordStep(run.id, step: "merge", state: .failed, attempt: 1, reason: "boom", errorCode: "procedure_failed", at: at(7))
            try await store.recordRun(run.id, state: .failed, reason: "step merge failed", at: at(8))

            let transitions = try await store.transitions(of: run.id)
            #expect(
                transitions.map { "\($0.stepID ?? "-") \($0.attempt) \($0.state.rawValue) \($0.reason)" } == [
                    "- 0 pending created", "- 0 running started", "load 1 running attempt 1", "load 1 retrying timeout",
                    "load 2 running attempt 2", "load 2 succeeded ok", "merge 1 running attempt 1", "merge 1 failed boom",
                    "- 0 failed step merge failed",
                ])
            #expect(transitions.dropFirst().map(\.at) == (1...8).map { at(Double($0)) })

            let steps = try await store.steps(of: run.id)
            let load = try #require(steps.first { $0.stepID == "load" })
            #expect(load.state == .succeeded && load.attempt == 2 && load.errorCode == nil)
            #expect(load.startedAt == at(2), "the first attempt's start is kept")
            #expect(load.finishedAt == at(5))
            #expect(load.outputs == ["rows": .number(42), "file": .string("a.csv"), "ok": .bool(true)])
            let merge = try #require(steps.first { $0.stepID == "merge" })
            #expect(merge.state == .failed && merge.errorCode == "procedure_failed" && merge.finishedAt == at(7))
            let stored = try #require(try await store.run(run.id))
            #expect(stored.state == .failed && stored.reason == "step merge failed" && stored.updatedAt == at(8))
        }
    }

    @Test(arguments: Backend.all)
    func aKeyedStepRecordReplacesItsEarlierOneInPlace(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record()
            _ = try await store.createRun(run, steps: steps(run, ["check", "load"]))
            func body(_ text: String) -> Data { Data("{\"v\":\"\(text)\"}".utf8) }
            try await store.saveStepRecords(
                run.id, step: "check", kind: "check_result",
                [StepRecordBody(key: "a", json: body("a1")), StepRecordBody(key: "b", json: body("b1"))])
            try await store.saveStepRecords(run.id, step: "load", kind: "quarantined_row", [StepRecordBody(key: nil, json: body("q1"))])
            // A second attempt: `a` again (replaced where it was), `c` new; unkeyed ones add.
            try await store.saveStepRecords(
                run.id, step: "check", kind: "check_result",
                [StepRecordBody(key: "c", json: body("c1")), StepRecordBody(key: "a", json: body("a2"))])
            try await store.saveStepRecords(run.id, step: "load", kind: "quarantined_row", [StepRecordBody(key: nil, json: body("q1"))])
            // The same key of another step is another record.
            try await store.saveStepRecords(run.id, step: "load", kind: "check_result", [StepRecordBody(key: "a", json: body("la"))])

            let checks = try await store.stepRecords(of: run.id, kind: "check_result")
            #expect(
                checks.map { "\($0.stepID)/\($0.key ?? "-")=\(String(decoding: $0.json, as: UTF8.self))" } == [
                    #"check/a={"v":"a2"}"#, #"check/b={"v":"b1"}"#, #"check/c={"v":"c1"}"#, #"load/a={"v":"la"}"#,
                ])
            let rows = try await store.stepRecords(of: run.id, kind: "quarantined_row")
            #expect(rows.map(\.key) == [nil, nil])
            #expect(try await store.stepRecords(of: run.id, kind: "other").isEmpty)
        }
    }

    /// What an org's runs kept since a time (its spend this month, say): other orgs' runs,
    /// older runs and other kinds are left out; the order is the order kept.
    @Test(arguments: Backend.all)
    func anOrgsRecordsSinceATimeSpanItsRuns(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let monthStart = Date(timeIntervalSince1970: 1_790_000_000)
            let before = record(createdAt: monthStart.addingTimeInterval(-1))
            let first = record(createdAt: monthStart)
            let second = record(createdAt: monthStart.addingTimeInterval(3600))
            let other = record(org: "globex", createdAt: monthStart.addingTimeInterval(60))
            for run in [before, first, second, other] { _ = try await store.createRun(run, steps: steps(run)) }
            func body(_ text: String) -> StepRecordBody { StepRecordBody(key: nil, json: Data(#"{"t":"\#(text)"}"#.utf8)) }
            try await store.saveStepRecords(before.id, step: "load", kind: "llm_usage", [body("before")])
            try await store.saveStepRecords(second.id, step: "load", kind: "llm_usage", [body("second")])
            try await store.saveStepRecords(first.id, step: "merge", kind: "llm_usage", [body("first")])
            try await store.saveStepRecords(first.id, step: "merge", kind: "quarantined_row", [body("other kind")])
            try await store.saveStepRecords(other.id, step: "load", kind: "llm_usage", [body("other org")])
            let kept = try await store.stepRecords(org: "acme", kind: "llm_usage", since: monthStart)
            #expect(kept.map { String(decoding: $0.json, as: UTF8.self) } == [#"{"t":"second"}"#, #"{"t":"first"}"#])
            #expect(kept.map(\.stepID) == ["load", "merge"])
            #expect(try await store.stepRecords(org: "globex", kind: "llm_usage", since: monthStart).count == 1)
            #expect(try await store.stepRecords(org: "acme", kind: "llm_usage", since: monthStart.addingTimeInterval(7200)).isEmpty)
        }
    }

    @Test(arguments: Backend.all)
    func aHeartbeatAfterTheRunWasAbandonedReturnsFalse(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let t0 = Date(timeIntervalSince1970: 1_790_000_200)
            let run = record(createdAt: t0)
            _ = try await store.createRun(run, steps: steps(run))
            try await store.recordRun(run.id, state: .running, reason: "started", at: t0)
            try await store.recordStep(run.id, step: "load", state: .succeeded, attempt: 1, reason: "ok", errorCode: nil, at: t0)
            try await store.recordStep(run.id, step: "merge", state: .running, attempt: 3, reason: "attempt 3", errorCode: nil, at: t0)
            #expect(try await store.heartbeat(run.id, at: t0.addingTimeInterval(10)))
            #expect(try #require(try await store.run(run.id)).heartbeatAt == t0.addingTimeInterval(10))

            // Not yet stale.
            #expect(try await store.abandonRuns(heartbeatBefore: t0.addingTimeInterval(5), reason: "no heartbeat", at: t0).isEmpty)
            let abandoned = try await store.abandonRuns(
                heartbeatBefore: t0.addingTimeInterval(60), reason: "no heartbeat for 50s", at: t0.addingTimeInterval(70))
            #expect(abandoned.map(\.id) == [run.id])
            #expect(abandoned.first?.state == .failed && abandoned.first?.reason == "abandoned: no heartbeat for 50s")
            #expect(try await store.heartbeat(run.id, at: t0.addingTimeInterval(80)) == false, "the process no longer owns the run")
            let stored = try #require(try await store.run(run.id))
            #expect(stored.state == .failed && stored.heartbeatAt == t0.addingTimeInterval(10))

            let steps = try await store.steps(of: run.id)
            #expect(steps.map { "\($0.stepID) \($0.state.rawValue) \($0.errorCode ?? "-")" } == ["load succeeded -", "merge failed abandoned"])
            let last = try await store.transitions(of: run.id).suffix(2)
            #expect(
                last.map { "\($0.stepID ?? "-") \($0.attempt) \($0.state.rawValue) \($0.reason)" } == [
                    "merge 3 failed abandoned: no heartbeat for 50s", "- 0 failed abandoned: no heartbeat for 50s",
                ])
            // Abandoned once only.
            #expect(try await store.abandonRuns(heartbeatBefore: t0.addingTimeInterval(600), reason: "again", at: t0).isEmpty)
        }
    }

    /// Several processes looking for abandoned runs at once: each run is abandoned by one of
    /// them, once.
    @Test(arguments: Backend.all)
    func concurrentAbandonmentsFailEachRunOnce(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let t0 = Date(timeIntervalSince1970: 1_790_000_250)
            var runs: [RunRecord] = []
            for index in 0..<10 {
                let run = record(createdAt: t0.addingTimeInterval(Double(index)), lease: .seconds(10))
                _ = try await store.createRun(run, steps: steps(run))
                try await store.recordRun(run.id, state: .running, reason: "started", at: t0)
                try await store.recordStep(run.id, step: "load", state: .running, attempt: 1, reason: "attempt 1", errorCode: nil, at: t0)
                runs.append(run)
            }
            let abandoned = try await withThrowingTaskGroup(of: [RunRecord].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await store.abandonRuns(at: t0.addingTimeInterval(100), fallbackLease: .seconds(10)) { _ in "no heartbeat" }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(abandoned.map(\.id).sorted() == runs.map(\.id).sorted())
            for run in runs {
                let failures = try await store.transitions(of: run.id).filter { $0.state == .failed }
                #expect(failures.map { $0.stepID ?? "-" } == ["load", "merge", "-"], "one failure of each unfinished step and one of the run")
            }
        }
    }

    @Test(arguments: Backend.all)
    func eachRunIsAbandonedByItsOwnLease(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let t0 = Date(timeIntervalSince1970: 1_790_000_300)
            let short = record(pipeline: "short", createdAt: t0, lease: .seconds(10))
            let long = record(pipeline: "long", createdAt: t0.addingTimeInterval(1), lease: .seconds(100))
            let unleased = record(pipeline: "unleased", createdAt: t0.addingTimeInterval(2))
            let finished = record(pipeline: "finished", createdAt: t0.addingTimeInterval(3), lease: .seconds(1))
            for run in [short, long, unleased, finished] {
                _ = try await store.createRun(run, steps: [])
                try await store.recordRun(run.id, state: .running, reason: "started", at: t0)
                try await store.heartbeat(run.id, at: t0.addingTimeInterval(5))
            }
            try await store.recordRun(finished.id, state: .succeeded, reason: "done", at: t0.addingTimeInterval(6))

            let abandoned = try await store.abandonRuns(at: t0.addingTimeInterval(65), fallbackLease: .seconds(50)) { lease in
                "no heartbeat for \(lease)"
            }
            #expect(abandoned.map(\.pipeline) == ["short", "unleased"], "oldest first")
            #expect(abandoned.map(\.reason) == ["abandoned: no heartbeat for 10.0 seconds", "abandoned: no heartbeat for 50.0 seconds"])
            #expect(try await store.activeRuns().map(\.id) == [long.id])
            #expect(try await store.run(long.id)?.lease == .seconds(100))
            // The unleased run is a pending one that never beat: judged by its creation time.
            let pending = record(pipeline: "pending", createdAt: t0)
            _ = try await store.createRun(pending, steps: [])
            #expect(
                try await store.abandonRuns(at: t0.addingTimeInterval(51), fallbackLease: .seconds(50)) { _ in "stale" }.map(\.id) == [pending.id])
        }
    }

    @Test(arguments: Backend.all)
    func pagesOfRunsStayStableWhileNewRunsAreCreated(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            // Creation times that need every bit of a Double, two of them equal (the id decides).
            let base = 1_790_000_400.000_000_1
            var times = (0..<7).map { Date(timeIntervalSince1970: base + Double($0) * 0.000_001_3) }
            times.append(times[3])
            var expected: [RunRecord] = []
            for time in times {
                let run = record(createdAt: time)
                _ = try await store.createRun(run, steps: [])
                expected.append(run)
            }
            _ = try await store.createRun(record(pipeline: "other", createdAt: times[5]), steps: [])
            expected.sort { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }

            var seen: [RunRecord] = []
            var cursor: RunCursor?
            var pages = 0
            repeat {
                let page = try await store.runs(pipeline: "p", org: "acme", limit: 3, after: cursor)
                seen += page
                // The API hands the cursor out as a token and gets it back.
                cursor = try page.last.map { try #require(RunCursor(token: RunCursor(after: $0).token)) }
                pages += 1
                // Newer runs arrive between pages; they belong before the first page.
                _ = try await store.createRun(record(createdAt: Date(timeIntervalSince1970: base + 10 + Double(pages))), steps: [])
                if page.count < 3 { break }
            } while pages < 10
            #expect(seen.map(\.id) == expected.map(\.id))
            #expect(pages == 3)

            #expect(try await store.runs(pipeline: nil, org: "acme", limit: 100).count == 8 + 1 + 3)
            #expect(try await store.runs(pipeline: nil, org: nil, limit: 2).count == 2)
            #expect(try await store.runs(pipeline: "p", org: "globex", limit: 100).isEmpty)
            let newestFirst = try await store.runs(pipeline: nil, org: nil, limit: 100).map(\.createdAt)
            #expect(newestFirst == newestFirst.sorted(by: >))
        }
    }

    @Test(arguments: Backend.all)
    func runWithStepsHidesAnotherOrgsRun(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            let run = record(org: "acme")
            _ = try await store.createRun(run, steps: steps(run))
            let found = try #require(try await store.runWithSteps(run.id, org: "acme"))
            #expect(found.run == run && found.steps.map(\.stepID) == ["load", "merge"])
            #expect(try await store.runWithSteps(run.id, org: "globex") == nil)
            #expect(try await store.runWithSteps(run.id)?.run == run, "no org: any org's run")
            #expect(try await store.runWithSteps("r000000000000deadbeef", org: "acme") == nil)
        }
    }

    @Test(arguments: Backend.all)
    func runCountsAndActiveRunsFollowTheStates(_ backend: Backend) async throws {
        try await backend.withRunStore { store in
            #expect(try await store.runCounts().isEmpty)
            let t0 = Date(timeIntervalSince1970: 1_790_000_500)
            let runs = (0..<6).map { record(createdAt: t0.addingTimeInterval(Double($0))) }
            for run in runs { _ = try await store.createRun(run, steps: []) }
            try await store.recordRun(runs[0].id, state: .running, reason: "started", at: t0)
            try await store.recordRun(runs[1].id, state: .succeeded, reason: "done", at: t0)
            try await store.recordRun(runs[2].id, state: .succeeded, reason: "done", at: t0)
            try await store.recordRun(runs[3].id, state: .cancelled, reason: "stopped", at: t0)
            #expect(try await store.runCounts() == [.running: 1, .succeeded: 2, .cancelled: 1, .pending: 2])
            #expect(try await store.activeRuns().map(\.id) == [runs[0].id, runs[4].id, runs[5].id], "oldest first")
        }
    }
}

extension RunCreation {
    fileprivate var isCreated: Bool { if case .created = self { true } else { false } }
}
