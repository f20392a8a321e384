import Foundation
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluicePostgres

/// What every warehouse does, whichever backend keeps it: one suite, run against each
/// `Backend`. The semantics are `SQLiteWarehouse`'s, the first implementation; the few cases
/// only PostgreSQL can express (another org's schema named outright, exact numerics) say so.
@Suite struct WarehouseTests {
    let pair = [ColumnDefinition("k", .int64), ColumnDefinition("v", .string)]
    let versioned = [ColumnDefinition("k", .int64), ColumnDefinition("version", .int64), ColumnDefinition("v", .string)]

    /// Publishes `rows` into `table` in a run of its own.
    @discardableResult
    func publish(
        _ warehouse: any Warehouse, org: String = "acme", run: String, table: String, columns: [ColumnDefinition],
        change: StagedChange, primaryKey: [String] = [], rows: [[WarehouseValue]]
    ) async throws -> TablePublication? {
        let workspace = try await warehouse.workspace(org: org, runID: run, targets: [table], existing: false)
        do {
            let staged = try await workspace.stage(table, columns: columns, change: change, primaryKey: primaryKey, step: "s")
            try await workspace.insert(into: staged, columns: columns.map(\.name), rows: rows)
            return try await workspace.publish().first
        } catch {
            await workspace.close()
            throw error
        }
    }

    func rows(_ warehouse: any Warehouse, org: String = "acme", _ sql: String) async throws -> [[WarehouseValue]] {
        try await warehouse.query(org: org, sql, []).rows
    }

    func code(of body: () async throws -> Void) async -> FailureCode? {
        do {
            try await body()
            return nil
        } catch let failure as StepFailure {
            return failure.code
        } catch {
            return FailureCode("unexpected: \(error)")
        }
    }

    // MARK: Values

    /// What a load writes comes back as it went in: the integers at the ends of 64 bits, and
    /// texts with the characters a bulk load's format delimits with (PostgreSQL's COPY text).
    @Test(arguments: Backend.all)
    func loadedIntegersAndTextsComeBackAsTheyWent(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let sent: [[WarehouseValue]] = [
                [.integer(.min), .text("tab\there")], [.integer(-1), .text("line\nbreak\r\n")], [.integer(0), .text("back\\slash \\N")],
                [.integer(7), .text("")], [.integer(1_000_000_007), .null], [.integer(.max), .text("naïve ☕")],
            ]
            try await publish(warehouse, run: "r1", table: "t", columns: pair, change: .replace, rows: sent)
            #expect(try await rows(warehouse, "SELECT k, v FROM t ORDER BY k") == sent)
        }
    }

    /// Rows are numbered in the order they arrive, across batches and whoever wrote them (a
    /// load, then a SQL statement leaving the number to the table): merges collapse by it.
    @Test(arguments: Backend.all)
    func stagedRowsKeepTheOrderTheyArrivedIn(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let workspace = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await workspace.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await workspace.insert(into: staged, columns: ["k", "v"], rows: [[.integer(5), .text("a")], [.integer(3), .text("b")]])
            try await workspace.insert(into: staged, columns: ["k", "v"], rows: [[.integer(9), .text("c")]])
            _ = try await workspace.execute("INSERT INTO \(staged) (k, v) VALUES (1, 'd')", [])
            try await workspace.insert(into: staged, columns: ["k", "v"], rows: [[.integer(2), .text("e")]])
            let order = try await workspace.query("SELECT v FROM \(staged) ORDER BY \(workspace.dialect.arrivalOrder)", [])
            #expect(order.rows == [[.text("a")], [.text("b")], [.text("c")], [.text("d")], [.text("e")]])
            await workspace.close()
        }
    }

    /// A load hands its batches over as it types them: they land in order, and a failure of
    /// the sender reaches the writer as that failure.
    @Test(arguments: Backend.all)
    func aLoadsBatchesLandInOrderAndItsFailureReachesTheWriter(_ backend: Backend) async throws {
        struct ReadFailed: Error {}
        try await backend.withWarehouse { warehouse in
            let workspace = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t", "u"], existing: false)
            let staged = try await workspace.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            let batches = RowBatches(capacity: 1)
            async let writing: Void = workspace.insert(into: staged, columns: ["k", "v"], batches: batches)
            for batch in 0..<5 {
                try await batches.send((0..<3).map { [.integer(Int64(batch * 3 + $0)), .text("b\(batch)")] })
            }
            await batches.finish()
            try await writing
            let order = try await workspace.query("SELECT k FROM \(staged) ORDER BY \(workspace.dialect.arrivalOrder)", [])
            #expect(order.rows == (0..<15).map { [.integer(Int64($0))] })

            let failing = try await workspace.stage("u", columns: pair, change: .replace, primaryKey: [], step: "s")
            let broken = RowBatches()
            let failingWrite = Task { try await workspace.insert(into: failing, columns: ["k", "v"], batches: broken) }
            try await broken.send([[.integer(1), .text("x")]])
            await broken.fail(ReadFailed())
            await #expect(throws: ReadFailed.self) { try await failingWrite.value }
            await workspace.close()
        }
    }

    // MARK: Publishing each kind of change

    @Test(arguments: Backend.all)
    func replaceSwapsTheWholeTable(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let first = try await publish(
                warehouse, run: "r1", table: "t", columns: pair, change: .replace, rows: [[.integer(1), .text("a")], [.integer(2), .text("b")]])
            #expect(first == TablePublication(table: "t", step: "s", inserted: 2, updated: 0, unchanged: 0, deleted: 0))
            let second = try await publish(warehouse, run: "r2", table: "t", columns: pair, change: .replace, rows: [[.integer(3), .text("c")]])
            #expect(second == TablePublication(table: "t", step: "s", inserted: 1, updated: 0, unchanged: 0, deleted: 2))
            #expect(try await rows(warehouse, "SELECT k, v FROM t ORDER BY k") == [[.integer(3), .text("c")]])
        }
    }

    @Test(arguments: Backend.all)
    func upsertReplaceMatchesKeysNullSafely(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let columns = [ColumnDefinition("g", .string), ColumnDefinition("total", .int64)]
            let change = StagedChange.upsert(key: ["g"], onConflict: .replace)
            try await publish(
                warehouse, run: "r1", table: "agg", columns: columns, change: change, primaryKey: ["g"],
                rows: [[.null, .integer(1)], [.text("x"), .integer(2)]])
            let publication = try await publish(
                warehouse, run: "r2", table: "agg", columns: columns, change: change, primaryKey: ["g"],
                rows: [[.null, .integer(10)], [.text("y"), .integer(3)]])
            #expect(publication == TablePublication(table: "agg", step: "s", inserted: 1, updated: 1, unchanged: 0, deleted: 0))
            #expect(
                try await rows(warehouse, "SELECT g, total FROM agg ORDER BY total")
                    == [[.text("x"), .integer(2)], [.text("y"), .integer(3)], [.null, .integer(10)]], "a null group is one group")
        }
    }

    @Test(arguments: Backend.all)
    func latestWinsKeepsTheNewerVersionWhenAnOlderArrivesLater(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let change = StagedChange.upsert(key: ["k"], onConflict: .latest(by: "version"))
            try await publish(
                warehouse, run: "r1", table: "t", columns: versioned, change: change, primaryKey: ["k"],
                rows: [
                    [.integer(1), .integer(5), .text("five")], [.integer(2), .integer(5), .text("five")], [.integer(3), .null, .text("none")],
                    [.integer(4), .integer(1), .text("one")],
                ])
            // An older version (1), a tie (2), a version where none was (3), a null version (4), a new key (5).
            let publication = try await publish(
                warehouse, run: "r2", table: "t", columns: versioned, change: change, primaryKey: ["k"],
                rows: [
                    [.integer(1), .integer(3), .text("three")], [.integer(2), .integer(5), .text("tie")], [.integer(3), .integer(2), .text("two")],
                    [.integer(4), .null, .text("null")], [.integer(5), .integer(1), .text("new")],
                ])
            #expect(publication == TablePublication(table: "t", step: "s", inserted: 1, updated: 1, unchanged: 3, deleted: 0))
            #expect(
                try await rows(warehouse, "SELECT k, v FROM t ORDER BY k")
                    == [
                        [.integer(1), .text("five")], [.integer(2), .text("five")], [.integer(3), .text("two")], [.integer(4), .text("one")],
                        [.integer(5), .text("new")],
                    ])
        }
    }

    @Test(arguments: Backend.all)
    func latestWinsIsAppliedAgainWhenAnotherRunPublishedInBetween(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let change = StagedChange.upsert(key: ["k"], onConflict: .latest(by: "version"))
            let slow = try await warehouse.workspace(org: "acme", runID: "slow", targets: [], existing: false)
            let staged = try await slow.stage("t", columns: versioned, change: change, primaryKey: ["k"], step: "merge")
            try await slow.insert(
                into: staged, columns: ["k", "version", "v"],
                rows: [[.integer(1), .integer(7), .text("seven")], [.integer(2), .integer(7), .text("seven")]])
            try await publish(
                warehouse, run: "fast", table: "t", columns: versioned, change: change, primaryKey: ["k"],
                rows: [[.integer(1), .integer(9), .text("nine")]])
            let publication = try await slow.publish()
            #expect(publication == [TablePublication(table: "t", step: "merge", inserted: 1, updated: 0, unchanged: 1, deleted: 0)])
            #expect(
                try await rows(warehouse, "SELECT k, v FROM t ORDER BY k") == [[.integer(1), .text("nine")], [.integer(2), .text("seven")]],
                "the newer version stays")
        }
    }

    @Test(arguments: Backend.all)
    func firstWinsKeepsWhatIsPublished(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let change = StagedChange.upsert(key: ["k"], onConflict: .keepPublished)
            try await publish(
                warehouse, run: "r1", table: "t", columns: pair, change: change, primaryKey: ["k"], rows: [[.integer(1), .text("first")]])
            let publication = try await publish(
                warehouse, run: "r2", table: "t", columns: pair, change: change, primaryKey: ["k"],
                rows: [[.integer(1), .text("second")], [.integer(2), .text("new")]])
            #expect(publication == TablePublication(table: "t", step: "s", inserted: 1, updated: 0, unchanged: 1, deleted: 0))
            #expect(try await rows(warehouse, "SELECT k, v FROM t ORDER BY k") == [[.integer(1), .text("first")], [.integer(2), .text("new")]])
        }
    }

    @Test(arguments: Backend.all)
    func replacePartitionsReplacesOnlyThePartitionsStaged(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let columns = [ColumnDefinition("day", .date), ColumnDefinition("v", .int64)]
            let change = StagedChange.replacePartitions(column: "day")
            try await publish(
                warehouse, run: "r1", table: "daily", columns: columns, change: change,
                rows: [[.text("2024-01-01"), .integer(1)], [.text("2024-01-02"), .integer(2)], [.text("2024-01-02"), .integer(3)]])
            let publication = try await publish(
                warehouse, run: "r2", table: "daily", columns: columns, change: change, rows: [[.text("2024-01-02"), .integer(9)]])
            #expect(publication == TablePublication(table: "daily", step: "s", inserted: 1, updated: 0, unchanged: 0, deleted: 2))
            #expect(
                try await rows(warehouse, "SELECT day, v FROM daily ORDER BY day") == [
                    [.text("2024-01-01"), .integer(1)], [.text("2024-01-02"), .integer(9)],
                ])
        }
    }

    @Test(arguments: Backend.all)
    func theRunSeesStagedUpsertsComposedWithPublishedRows(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let change = StagedChange.upsert(key: ["k"], onConflict: .latest(by: "version"))
            try await publish(
                warehouse, run: "r1", table: "t", columns: versioned, change: change, primaryKey: ["k"],
                rows: [[.integer(1), .integer(5), .text("five")], [.integer(2), .integer(1), .text("old")]])
            let workspace = try await warehouse.workspace(org: "acme", runID: "r2", targets: ["t"], existing: false)
            let staged = try await workspace.stage("t", columns: versioned, change: change, primaryKey: ["k"], step: "m")
            try await workspace.insert(
                into: staged, columns: ["k", "version", "v"],
                rows: [
                    [.integer(1), .integer(3), .text("older")], [.integer(2), .integer(2), .text("newer")], [.integer(3), .integer(1), .text("new")],
                ])
            let source = try #require(try await workspace.source("t"))
            #expect(
                try await workspace.query("SELECT k, v FROM \(source) ORDER BY k", []).rows
                    == [[.integer(1), .text("five")], [.integer(2), .text("newer")], [.integer(3), .text("new")]])
            #expect(try await workspace.columns(of: "t")?.map(\.name) == ["k", "version", "v"], "the run's columns, nothing of the warehouse's own")
            #expect(try await workspace.isStaged("t"))
            #expect(try await workspace.source("missing") == nil)
            await workspace.close()
        }
    }

    @Test(arguments: Backend.all)
    func collapseKeepsTheRowSQLiteKeepsRowByRow(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let workspace = try await warehouse.workspace(org: "acme", runID: "r1")
            let dialect = workspace.dialect
            let raw = [ColumnDefinition("k", .int64), ColumnDefinition("version", .int64), ColumnDefinition("tag", .string)]
            let rawTable = try await workspace.stage("raw", columns: raw, change: .scratch)
            try await workspace.insert(
                into: rawTable, columns: ["k", "version", "tag"],
                rows: [
                    [.integer(3), .null, .text("g")], [.integer(1), .integer(5), .text("a")], [.integer(2), .null, .text("e")],
                    [.integer(1), .integer(7), .text("b")], [.integer(3), .integer(1), .text("h")], [.integer(1), .integer(7), .text("c")],
                    [.integer(2), .null, .text("f")], [.integer(1), .integer(3), .text("d")], [.integer(3), .null, .text("i")],
                ])
            let source = try #require(try await workspace.source("raw"))
            let names = ["k", "version", "tag"].map(dialect.quote)
            for (newerBy, expected) in [("version", ["c", "e", "h"]), (nil, ["a", "e", "g"])] as [(String?, [String])] {
                let table = newerBy == nil ? "first" : "latest"
                let staged = try await workspace.stage(table, columns: raw, change: .upsert(key: ["k"], onConflict: .replace), primaryKey: ["k"])
                try await workspace.execute(
                    dialect.collapseStatement(
                        into: staged, columns: names, select: names, from: source, key: [dialect.quote("k")],
                        newerBy: newerBy.map(dialect.quote), updating: Array(names.dropFirst())), [])
                let tags = try await workspace.query("SELECT tag FROM \(staged) ORDER BY k", []).rows
                #expect(tags == expected.map { [.text($0)] }, "newer by \(newerBy ?? "nothing")")
            }
            await workspace.close()
        }
    }

    // MARK: All or nothing

    @Test(arguments: Backend.all)
    func aFailedPublishLeavesEveryTableAsItWas(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            try await publish(warehouse, run: "r1", table: "a", columns: pair, change: .replace, rows: [[.integer(1), .text("a")]])
            // Published without a key: two rows of key 1, which the upsert's unique key refuses.
            try await publish(
                warehouse, run: "r2", table: "b", columns: pair, change: .replace, rows: [[.integer(1), .text("x")], [.integer(1), .text("y")]])
            let workspace = try await warehouse.workspace(org: "acme", runID: "r3", targets: ["a", "b"], existing: false)
            let a = try await workspace.stage("a", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await workspace.insert(into: a, columns: ["k", "v"], rows: [[.integer(9), .text("new")]])
            let b = try await workspace.stage(
                "b", columns: pair, change: .upsert(key: ["k"], onConflict: .keepPublished), primaryKey: ["k"], step: "s")
            try await workspace.insert(into: b, columns: ["k", "v"], rows: [[.integer(2), .text("z")]])
            try await workspace.stageCursor("p/load", value: "42")
            await #expect(throws: (any Error).self) { try await workspace.publish() }
            await workspace.close()
            #expect(try await rows(warehouse, "SELECT k, v FROM a") == [[.integer(1), .text("a")]])
            #expect(try await rows(warehouse, "SELECT k, v FROM b ORDER BY v") == [[.integer(1), .text("x")], [.integer(1), .text("y")]])
            #expect(try await warehouse.wasPublished(org: "acme", runID: "r3") == false)
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r3"), "kept for a resume")
            let again = try await warehouse.workspace(org: "acme", runID: "r4", targets: [], existing: false)
            #expect(try await again.cursor("p/load") == nil, "the cursor did not move without its data")
            await again.close()
        }
    }

    /// A worker that stalled past its lease while another took its run over (reopening the
    /// staging) must not publish when it wakes: the opening that came last is the staging's,
    /// and the run publishes once, from it.
    @Test(arguments: Backend.all)
    func onlyTheLastOpeningOfAStagingPublishes(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let stalled = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await stalled.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await stalled.insert(into: staged, columns: ["k", "v"], rows: [[.integer(1), .text("stale")]])

            let takeover = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: true)
            #expect(await code { _ = try await stalled.publish() } == .stagingSuperseded)
            await stalled.close()
            #expect(try await !warehouse.wasPublished(org: "acme", runID: "r1"))

            let again = try await takeover.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await takeover.insert(into: again, columns: ["k", "v"], rows: [[.integer(1), .text("fresh")]])
            #expect(try await takeover.publish().count == 1)
            #expect(try await warehouse.wasPublished(org: "acme", runID: "r1"))
            #expect(try await rows(warehouse, "SELECT k, v FROM t") == [[.integer(1), .text("fresh")]])
        }
    }

    /// The same worker, woken in the middle of a step: every kind of write it still makes into
    /// the staging another opening took over is refused, before it changes anything, and what
    /// that opening staged (tables, their rows, cursors) stays as it left it.
    @Test(arguments: Backend.all)
    func aSupersededOpeningWritesNothingIntoTheStaging(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let stalled = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await stalled.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await stalled.insert(into: staged, columns: ["k", "v"], rows: [[.integer(1), .text("stale")]])

            let takeover = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: true)
            let again = try await takeover.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            #expect(again == staged, "one staging, one name for its table")
            try await takeover.insert(into: again, columns: ["k", "v"], rows: [[.integer(1), .text("fresh")]])
            try await takeover.stageCursor("p/load", value: "fresh")

            let writes: [(String, () async throws -> Void)] = [
                ("insert", { try await stalled.insert(into: staged, columns: ["k", "v"], rows: [[.integer(2), .text("stale")]]) }),
                (
                    "a streamed load",
                    {
                        let batches = RowBatches()
                        try await batches.send([[.integer(7), .text("stale")]])
                        await batches.finish()
                        try await stalled.insert(into: staged, columns: ["k", "v"], batches: batches)
                    }
                ),
                ("execute", { _ = try await stalled.execute("INSERT INTO \(staged) (k, v) VALUES (3, 'stale')", []) }),
                ("stage again", { _ = try await stalled.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s") }),
                ("stage another", { _ = try await stalled.stage("u", columns: pair, change: .scratch, primaryKey: [], step: "s") }),
                ("stage a cursor", { try await stalled.stageCursor("p/load", value: "stale") }),
                (
                    "a procedure script",
                    {
                        _ = try await stalled.runScript(
                            "INSERT INTO t (k, v) VALUES (4, 'stale')", named: [:], writes: [(table: "t", columns: self.pair)], step: "s")
                    }
                ),
                (
                    "a procedure's rows",
                    { _ = try await stalled.insertProcedureRows(into: staged, columns: ["k", "v"], select: "SELECT 5, 'stale'", []) }
                ),
                ("discard", { try await stalled.discard() }),
            ]
            for (write, body) in writes {
                #expect(await code(of: body) == .stagingSuperseded, "\(write)")
            }

            #expect(try await takeover.isStaged("t"))
            #expect(try await !takeover.isStaged("u"))
            let source = try #require(try await takeover.source("t"))
            #expect(try await takeover.query("SELECT k, v FROM \(source) ORDER BY k", []).rows == [[.integer(1), .text("fresh")]])
            #expect(try await takeover.publish().count == 1)
            #expect(try await rows(warehouse, "SELECT k, v FROM t") == [[.integer(1), .text("fresh")]])
            let next = try await warehouse.workspace(org: "acme", runID: "r2", targets: [], existing: false)
            #expect(try await next.cursor("p/load") == "fresh")
            await next.close()

            // Its staging published and gone, the run's: still nothing of the stalled one's lands.
            #expect(
                await code { try await stalled.insert(into: staged, columns: ["k", "v"], rows: [[.integer(6), .text("stale")]]) }
                    == .stagingSuperseded)
            await stalled.close()
            #expect(try await !warehouse.hasStaging(org: "acme", runID: "r1"))
            #expect(try await rows(warehouse, "SELECT k, v FROM t") == [[.integer(1), .text("fresh")]])
        }
    }

    /// On PostgreSQL a load is one transaction, and it holds the staging's owner row shared
    /// while it streams: an opening that takes the staging over waits for the load to end, so
    /// the load, begun while its opening owned the staging, lands whole; every write after the
    /// takeover is refused.
    @Test(.enabled(if: PostgresTestDatabase.isAvailable))
    func aTakeoverWaitsForALoadUnderWayOnPostgreSQL() async throws {
        try await Backend.postgres.withWarehouse { warehouse in
            let stalled = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await stalled.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            let batches = RowBatches(capacity: 1)
            let loading = Task { try await stalled.insert(into: staged, columns: ["k", "v"], batches: batches) }
            try await batches.send([[.integer(1), .text("stale")]])
            // Room for a second batch once the load took the first: its COPY is under way.
            try await batches.send([[.integer(2), .text("stale")]])

            let opened = Mutex(false)
            let takingOver = Task {
                let workspace = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: true)
                opened.withLock { $0 = true }
                return workspace
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(!opened.withLock { $0 }, "the takeover did not wait for the load under way")
            await batches.finish()
            try await loading.value
            let takeover = try await takingOver.value
            #expect(try await takeover.query("SELECT k FROM \(staged) ORDER BY k", []).rows == [[.integer(1)], [.integer(2)]])
            #expect(
                await code { try await stalled.insert(into: staged, columns: ["k", "v"], rows: [[.integer(3), .text("stale")]]) }
                    == .stagingSuperseded)
            await stalled.close()
            await takeover.close()
        }
    }

    @Test(arguments: Backend.all)
    func theMarkerAndTheCursorCommitWithTheData(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let workspace = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await workspace.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await workspace.insert(into: staged, columns: ["k", "v"], rows: [[.integer(1), .text("a")]])
            try await workspace.stageCursor("p/load", value: "2024-05-01T00:00:00Z")
            #expect(try await warehouse.wasPublished(org: "acme", runID: "r1") == false)
            try await workspace.publish()
            #expect(try await warehouse.wasPublished(org: "acme", runID: "r1"))
            #expect(try await warehouse.wasPublished(org: "other", runID: "r1") == false)
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r1") == false, "publishing removes the staging")
            let next = try await warehouse.workspace(org: "acme", runID: "r2", targets: [], existing: false)
            #expect(try await next.cursor("p/load") == "2024-05-01T00:00:00Z")
            #expect(try await next.cursor("p/other") == nil)
            await next.close()
        }
    }

    // MARK: Stagings

    @Test(arguments: Backend.all)
    func aClosedStagingStaysForAResumeUntilRemoved(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let first = try await warehouse.workspace(org: "acme", runID: "r1", targets: [], existing: false)
            let staged = try await first.stage("x", columns: pair, change: .scratch)
            try await first.insert(into: staged, columns: ["k", "v"], rows: [[.integer(1), .text("a")]])
            await first.close()
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r1"))
            #expect(try await warehouse.hasStaging(org: "other", runID: "r1") == false)
            #expect(try await warehouse.stagings().map { [$0.org, $0.runID] } == [["acme", "r1"]])

            let resumed = try await warehouse.workspace(org: "acme", runID: "r1", targets: [], existing: true)
            #expect(try await resumed.isStaged("x"))
            let source = try #require(try await resumed.source("x"))
            #expect(try await resumed.query("SELECT k, v FROM \(source)", []).rows == [[.integer(1), .text("a")]])
            #expect(try await warehouse.removeStaging(org: "acme", runID: "r1") == false, "a run has it open")
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r1"))
            await resumed.close()
            #expect(try await warehouse.removeStaging(org: "acme", runID: "r1"))
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r1") == false)
            #expect(try await warehouse.stagings().isEmpty)
            #expect(await code { _ = try await warehouse.workspace(org: "acme", runID: "r1", targets: [], existing: true) } == .notResumable)

            let discarded = try await warehouse.workspace(org: "acme", runID: "r2", targets: [], existing: false)
            _ = try await discarded.stage("x", columns: pair, change: .replace)
            try await discarded.discard()
            #expect(try await warehouse.hasStaging(org: "acme", runID: "r2") == false)
            #expect(try await warehouse.wasPublished(org: "acme", runID: "r2") == false)
        }
    }

    // MARK: Holds

    @Test(arguments: Backend.all)
    func aSecondRunWaitsForTheFirstsHoldAndLosesNoUpdate(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let columns = [ColumnDefinition("total", .int64)]
            try await publish(warehouse, run: "r0", table: "counter", columns: columns, change: .replace, rows: [[.integer(0)]])
            /// A run that reads the counter and publishes it plus one: a lost update without holds.
            @Sendable func increment(_ workspace: any RunWorkspace) async throws {
                try await workspace.holdTargets()
                let source = try #require(try await workspace.source("counter"))
                guard case .integer(let total) = try await workspace.query("SELECT total FROM \(source)", []).rows.first?.first else {
                    throw StepFailure(.error, "no total")
                }
                let staged = try await workspace.stage("counter", columns: columns, change: .replace)
                try await workspace.insert(into: staged, columns: ["total"], rows: [[.integer(total + 1)]])
            }
            let first = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["counter", "other"], existing: false)
            let second = try await warehouse.workspace(org: "acme", runID: "r2", targets: ["other", "COUNTER"], existing: false)
            try await increment(first)
            let waiting = Task { try await increment(second) }
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await second.isStaged("counter") == false, "the second run still waits for the tables")
            try await first.publish()
            try await waiting.value
            try await second.publish()
            #expect(try await rows(warehouse, "SELECT total FROM counter") == [[.integer(2)]])

            // A wait can be cancelled.
            let holder = try await warehouse.workspace(org: "acme", runID: "r3", targets: ["counter"], existing: false)
            try await holder.holdTargets()
            let blocked = try await warehouse.workspace(org: "acme", runID: "r4", targets: ["counter"], existing: false)
            let cancelled = Task { try await blocked.holdTargets() }
            try await Task.sleep(for: .milliseconds(100))
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            await blocked.close()
            await holder.close()
        }
    }

    // MARK: Types

    @Test(arguments: Backend.all)
    func valuesOfEveryTypeReadBackInTheSameForm(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let columns: [ColumnDefinition] = [
                .init("i", .int64), .init("f", .float64), .init("n", .numeric), .init("b", .bool), .init("s", .string), .init("y", .bytes),
                .init("d", .date), .init("ts", .timestamp), .init("dt", .datetime), .init("tm", .time), .init("j", .json),
            ]
            let values: [WarehouseValue] = [
                .integer(-42), .real(1.5), .text("20.520226729"), .integer(1), .text("tab\there \\ \"q\" ünï\nline\r"),
                .blob([0, 1, 0xFF, 0x5C, 0x09, 0x0A]), .text("2024-02-29"), .text("2024-02-29T13:14:15.123456Z"),
                .text("2024-02-29T13:14:15.000000"), .text("13:14:15"), .text("{\"b\":1, \"a\":[2]}"),
            ]
            // A decimal comes back as the canonical text it went in as, on both backends: exact.
            let expected = values
            try await publish(
                warehouse, run: "r1", table: "typed", columns: columns, change: .replace,
                rows: [values, Array(repeating: .null, count: columns.count)])
            let list = columns.map(\.name).joined(separator: ", ")
            let read = try await rows(warehouse, "SELECT \(list) FROM typed ORDER BY coalesce(i, 0)")
            #expect(read == [expected, Array(repeating: .null, count: columns.count)])
        }
    }

    /// Sandbox roles are the server's, advisory locks only a database's: warehouses of several
    /// databases on one server (several projects, or these tests) that set up the same org at
    /// once all get there, none failing on the role another created or granted meanwhile.
    @Test(arguments: Backend.all.filter { $0 == .postgres })
    func warehousesOfSeveralDatabasesSetUpOneOrgAtOnce(_ backend: Backend) async throws {
        guard let server = try Backend.Postgres.settings() else { return }
        let admin = try await PostgresPool.open(server)
        let prefix = "race_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let names = (0..<6).map { "\(prefix)_db\($0)" }
        for name in names { try await admin.execute("CREATE DATABASE \(name)") }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for name in names {
                    group.addTask {
                        var settings = server
                        settings.database = name
                        settings.maximumConnections = 2
                        let pool = try await PostgresPool.open(settings)
                        do {
                            let warehouse = try await PostgresWarehouse(pool: pool, schemaPrefix: String(prefix))
                            let workspace = try await warehouse.workspace(org: "acme", runID: "r1")
                            await workspace.close()
                        } catch {
                            await pool.close()
                            throw error
                        }
                        await pool.close()
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            for name in names { try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
            try? await admin.execute("DROP ROLE IF EXISTS \(prefix)_sandbox_acme")
            await admin.close()
            throw error
        }
        for name in names { try await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        try await admin.execute("DROP ROLE IF EXISTS \(prefix)_sandbox_acme")
        await admin.close()
    }

    /// A target published for the first time is the staged table moved into the org's schema,
    /// not a copy: it must come out as a table made there would. No arrival column, the key's
    /// unique index under its published name (the next run's upsert finds it), nothing more
    /// than reading for the org's sandbox role.
    @Test(arguments: Backend.all.filter { $0 == .postgres })
    func aTargetPublishedFirstIsShapedAsOneMadeInTheOrgsSchema(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let postgres = try #require(warehouse as? PostgresWarehouse)
            let change = StagedChange.upsert(key: ["k"], onConflict: .latest(by: "version"))
            let first = try await publish(
                warehouse, run: "r1", table: "u", columns: versioned, change: change, primaryKey: ["k"],
                rows: [[.integer(1), .integer(1), .text("a")], [.integer(2), .integer(1), .text("b")]])
            #expect(first == TablePublication(table: "u", step: "s", inserted: 2, updated: 0, unchanged: 0, deleted: 0))
            let table = "'\(postgres.orgSchema("acme")).u'::regclass"
            #expect(
                try await rows(
                    warehouse, "SELECT attname::text FROM pg_attribute WHERE attrelid = \(table) AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
                    == [[.text("k")], [.text("version")], [.text("v")]])
            #expect(
                try await rows(
                    warehouse,
                    "SELECT c.relname::text, i.indisunique FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indrelid = \(table)")
                    == [[.text("u__key"), .integer(1)]])
            let role = postgres.sandboxRole("acme")
            #expect(
                try await rows(
                    warehouse,
                    """
                    SELECT has_table_privilege('\(role)', \(table), 'SELECT'), has_table_privilege('\(role)', \(table), 'INSERT'),
                        has_table_privilege('\(role)', \(table), 'UPDATE'), has_table_privilege('\(role)', \(table), 'DELETE')
                    """) == [[.integer(1), .integer(0), .integer(0), .integer(0)]])
            let second = try await publish(
                warehouse, run: "r2", table: "u", columns: versioned, change: change, primaryKey: ["k"],
                rows: [[.integer(1), .integer(2), .text("a2")], [.integer(3), .integer(1), .text("c")]])
            #expect(second == TablePublication(table: "u", step: "s", inserted: 1, updated: 1, unchanged: 0, deleted: 0))
            #expect(
                try await rows(warehouse, "SELECT k, version, v FROM u ORDER BY k")
                    == [[.integer(1), .integer(2), .text("a2")], [.integer(2), .integer(1), .text("b")], [.integer(3), .integer(1), .text("c")]])
        }
    }

    /// A staged table a step wrote is analyzed before the next step reads it, and again after
    /// further writes: PostgreSQL plans a table it has no statistics of blind (an aggregate
    /// over a fresh million-row load sorted on disk).
    @Test(arguments: Backend.all.filter { $0 == .postgres })
    func aStagedTableIsAnalyzedBeforeItIsReadAfterBeingWritten(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let workspace = try await warehouse.workspace(org: "acme", runID: "r1", targets: ["t"], existing: false)
            let staged = try await workspace.stage("t", columns: pair, change: .replace, primaryKey: [], step: "s")
            try await workspace.insert(into: staged, columns: ["k", "v"], rows: (0..<1000).map { [.integer(Int64($0)), .text("v\($0)")] })
            func estimate() async throws -> [[WarehouseValue]] {
                try await workspace.query("SELECT reltuples::bigint FROM pg_class WHERE oid = '\(staged)'::regclass", []).rows
            }
            #expect(try await estimate() == [[.integer(-1)]], "never analyzed")
            _ = try await workspace.source("t")
            #expect(try await estimate() == [[.integer(1000)]])
            _ = try await workspace.execute("INSERT INTO \(staged) (k, v) SELECT k + 1000, v FROM \(staged) WHERE k < 500", [])
            _ = try await workspace.source("t")
            #expect(try await estimate() == [[.integer(1500)]])
            try await workspace.execute("DELETE FROM \(staged) WHERE k < 100", [])
            _ = try await workspace.source("t")
            #expect(try await estimate() == [[.integer(1400)]])
            await workspace.close()
        }
    }

    @Test(arguments: Backend.all.filter { $0 == .postgres })
    func postgresKeepsNumericExactAndTypesFaithful(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            let columns: [ColumnDefinition] = [.init("n", .numeric), .init("ts", .timestamp), .init("d", .date), .init("b", .bool)]
            try await publish(
                warehouse, run: "r1", table: "exact", columns: columns, change: .replace,
                rows: [
                    [.text("12345678901234567890.123456789"), .text("2024-02-29T23:30:00.000000Z"), .text("2024-02-29"), .integer(0)],
                    [.text("20.520226729"), .null, .null, .null],
                ])
            let texts = try await rows(warehouse, "SELECT n::text AS exact_text FROM exact ORDER BY n")
            #expect(texts == [[.text("20.520226729")], [.text("12345678901234567890.123456789")]])
            #expect(
                try await rows(warehouse, "SELECT n FROM exact ORDER BY n") == [[.text("20.520226729")], [.text("12345678901234567890.123456789")]],
                "decimals come back as exact text, never a double")
            #expect(
                try await rows(warehouse, "SELECT pg_typeof(n)::text, pg_typeof(ts)::text, pg_typeof(d)::text, pg_typeof(b)::text FROM exact LIMIT 1")
                    == [[.text("numeric"), .text("timestamp with time zone"), .text("date"), .text("boolean")]])
            let workspace = try await warehouse.workspace(org: "acme", runID: "r2")
            #expect(try await workspace.columns(of: "exact")?.map(\.type) == [.numeric, .timestamp, .date, .bool])
            await workspace.close()
        }
    }

    // MARK: Procedures

    @Test(arguments: Backend.all)
    func aScriptWritesCopiesThatPublishTogether(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            try await publish(
                warehouse, run: "r1", table: "t", columns: pair, change: .replace, rows: [[.integer(1), .text("a")], [.integer(2), .text("b")]])
            let workspace = try await warehouse.workspace(org: "acme", runID: "r2", targets: ["t", "agg"], existing: false)
            try await workspace.holdTargets()
            let changed = try await workspace.runScript(
                "DELETE FROM t WHERE k = :gone;\nINSERT INTO t (k, v) VALUES (3, :v);", named: ["gone": .integer(1), "v": .text("c")],
                writes: [(table: "t", columns: pair)], step: "script")
            #expect(changed == 2)
            #expect(try await rows(warehouse, "SELECT k FROM t ORDER BY k") == [[.integer(1)], [.integer(2)]], "nothing published yet")
            let agg = try await workspace.stage("agg", columns: [.init("n", .int64)], change: .replace)
            let inserted = try await workspace.insertProcedureRows(into: agg, columns: ["n"], select: "SELECT count(*) FROM t", [])
            #expect(inserted == 1)
            let publications = try await workspace.publish()
            #expect(publications.map(\.table) == ["t", "agg"])
            #expect(try await rows(warehouse, "SELECT k, v FROM t ORDER BY k") == [[.integer(2), .text("b")], [.integer(3), .text("c")]])
            #expect(try await rows(warehouse, "SELECT n FROM agg") == [[.integer(2)]], "the aggregate read the script's result")
        }
    }

    @Test(arguments: Backend.all)
    func aQueryProcedureStopsAtMaxRows(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            try await publish(
                warehouse, run: "r1", table: "nums", columns: [.init("n", .int64)], change: .replace, rows: (1...50).map { [.integer(Int64($0))] })
            let workspace = try await warehouse.workspace(org: "acme", runID: "r2")
            let p = workspace.dialect.placeholder(1)
            let limited = try await workspace.queryProcedure("SELECT n FROM nums WHERE n > \(p) ORDER BY n", [.integer(10)], maxRows: 3)
            #expect(limited == QueryResult(columns: ["n"], rows: [[.integer(11)], [.integer(12)], [.integer(13)]]))
            let all = try await workspace.queryProcedure("SELECT n FROM nums", [])
            #expect(all.rows.count == 50)
            let probe = try await workspace.queryProcedure("SELECT * FROM (SELECT n, n * 2 AS twice FROM nums) AS result LIMIT 0", [])
            #expect(probe == QueryResult(columns: ["n", "twice"], rows: []), "the columns even without rows")
            await workspace.close()
        }
    }

    @Test(arguments: Backend.all)
    func theSandboxRefusesWhatAProcedureMayNotDo(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            try await publish(warehouse, run: "r1", table: "t", columns: pair, change: .replace, rows: [[.integer(1), .text("a")]])
            try await publish(warehouse, run: "r2", table: "other", columns: pair, change: .replace, rows: [[.integer(1), .text("a")]])
            let workspace = try await warehouse.workspace(org: "acme", runID: "r3", targets: ["t"], existing: false)
            var refused = [
                "BEGIN", "COMMIT", "CREATE TABLE made (a INTEGER)", "DELETE FROM other", "UPDATE other SET v = 'x'",
                "INSERT INTO other (k, v) VALUES (2, 'b')", "DROP TABLE other",
            ]
            if backend == .postgres {
                let schema = warehouse.orgSchema("acme")
                refused += [
                    "SET ROLE postgres", "RESET ROLE", "SET SESSION AUTHORIZATION postgres", "COPY t TO STDOUT", "COPY t FROM '/etc/passwd'",
                    "DO $$ BEGIN PERFORM 1; END $$", "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql",
                    "SELECT pg_read_file('/etc/passwd')", "SELECT lo_import('/etc/passwd')", "SELECT set_config('role', 'none', true)",
                    "SELECT dblink('host=x', 'SELECT 1')", "SELECT pg_catalog.pg_ls_dir('.')", "SELECT pg_advisory_lock(1)",
                    "INSERT INTO \"\(schema)\".t (k, v) VALUES (2, 'b')", "LISTEN x", "VACUUM", "SELECT query_to_xml('SELECT 1', true, true, '')",
                ]
            }
            for sql in refused {
                let code = await code { _ = try await workspace.runScript(sql, named: [:], writes: [(table: "t", columns: pair)], step: "s") }
                #expect(code == .procedureRefused, "\(sql)")
            }
            for sql in ["DELETE FROM t", "SELECT 1; SELECT 2", "CREATE TEMP TABLE x (a INTEGER)"] {
                let code = await code { _ = try await workspace.queryProcedure(sql, []) }
                #expect(code == .procedureRefused, "a query may only read: \(sql)")
            }
            #expect(try await rows(warehouse, "SELECT k, v FROM other") == [[.integer(1), .text("a")]], "nothing refused changed anything")
            #expect(try await rows(warehouse, "SELECT k, v FROM t") == [[.integer(1), .text("a")]])
            await workspace.close()
        }
    }

    @Test(arguments: Backend.all)
    func aProcedureReadsNeitherAnotherOrgsTablesNorAnotherRunsStaging(_ backend: Backend) async throws {
        try await backend.withWarehouse { warehouse in
            try await publish(
                warehouse, org: "alpha", run: "a1", table: "secret", columns: pair, change: .replace, rows: [[.integer(7), .text("alpha's")]])
            let other = try await warehouse.workspace(org: "beta", runID: "b1", targets: [], existing: false)
            let pending = try await other.stage("pending", columns: pair, change: .replace)
            try await other.insert(into: pending, columns: ["k", "v"], rows: [[.integer(8), .text("b1's")]])
            let workspace = try await warehouse.workspace(org: "beta", runID: "b2", targets: [], existing: false)
            var attempts = ["SELECT v FROM secret", "SELECT v FROM pending"]
            if backend == .postgres {
                attempts += [
                    "SELECT v FROM \"\(warehouse.orgSchema("alpha"))\".secret", "SELECT v FROM \"\(warehouse.viewSchema("b1"))\".pending",
                    "SELECT v FROM \"\(warehouse.stagingSchema("b1"))\".pending", "SELECT count(*) FROM \"\(warehouse.schemaPrefix)\".staging",
                ]
            }
            for sql in attempts {
                let failed = await code { _ = try await workspace.queryProcedure(sql, []) }
                #expect(failed == .procedureRefused || failed == .procedureFailed, "\(sql)")
                let scripted = await code { _ = try await workspace.runScript("CREATE TEMP TABLE leak AS \(sql)", named: [:], writes: [], step: "s") }
                #expect(scripted == .procedureRefused || scripted == .procedureFailed, "\(sql)")
                let queried = await code { _ = try await warehouse.query(org: "beta", sql, []) }
                #expect(queried != nil, "\(sql)")
            }
            await other.close()
            await workspace.close()
        }
    }
}

/// The names of a PostgreSQL warehouse's schemas, for the cases that name them outright.
extension Warehouse {
    fileprivate func orgSchema(_ org: String) -> String { (self as? PostgresWarehouse)?.orgSchema(org) ?? "" }
    fileprivate func viewSchema(_ runID: String) -> String { (self as? PostgresWarehouse)?.viewSchema(runID) ?? "" }
    fileprivate func stagingSchema(_ runID: String) -> String { (self as? PostgresWarehouse)?.stagingSchema(runID) ?? "" }
    fileprivate var schemaPrefix: String { (self as? PostgresWarehouse)?.schemaPrefix ?? "" }
}
