import Foundation
import SluiceModel
import SluiceStorage

/// `validate_data`: runs data tests against a table as this run sees it (staged rows
/// included), stores every result with the run, and fails the step when a check of severity
/// `error` fails.
public struct ValidateDataProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateData }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        let dialect = workspace.dialect
        let config = step.config
        let table = try config.identifier("table")
        let source = try await workspace.requireSource(table, for: step)
        let stepSeverity = try config.text("severity")
        var results: [CheckResult] = []

        for (index, check) in (config["checks"]?.sequence ?? []).enumerated() {
            let type = try check.text("type")
            let column = try check.optionalIdentifier("column")
            let name = check.optionalText("name") ?? [type, column].compactMap { $0 }.joined(separator: "_") + (column == nil ? "_\(index + 1)" : "")
            let severity = check.optionalText("severity") ?? stepSeverity
            let quotedColumn = column.map(dialect.quote) ?? ""
            let (passed, observed): (Bool, String)
            switch type {
            case "not_null":
                let nulls = try await workspace.count("SELECT count(*) FROM \(source) WHERE \(quotedColumn) IS NULL")
                (passed, observed) = (nulls == 0, "\(nulls) null value\(nulls == 1 ? "" : "s")")
            case "unique":
                let columns = dialect.quotedList(try check.identifiers("columns"))
                let duplicated = try await workspace.count(
                    "SELECT count(*) FROM (SELECT 1 FROM \(source) GROUP BY \(columns) HAVING count(*) > 1) AS d")
                (passed, observed) = (duplicated == 0, "\(duplicated) duplicated key\(duplicated == 1 ? "" : "s")")
            case "accepted_values":
                let values: [WarehouseValue] = (check["values"]?.sequence ?? []).map { node in
                    if let integer = node.int, !node.isQuoted { return .integer(Int64(integer)) }
                    if let number = node.double, !node.isQuoted { return .real(number) }
                    return .text(node.scalarText ?? "")
                }
                let placeholders = values.indices.map { dialect.placeholder($0 + 1) }.joined(separator: ", ")
                let outside =
                    values.isEmpty
                    ? 0
                    : try await workspace.count(
                        "SELECT count(*) FROM \(source) WHERE \(quotedColumn) IS NOT NULL AND \(quotedColumn) NOT IN (\(placeholders))", values)
                (passed, observed) = (outside == 0, "\(outside) value\(outside == 1 ? "" : "s") outside the accepted list")
            case "range":
                var conditions: [String] = []
                var arguments: [WarehouseValue] = []
                for (bound, comparison) in [("min", "<"), ("max", ">")] {
                    guard let node = check[bound], !node.isNull else { continue }
                    arguments.append(node.double.map(WarehouseValue.real) ?? .text(node.scalarText ?? ""))
                    conditions.append("\(quotedColumn) \(comparison) \(dialect.placeholder(arguments.count))")
                }
                let outside =
                    conditions.isEmpty
                    ? 0
                    : try await workspace.count(
                        "SELECT count(*) FROM \(source) WHERE \(conditions.joined(separator: " OR "))", arguments)
                (passed, observed) = (outside == 0, "\(outside) value\(outside == 1 ? "" : "s") out of range")
            case "row_count":
                let rows = try await workspace.count("SELECT count(*) FROM \(source)")
                let minimum = try check.integer("min", default: 0)
                let maximum = try check.integer("max", default: Int.max)
                (passed, observed) = (rows >= minimum && rows <= maximum, "\(rows) rows")
            case "freshness":
                let maxAge = try DurationText.parse(try check.text("max_age"))
                let newest = try await workspace.query("SELECT max(\(quotedColumn)) FROM \(source)", []).rows.first?.first ?? .null
                guard case .text(let value) = newest else {
                    (passed, observed) = (false, "no value in \(column ?? "?")")
                    break
                }
                let cutoff = Date().addingTimeInterval(-Double(maxAge.components.seconds))
                let threshold =
                    value.count == 10
                    ? String(ISO8601DateFormatter.string(from: cutoff, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate]))
                    : ISO8601DateFormatter().string(from: cutoff)
                (passed, observed) = (value >= threshold, "newest \(value)")
            case "sql":
                let path = try check.text("procedure")
                let sql = try ProcedureFile.read(path, step: step)
                let (bound, arguments) = try ProcedureFile.bindNamed(sql, params: check.boundParams(), dialect: dialect)
                // The author's SQL runs sandboxed: it may only read.
                let counted = try await ProcedureFile.located(path, exactPositions: false) {
                    try await workspace.queryProcedure("SELECT count(*) FROM (\(bound)) AS offending", arguments)
                }
                guard case .integer(let count)? = counted.rows.first?.first else {
                    throw StepFailure(.procedureFailed, "procedure \(path): counting its rows gave no number")
                }
                let offending = Int(count)
                (passed, observed) = (offending == 0, "\(offending) offending row\(offending == 1 ? "" : "s")")
            default:
                throw StepFailure.config("unknown check type '\(type)'", at: check.location)
            }
            results.append(
                CheckResult(
                    runID: step.runID, stepID: step.stepID, name: name, table: table,
                    passed: passed, severity: severity, observed: observed))
        }

        try await step.services.records?.keep(results, as: .checkResults)
        let failed = results.filter { !$0.passed }
        let failing = failed.filter { $0.severity == "error" }
        for result in failed {
            step.logger.warning("data test failed", metadata: ["check": "\(result.name)", "observed": "\(result.observed)"])
        }
        if !failing.isEmpty {
            let list = failing.map { "\($0.name) (\($0.observed))" }.joined(separator: ", ")
            throw StepFailure(.dataTestFailed, "\(failing.count) data test\(failing.count == 1 ? "" : "s") on '\(table)' failed: \(list)")
        }
        return [
            "checks_passed": .number(Double(results.count - failed.count)),
            "checks_failed": .number(Double(failed.count)),
        ]
    }
}

extension StepRecordKind where Record == CheckResult {
    /// A `validate_data` check's outcome; run again, a check replaces its earlier result.
    public static var checkResults: Self { Self("check_result", key: \.name) }
}

extension RunStore {
    /// The results of the run's data tests.
    public func checkResults(of runID: String) async throws -> [CheckResult] {
        try await records(of: runID, .checkResults)
    }
}

/// One data test's outcome, stored with the run.
public struct CheckResult: Sendable, Hashable, Codable {
    public var runID: String
    public var stepID: String
    public var name: String
    public var table: String
    public var passed: Bool
    /// `error` fails the step when the check fails; `warn` only records it.
    public var severity: String
    /// What was measured (offending rows, the row count, the newest value), in words.
    public var observed: String

    public init(runID: String, stepID: String, name: String, table: String, passed: Bool, severity: String, observed: String) {
        self.runID = runID
        self.stepID = stepID
        self.name = name
        self.table = table
        self.passed = passed
        self.severity = severity
        self.observed = observed
    }
}
