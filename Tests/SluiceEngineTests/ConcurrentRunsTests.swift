import Foundation
import Logging
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceEngine

/// A step that waits until the test opens its gate (named by its `name` field; `open` passes at
/// once): where a run pauses so that another can overtake it.
final class GateProcessor: Processor, Sendable {
    private let gates = Mutex<[String: (arrived: Bool, open: Bool)]>([:])

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_gate", summary: "s", description: "d",
            fields: [FieldSpec("name", .string, .required, description: "the gate")], outputs: [], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let name = step.config["name"]?.scalarText ?? "open"
        guard name != "open" else { return [:] }
        gates.withLock { $0[name, default: (false, false)].arrived = true }
        while !gates.withLock({ $0[name]?.open ?? false }) { try await Task.sleep(for: .milliseconds(5)) }
        return [:]
    }

    /// Waits until a run is held at the gate.
    func arrival(at name: String) async throws {
        #expect(try await eventually { self.gates.withLock { $0[name]?.arrived ?? false } }, "no run reached gate \(name)")
    }

    func open(_ name: String) {
        gates.withLock { $0[name, default: (false, false)].open = true }
    }
}

/// Two runs that overlap in time, of one pipeline, end as if one had run after the other
/// (DESIGN.md, invariant 9): the publish applies latest_wins and first_wins again, a procedure
/// or an aggregate holds its tables from its reads to its publish, and no run's update is lost
/// or regressed. Each case once with a forced interleaving (run A pauses between its work and
/// its publish while run B runs), then in trials started together (20 on SQLite, 8 on PostgreSQL).
struct ConcurrentRunsTests {
    @Test(arguments: Backend.all) func latestWinsHoldsWhenAnOlderVersionPublishesAfterANewerOne(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).latestWinsHoldsWhenAnOlderVersionPublishesAfterANewerOne()
    }

    @Test(arguments: Backend.all) func firstWinsKeepsWhatWasPublishedFirst(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).firstWinsKeepsWhatWasPublishedFirst()
    }

    @Test(arguments: Backend.all) func replacedPartitionsOfBothRunsStay(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).replacedPartitionsOfBothRunsStay()
    }

    @Test(arguments: Backend.all) func aProcedureRebuildingItsDayKeepsTheOtherRunsDay(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).aProcedureRebuildingItsDayKeepsTheOtherRunsDay()
    }

    @Test(arguments: Backend.all) func aRunWaitingToPublishForAnotherRunsTablesCanBeCancelled(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).aRunWaitingToPublishForAnotherRunsTablesCanBeCancelled()
    }

    @Test(arguments: Backend.all) func aggregatesOfOverlappingRunsCountBothRuns(_ backend: Backend) async throws {
        try await OverlappingRuns(backend).aggregatesOfOverlappingRunsCountBothRuns()
    }
}

/// A project on one backend whose pipeline can pause a run at a gate, and the cases of
/// `ConcurrentRunsTests` over it.
struct OverlappingRuns {
    let project: PipelineProject
    let gate = GateProcessor()

    /// How many pairs of runs each case starts together after its forced interleaving: 20 on
    /// SQLite; 8 on PostgreSQL, where a run costs several times the round trips (schemas,
    /// views, grants) and the forced interleaving already pins each rule down.
    var trials: Range<Int> { 0..<(project.backend == .sqlite ? 20 : 8) }

    init(_ backend: Backend) async throws {
        project = try await PipelineProject(backend)
        try project.write("schemas/day_totals.json", #"[{"name": "day", "type": "DATE"}, {"name": "total", "type": "NUMERIC"}]"#)
        try project.write(
            "procedures/day_totals.sql",
            """
            -- Rebuilds one day of day_totals from events.
            DELETE FROM day_totals WHERE day = :day;
            INSERT INTO day_totals (day, total) SELECT day, sum(amount) FROM events WHERE day = :day GROUP BY day;
            """)
    }

    var catalog: ProcessorEnvironment { ProcessorEnvironment.standard.adding([gate]) }

    /// A pipeline that loads `params.file`, merges it into `events` with `merge`, does `then`,
    /// and waits at `params.gate` before it publishes.
    func plan(merge: String, then steps: String = "") throws -> PipelinePlan {
        try project.write(
            "pipelines/overlap.yml",
            """
            pipeline: overlap
            defaults: { timeout: 5m }
            params:
              file: { type: string }
              day: { type: date, default: "2026-03-01" }
              gate: { type: string, default: open }
            steps:
              - id: load
                uses: ingest
                with: { source: { format: csv, path: "${{ params.file }}" }, table: events_raw, schema: schemas/events_raw.json }
              - id: merge
                uses: merge_dedupe
                with: { from: events_raw, into: events, key: [event_id], \(merge) }
            \(steps)
              - id: wait
                uses: test_gate
                needs: [\(steps.isEmpty ? "merge" : "work")]
                with: { name: "${{ params.gate }}" }
            """)
        let (plan, diagnostics) = Linter(projectRoot: project.root, registry: catalog.registry).plan(file: "pipelines/overlap.yml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        return try #require(plan)
    }

    func start(_ plan: PipelinePlan, org: String, file: String, day: String = "2026-03-01", gate: String = "open") async throws -> RunRecord {
        let executor = Executor(
            processors: catalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        return try await executor.start(plan, .init(org: org, logicalDate: day, params: ["file": file, "day": day, "gate": gate], env: [:]))
    }

    func rows(_ org: String, _ sql: String) async throws -> [[String]] {
        try await project.warehouse.query(org: org, sql, []).rows.map { $0.map(\.displayText) }
    }

    /// Runs A until its gate, B to the end (`bWaits`: B is expected to wait for A instead, so it
    /// is started and A released while it waits), then A; both must succeed.
    func overlap(
        _ plan: PipelinePlan, org: String, a: String, b: String, aDay: String = "2026-03-01", bDay: String = "2026-03-01",
        bWaits: Bool = false
    ) async throws -> (a: RunRecord, b: RunRecord) {
        let gateName = "a-\(org)"
        let first = Task { try await start(plan, org: org, file: a, day: aDay, gate: gateName) }
        try await gate.arrival(at: gateName)
        let second = Task { try await start(plan, org: org, file: b, day: bDay) }
        if bWaits {
            // B reaches the step that must wait for A's publish; A goes on meanwhile.
            try await eventually {
                let runs = try await project.store.runs(pipeline: "overlap", org: org, limit: 2)
                return runs.count == 2
            }
            try await Task.sleep(for: .milliseconds(200))
            gate.open(gateName)
        } else {
            _ = try await second.value
            gate.open(gateName)
        }
        let (runA, runB) = (try await first.value, try await second.value)
        #expect(runA.state == .succeeded, "\(runA.reason)")
        #expect(runB.state == .succeeded, "\(runB.reason)")
        return (runA, runB)
    }

    /// Two runs started together, one a random moment after the other.
    func together(
        _ plan: PipelinePlan, org: String, a: String, b: String, aDay: String = "2026-03-01",
        bDay: String = "2026-03-01"
    ) async throws {
        let delay = Duration.milliseconds(Int.random(in: 0...20))
        async let first = start(plan, org: org, file: a, day: aDay)
        async let second: RunRecord = {
            try await Task.sleep(for: delay)
            return try await start(plan, org: org, file: b, day: bDay)
        }()
        let (runA, runB) = try await (first, second)
        #expect(runA.state == .succeeded, "\(runA.reason)")
        #expect(runB.state == .succeeded, "\(runB.reason)")
    }

    static let header = "event_id,ts,day,org,amount\n"

    func latestWinsHoldsWhenAnOlderVersionPublishesAfterANewerOne() async throws {
        defer { project.remove() }
        let plan = try plan(merge: "latest_by: ts")
        try project.write("data/a.csv", Self.header + "k1,2026-01-02T00:00:00Z,2026-03-01,acme,2\nka,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
        try project.write("data/b.csv", Self.header + "k1,2026-01-03T00:00:00Z,2026-03-01,acme,3\nkb,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
        let (runA, _) = try await overlap(plan, org: "acme", a: "data/a.csv", b: "data/b.csv")
        let published = try await rows("acme", "SELECT event_id, ts, amount FROM events ORDER BY event_id")
        #expect(
            published == [
                ["k1", "2026-01-03T00:00:00.000000Z", "3"], ["ka", "2026-01-01T00:00:00.000000Z", "1"], ["kb", "2026-01-01T00:00:00.000000Z", "1"],
            ],
            "\(published)")
        // A's counts are what its publish did: k1 stayed B's.
        let outputs = try await project.store.steps(of: runA.id).first { $0.stepID == "merge" }?.outputs ?? [:]
        #expect(outputs["rows_inserted"] == .number(1))
        #expect(outputs["rows_updated"] == .number(0))
        #expect(outputs["rows_unchanged"] == .number(1))

        for trial in trials {
            let org = "t\(trial)"
            let aNewer = Bool.random()
            try project.write(
                "data/a\(trial).csv",
                Self.header
                    + "k1,2026-01-0\(aNewer ? 3 : 2)T00:00:00Z,2026-03-01,acme,\(aNewer ? 3 : 2)\nka,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
            try project.write(
                "data/b\(trial).csv",
                Self.header
                    + "k1,2026-01-0\(aNewer ? 2 : 3)T00:00:00Z,2026-03-01,acme,\(aNewer ? 2 : 3)\nkb,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
            try await together(plan, org: org, a: "data/a\(trial).csv", b: "data/b\(trial).csv")
            #expect(
                try await rows(org, "SELECT event_id, amount FROM events ORDER BY event_id") == [["k1", "3"], ["ka", "1"], ["kb", "1"]],
                "trial \(trial)")
        }
    }

    func firstWinsKeepsWhatWasPublishedFirst() async throws {
        defer { project.remove() }
        let plan = try plan(merge: "strategy: first_wins")
        try project.write("data/a.csv", Self.header + "k1,2026-01-02T00:00:00Z,2026-03-01,acme,2\nka,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
        try project.write("data/b.csv", Self.header + "k1,2026-01-03T00:00:00Z,2026-03-01,acme,3\nkb,2026-01-01T00:00:00Z,2026-03-01,acme,1\n")
        let (runA, _) = try await overlap(plan, org: "acme", a: "data/a.csv", b: "data/b.csv")
        // B published k1 first; A's k1, staged before that, does not replace it.
        #expect(try await rows("acme", "SELECT event_id, amount FROM events ORDER BY event_id") == [["k1", "3"], ["ka", "1"], ["kb", "1"]])
        let outputs = try await project.store.steps(of: runA.id).first { $0.stepID == "merge" }?.outputs ?? [:]
        #expect(outputs["rows_inserted"] == .number(1))
        #expect(outputs["rows_unchanged"] == .number(1))

        for trial in trials {
            let org = "t\(trial)"
            try await together(plan, org: org, a: "data/a.csv", b: "data/b.csv")
            // Whichever run published first keeps k1.
            // (`at` is taken inside the publish, under the holds; SQLite breaks a tie by rowid.)
            let order = project.backend == .sqlite ? "at, rowid" : "at"
            let first = try await rows(org, "SELECT run_id FROM _sluice_published ORDER BY \(order) LIMIT 1").first?.first
            let runs = try await project.store.runs(pipeline: "overlap", org: org, limit: 2)
            let firstFile = runs.first { $0.id == first }?.params["file"]
            #expect(
                try await rows(org, "SELECT event_id, amount FROM events ORDER BY event_id")
                    == [["k1", firstFile == "data/a.csv" ? "2" : "3"], ["ka", "1"], ["kb", "1"]], "trial \(trial)")
        }
    }

    func replacedPartitionsOfBothRunsStay() async throws {
        defer { project.remove() }
        let plan = try plan(merge: "strategy: replace_partitions, partition_by: day")
        try project.write("data/a.csv", Self.header + "a1,2026-01-02T00:00:00Z,2026-03-01,acme,2\n")
        try project.write("data/b.csv", Self.header + "b1,2026-01-03T00:00:00Z,2026-03-02,acme,3\n")
        _ = try await overlap(plan, org: "acme", a: "data/a.csv", b: "data/b.csv")
        #expect(try await rows("acme", "SELECT event_id, day FROM events ORDER BY event_id") == [["a1", "2026-03-01"], ["b1", "2026-03-02"]])
        for trial in trials {
            try await together(plan, org: "t\(trial)", a: "data/a.csv", b: "data/b.csv")
            #expect(try await rows("t\(trial)", "SELECT event_id FROM events ORDER BY event_id") == [["a1"], ["b1"]], "trial \(trial)")
        }
    }

    func aProcedureRebuildingItsDayKeepsTheOtherRunsDay() async throws {
        defer { project.remove() }
        let plan = try plan(
            merge: "latest_by: ts",
            then: """
                  - id: work
                    uses: sql
                    needs: [merge]
                    with: { procedure: procedures/day_totals.sql, params: { day: "${{ params.day }}" } }
                """)
        try project.write("data/a.csv", Self.header + "a1,2026-01-02T00:00:00Z,2026-03-01,acme,2\na2,2026-01-02T00:00:00Z,2026-03-01,acme,5\n")
        try project.write("data/b.csv", Self.header + "b1,2026-01-03T00:00:00Z,2026-03-02,acme,3\n")
        // B's procedure waits for A's publish: it reads what A published.
        _ = try await overlap(plan, org: "acme", a: "data/a.csv", b: "data/b.csv", aDay: "2026-03-01", bDay: "2026-03-02", bWaits: true)
        #expect(try await rows("acme", "SELECT day, total FROM day_totals ORDER BY day") == [["2026-03-01", "7"], ["2026-03-02", "3"]])
        for trial in trials {
            let org = "t\(trial)"
            try await together(plan, org: org, a: "data/a.csv", b: "data/b.csv", aDay: "2026-03-01", bDay: "2026-03-02")
            #expect(
                try await rows(org, "SELECT day, total FROM day_totals ORDER BY day") == [["2026-03-01", "7"], ["2026-03-02", "3"]],
                "trial \(trial)")
        }
    }

    func aRunWaitingToPublishForAnotherRunsTablesCanBeCancelled() async throws {
        defer { project.remove() }
        let holding = try plan(
            merge: "latest_by: ts",
            then: """
                  - id: work
                    uses: aggregate
                    needs: [merge]
                    with: { from: events, group_by: [org], measures: { total: sum(amount) }, into: org_totals }
                """)
        try project.write("data/a.csv", Self.header + "a1,2026-01-02T00:00:00Z,2026-03-01,acme,5\n")
        try project.write("data/b.csv", Self.header + "b1,2026-01-03T00:00:00Z,2026-03-02,acme,7\n")
        // A holds events and org_totals from its aggregate on, and waits at its gate.
        let first = Task { try await start(holding, org: "acme", file: "data/a.csv", gate: "a-hold") }
        try await gate.arrival(at: "a-hold")
        // B only merges into events: its steps run, then its publish waits for A's tables.
        let mergeOnly = try plan(merge: "latest_by: ts")
        let note = CancellationNote()
        let executor = Executor(
            processors: catalog, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        let second = Task {
            try await executor.start(
                mergeOnly, .init(org: "acme", logicalDate: "2026-03-02", params: ["file": "data/b.csv"], env: [:]),
                cancellation: note)
        }
        #expect(
            try await eventually {
                let runs = try await project.store.runs(pipeline: "overlap", org: "acme", limit: 2)
                guard let b = runs.first(where: { $0.params["file"] == "data/b.csv" }) else { return false }
                return try await project.store.steps(of: b.id).first { $0.stepID == "wait" }?.state == .succeeded
            })
        try await Task.sleep(for: .milliseconds(100))
        note.set("cancelled by the test while it waited for A's tables")
        second.cancel()
        let cancelled = try await second.value
        #expect(cancelled.state == .cancelled, "\(cancelled.reason)")
        gate.open("a-hold")
        #expect(try await first.value.state == .succeeded)
        #expect(try await rows("acme", "SELECT event_id FROM events ORDER BY event_id") == [["a1"]], "B published nothing")
    }

    func aggregatesOfOverlappingRunsCountBothRuns() async throws {
        defer { project.remove() }
        let plan = try plan(
            merge: "latest_by: ts",
            then: """
                  - id: totals
                    uses: aggregate
                    needs: [merge]
                    with: { from: events, group_by: [org], measures: { total: sum(amount) }, into: org_totals, mode: merge }
                  - id: work
                    uses: aggregate
                    needs: [totals]
                    with: { from: events, group_by: [org], measures: { total: sum(amount) }, into: org_totals_all }
                """)
        try project.write("data/a.csv", Self.header + "a1,2026-01-02T00:00:00Z,2026-03-01,acme,5\n")
        try project.write("data/b.csv", Self.header + "b1,2026-01-03T00:00:00Z,2026-03-02,acme,7\n")
        _ = try await overlap(plan, org: "acme", a: "data/a.csv", b: "data/b.csv", bWaits: true)
        #expect(try await rows("acme", "SELECT org, total FROM org_totals") == [["acme", "12"]])
        #expect(try await rows("acme", "SELECT org, total FROM org_totals_all") == [["acme", "12"]])
        for trial in trials {
            let org = "t\(trial)"
            try await together(plan, org: org, a: "data/a.csv", b: "data/b.csv")
            #expect(try await rows(org, "SELECT org, total FROM org_totals") == [["acme", "12"]], "trial \(trial)")
            #expect(try await rows(org, "SELECT org, total FROM org_totals_all") == [["acme", "12"]], "trial \(trial)")
        }
    }
}
