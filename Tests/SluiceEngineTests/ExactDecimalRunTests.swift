import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

/// Cost data kept exactly: NUMERIC from ingest to the published table, sums to the last digit,
/// result tables typed, bad decimals quarantined with their line.
@Suite struct ExactDecimalRunTests {
    /// A FOCUS-shaped export: 3,000 line items over three charge days, costs with up to nine
    /// digits after the point, as providers write them; some negative (credits).
    static func focusExport() -> (csv: String, totals: [String: Decimal]) {
        var csv = "BillingAccountId,ChargePeriodStart,ServiceName,BilledCost,EffectiveCost\n"
        var totals: [String: Decimal] = [:]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for line in 0..<3000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let day = "2025-06-0\(2 + line % 3)"
            let whole = (state >> 33) % 40
            let fraction = String((state >> 7) % 1_000_000_000)
            let digits = String(repeating: "0", count: 9 - fraction.count) + fraction
            let sign = line % 17 == 0 ? "-" : ""
            let cost = "\(sign)\(whole).\(digits)"
            csv += "ba-1,\(day),Compute Engine,\(cost),\(cost)\n"
            totals[day, default: 0] += Decimal(string: cost)!
        }
        return (csv, totals)
    }

    @Test(arguments: Backend.all) func dailyTotalsOfAFocusExportEqualADecimalReferenceToTheLastDigit(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        let (csv, totals) = Self.focusExport()
        try project.write("data/focus.csv", csv)
        try project.write(
            "schemas/focus_raw.json",
            """
            [{"name": "BillingAccountId", "type": "STRING", "mode": "REQUIRED"}, {"name": "ChargePeriodStart", "type": "DATE"},
             {"name": "ServiceName", "type": "STRING"}, {"name": "BilledCost", "type": "NUMERIC"}, {"name": "EffectiveCost", "type": "BIGNUMERIC"}]
            """)
        let run = try await project.run(
            "focus_daily",
            yaml: """
                pipeline: focus_daily
                defaults: { timeout: 2m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/focus.csv }, table: focus_raw, schema: schemas/focus_raw.json } }
                  - id: daily
                    uses: aggregate
                    with:
                      from: focus_raw
                      group_by: [ChargePeriodStart]
                      measures:
                        billed: sum(BilledCost)
                        effective: sum(EffectiveCost)
                        lines: count(*)
                        average: avg(BilledCost)
                        credits: sum(CASE WHEN BilledCost < 0 THEN BilledCost ELSE 0 END)
                        scaled: sum(BilledCost * 1.1 / 100)
                      into: focus_daily
                """)
        #expect(run.state == .succeeded, "\(run.reason)")
        let result = try await project.warehouse.query(
            org: "acme", "SELECT \"ChargePeriodStart\", billed, effective, lines, credits FROM focus_daily ORDER BY \"ChargePeriodStart\"", [])
        #expect(result.rows.count == 3)
        var doublesDiffer = false
        for row in result.rows {
            let day = row[0].displayText
            let reference = try #require(totals[day])
            #expect(row[1].displayText == "\(reference)", "\(day): billed")
            #expect(row[2].displayText == "\(reference)", "\(day): effective (BIGNUMERIC)")
            #expect(row[3] == .integer(1000))
            #expect(row[4].displayText.hasPrefix("-"))
            if let double = Double(row[1].displayText), String(double) != "\(reference)" { doublesDiffer = true }
        }
        // Sums in floating point get these wrong; the reference and the published sums don't.
        let doubleSums = Dictionary(
            grouping: csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }, by: { String($0[1]) }
        ).mapValues { $0.reduce(0.0) { $0 + Double($1[3])! } }
        #expect(doubleSums.contains { day, sum in "\(sum)" != "\(totals[day]!)" } || doublesDiffer, "the data tells exact from floating point")
        // Result columns are typed from the measures: decimals, integers.
        let types = try await project.warehouse.query(org: "acme", "SELECT billed, effective, lines, average, scaled FROM focus_daily", []).types
        #expect(types == [.numeric, .numeric, .int64, .numeric, .numeric])
    }

    @Test(arguments: Backend.all) func decimalsANumericCannotHoldAreBadRowsWithTheirLine(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "data/costs.csv",
            """
            id,cost,precise
            a,"$10,100.00 ",1
            b,1234567890.123456789012345678901234567890,1234567890.123456789012345678901234567890
            c,NaN,1
            d,123456789012345678901234567890,1
            e,19.990000000,0.000000000000000000000000000000000001
            """)
        try project.write(
            "schemas/costs_raw.json",
            #"[{"name": "id", "type": "STRING"}, {"name": "cost", "type": "NUMERIC"}, {"name": "precise", "type": "BIGNUMERIC"}]"#)
        let run = try await project.run(
            "costs",
            yaml: """
                pipeline: costs
                defaults: { timeout: 1m }
                steps:
                  - id: load
                    uses: ingest
                    with: { source: { format: csv, path: data/costs.csv }, table: costs_raw, schema: schemas/costs_raw.json, on_bad_row: quarantine, max_bad_rows: "10" }
                  - { id: keep, uses: merge_dedupe, with: { from: costs_raw, into: costs, key: [id], strategy: first_wins, lineage: false } }
                """)
        #expect(run.state == .succeeded, "\(run.reason)")
        let quarantined = try await project.store.quarantined(of: run.id).map { "\($0.line): \($0.reason)" }
        #expect(
            quarantined == [
                "2: column cost: '$10,100.00 ' is not a NUMERIC",
                "3: column cost: '1234567890.123456789012345678901234567890' has 29 digits after the point, and NUMERIC keeps 9; declare the column BIGNUMERIC to keep them",
                "4: column cost: 'NaN' is not a NUMERIC",
                "5: column cost: '123456789012345678901234567890' is out of range for NUMERIC (at most 29 digits before the point)",
            ])
        #expect(try await project.rows("SELECT id, cost, precise FROM costs") == [["e", "19.99", "0.000000000000000000000000000000000001"]])
    }

    /// A procedure's result without a schema: a count stays an integer and a computed decimal
    /// a decimal, where they used to be published as text.
    @Test(arguments: Backend.all) func aProceduresResultKeepsItsTypes(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/costs.csv", "id,day,cost\na,2025-06-02,0.1\nb,2025-06-02,0.2\nc,2025-06-03,5\n")
        try project.write(
            "schemas/costs_raw.json", #"[{"name": "id", "type": "STRING"}, {"name": "day", "type": "DATE"}, {"name": "cost", "type": "NUMERIC"}]"#)
        try project.write("procedures/per_day.sql", "SELECT day, count(*) AS lines, max(cost) AS top FROM costs_raw GROUP BY day")
        let run = try await project.run(
            "per_day",
            yaml: """
                pipeline: per_day
                defaults: { timeout: 1m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/costs.csv }, table: costs_raw, schema: schemas/costs_raw.json } }
                  - { id: roll, uses: aggregate, needs: [load], with: { from: costs_raw, procedure: procedures/per_day.sql, group_by: [day], into: per_day } }
                """)
        #expect(run.state == .succeeded, "\(run.reason)")
        let result = try await project.warehouse.query(org: "acme", "SELECT day, lines, top FROM per_day ORDER BY day", [])
        #expect(result.rows.map { $0.map(\.displayText) } == [["2025-06-02", "2", "0.2"], ["2025-06-03", "1", "5"]])
        #expect(result.rows.map { $0[1] } == [.integer(2), .integer(1)], "a count is an integer, not the text '2'")
        #expect(result.types[1] == .int64)
    }
}

/// A target's schema holds in what a run publishes: REQUIRED columns have values, the primary
/// key is unique; a step that stages otherwise fails, and nothing is published.
@Suite struct SchemaContractTests {
    @Test(arguments: Backend.all) func aRequiredColumnWithoutAValueFailsTheRunWithItsKey(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write("data/costs.csv", "id,day,cost\na,2025-06-02,0.1\nb,2025-06-03,\n")
        try project.write(
            "schemas/costs_raw.json", #"[{"name": "id", "type": "STRING"}, {"name": "day", "type": "DATE"}, {"name": "cost", "type": "NUMERIC"}]"#)
        try project.write(
            "schemas/daily.json",
            """
            {"table": "daily", "primary_key": ["day"], "fields": [
              {"name": "day", "type": "DATE", "mode": "REQUIRED"}, {"name": "total", "type": "NUMERIC", "mode": "REQUIRED"}]}
            """)
        let run = try await project.run(
            "daily",
            yaml: """
                pipeline: daily
                defaults: { timeout: 1m }
                steps:
                  - { id: load, uses: ingest, with: { source: { format: csv, path: data/costs.csv }, table: costs_raw, schema: schemas/costs_raw.json } }
                  - { id: roll, uses: aggregate, with: { from: costs_raw, group_by: [day], measures: { total: sum(cost) }, into: daily } }
                """)
        #expect(run.state == .failed)
        let roll = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "roll" })
        #expect(roll.errorCode == "schema_violated")
        #expect(
            roll.reason
                == "column 'total' of 'daily' is REQUIRED in schemas/daily.json, but the row with day = 2025-06-03 has no value; nothing was published"
        )
        #expect(try await project.tableExists("daily") == false)
    }

    @Test(arguments: Backend.all) func aPrimaryKeyTwiceFailsTheRunWithTheKey(_ backend: Backend) async throws {
        let project = try await PipelineProject(backend)
        defer { project.remove() }
        try project.write(
            "schemas/accounts.json",
            #"{"table": "accounts", "primary_key": ["id"], "fields": [{"name": "id", "type": "STRING"}, {"name": "name", "type": "STRING"}]}"#)
        try project.write("procedures/accounts.sql", "INSERT INTO accounts (id, name) VALUES ('a', 'one'), ('a', 'two'), ('b', 'three');\n")
        let run = try await project.run(
            "accounts",
            yaml: """
                pipeline: accounts
                defaults: { timeout: 1m }
                steps:
                  - { id: fill, uses: sql, with: { procedure: procedures/accounts.sql } }
                """)
        #expect(run.state == .failed)
        let fill = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "fill" })
        #expect(fill.errorCode == "schema_violated")
        #expect(
            fill.reason == "the primary key of 'accounts' (id, in schemas/accounts.json) is not unique: 2 rows have id = a; nothing was published")
        #expect(try await project.tableExists("accounts") == false)
    }
}
