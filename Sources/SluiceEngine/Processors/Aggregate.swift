import Foundation
import SluiceModel
import SluiceStorage

/// `aggregate`: group-by with measures and lookup joins compiled into one statement, every
/// identifier checked and qualified, every value bound; or a SQL procedure (one SELECT) whose
/// rows are the result. The rows are staged for `into` as a replacement, a merge on the
/// group-by key, or a replacement of the partitions they cover.
public struct AggregateProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .aggregate }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        let dialect = workspace.dialect
        let config = step.config
        let into = try config.identifier("into")
        let mode = try config.text("mode")
        let groupBy = try config.identifiers("group_by")
        let partitionBy = try config.optionalIdentifier("partition_by")
        let params = config.boundParams()

        let change: StagedChange
        switch mode {
        case "replace": change = .replace
        case "merge": change = .upsert(key: groupBy, onConflict: .replace)
        case "replace_partitions":
            guard let partitionBy else { throw StepFailure.config("mode replace_partitions needs 'partition_by'") }
            change = .replacePartitions(column: partitionBy)
        default: throw StepFailure.config("unknown mode '\(mode)'")
        }

        let written: Int
        if let procedure = config.optionalText("procedure") {
            let (select, arguments) = try procedureQuery(procedure, params: params, step: step)
            // The author's SQL runs sandboxed: it may read, and write only the staged result.
            let probe = try await ProcedureFile.located(procedure, exactPositions: false) {
                try await workspace.queryProcedure("SELECT * FROM (\(select)) AS result LIMIT 0", arguments)
            }
            let outputColumns = probe.columns.map { name in
                ColumnDefinition(name, step.project?.schemas[into]?.column(name)?.type ?? .string)
            }
            let staged = try await workspace.stage(into, columns: outputColumns, change: change, primaryKey: [], step: step.stepID)
            written = try await ProcedureFile.located(procedure, exactPositions: false) {
                try await workspace.insertProcedureRows(into: staged, columns: outputColumns.map(\.name), select: select, arguments)
            }
        } else {
            let (select, arguments, outputColumns) = try await compile(config, groupBy: groupBy, into: into, step: step, workspace: workspace)
            let staged = try await workspace.stage(into, columns: outputColumns, change: change, primaryKey: [], step: step.stepID)
            written = try await workspace.execute(
                "INSERT INTO \(staged) (\(dialect.quotedList(outputColumns.map(\.name)))) \(select)", arguments)
        }
        step.logger.info("aggregated into \(into)", metadata: ["rows": "\(written)"])
        return ["rows_written": .number(Double(written))]
    }

    /// The SELECT for group-by, measures and joins, with its bound arguments and result columns.
    private func compile(
        _ config: YAMLNode, groupBy: [String], into: String, step: StepContext,
        workspace: any RunWorkspace
    ) async throws
        -> (String, [WarehouseValue], [ColumnDefinition])
    {
        let dialect = workspace.dialect
        let from = try config.identifier("from")
        let fromSource = try await workspace.requireSource(from, for: step)
        let fromColumns = try await workspace.requireColumns(from)
        var tables: [(alias: String, columns: [String])] = [("f", fromColumns.map(\.name))]
        var types = Dictionary(fromColumns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
        var joins = ""
        let joinNodes: [YAMLNode] = config["join"].map { $0.sequence ?? [$0] } ?? []
        for (index, joinNode) in joinNodes.enumerated() {
            let table = try joinNode.identifier("table")
            let on = try joinNode.identifiers("on")
            let kind = joinNode.optionalText("type") == "inner" ? "JOIN" : "LEFT JOIN"
            let source = try await workspace.requireSource(table, for: step)
            let columns = try await workspace.requireColumns(table)
            let alias = "j\(index + 1)"
            for column in on where !columns.contains(where: { $0.name == column }) || !fromColumns.contains(where: { $0.name == column }) {
                throw StepFailure.config("join column '\(column)' must be in both '\(from)' and '\(table)'")
            }
            let condition = on.map { "\(dialect.quote(alias)).\(dialect.quote($0)) = \(dialect.quote("f")).\(dialect.quote($0))" }
            joins += " \(kind) \(source) AS \(dialect.quote(alias)) ON \(condition.joined(separator: " AND "))"
            tables.append((alias: alias, columns: columns.map { $0.name }))
            for column in columns where types[column.name] == nil { types[column.name] = column.type }
        }

        var text = SQLText(dialect: dialect, tables: tables, params: config.boundParams())
        var selected: [String] = []
        var outputs: [ColumnDefinition] = []
        let schema = step.project?.schemas[into]
        for column in groupBy {
            selected.append("\(try text.column(column)) AS \(dialect.quote(column))")
            outputs.append(ColumnDefinition(column, schema?.column(column)?.type ?? types[column] ?? .string))
        }
        for pair in config["measures"]?.mapping ?? [] {
            guard let name = pair.key.scalarText, Identifier.isValid(name), let expression = pair.value.scalarText else {
                throw StepFailure.config("measures need a name and a SQL expression", at: pair.key.location)
            }
            selected.append("\(try text.render(expression, field: "measures.\(name)")) AS \(dialect.quote(name))")
            let counted = expression.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("count(")
            outputs.append(ColumnDefinition(name, schema?.column(name)?.type ?? (counted ? .int64 : .float64)))
        }
        var sql = "SELECT \(selected.joined(separator: ", ")) FROM \(fromSource) AS \(dialect.quote("f"))\(joins)"
        if let filter = config.optionalText("where") {
            sql += " WHERE \(try text.render(filter, field: "where"))"
        }
        if !groupBy.isEmpty {
            sql += " GROUP BY " + (try groupBy.map { column throws(StepFailure) in try text.column(column) }).joined(separator: ", ")
        }
        return (sql, text.arguments, outputs)
    }

    /// A procedure's single SELECT, with `:params` bound positionally.
    private func procedureQuery(_ path: String, params: [String: WarehouseValue], step: StepContext) throws -> (String, [WarehouseValue]) {
        let sql = try ProcedureFile.read(path, step: step)
        return try ProcedureFile.bindNamed(sql, params: params, dialect: try step.requireWorkspace().dialect)
    }
}
