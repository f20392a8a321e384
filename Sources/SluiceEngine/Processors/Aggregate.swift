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
        let staged: String
        if let procedure = config.optionalText("procedure") {
            let (select, arguments) = try procedureQuery(procedure, params: params, step: step)
            // The author's SQL runs sandboxed: it may read, and write only the staged result.
            let probe = try await ProcedureFile.located(procedure, exactPositions: false) {
                try await workspace.queryProcedure("SELECT * FROM (\(select)) AS result LIMIT 0", arguments)
            }
            let outputColumns = try await resultColumns(
                probe, schema: step.project?.schemas[into], procedure: procedure, workspace: workspace, select: select, arguments: arguments)
            staged = try await workspace.stage(into, columns: outputColumns, change: change, primaryKey: [], step: step.stepID)
            written = try await ProcedureFile.located(procedure, exactPositions: false) {
                try await workspace.insertProcedureRows(into: staged, columns: outputColumns.map(\.name), select: select, arguments)
            }
        } else {
            let (select, arguments, outputColumns) = try await compile(config, groupBy: groupBy, into: into, step: step, workspace: workspace)
            staged = try await workspace.stage(into, columns: outputColumns, change: change, primaryKey: [], step: step.stepID)
            written = try await workspace.execute(
                "INSERT INTO \(staged) (\(dialect.quotedList(outputColumns.map(\.name)))) \(select)", arguments)
        }
        // The rows this step staged; what is published already was checked when it was.
        if written > 0 {
            try await SchemaContract.check(staged: staged, table: into, schema: step.project?.schemas[into], workspace: workspace)
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
            // Typed, so decimals are computed exactly and the column gets the measure's type
            // (a count is INT64, a sum of NUMERIC is NUMERIC) unless the target's schema says.
            var (measure, kind) = try text.renderTyped(expression, field: "measures.\(name)", types: types)
            let type = schema?.column(name)?.type ?? kind.columnType
            if let limits = type.decimalLimits { measure = dialect.storeDecimal(measure, limits) }
            selected.append("\(measure) AS \(dialect.quote(name))")
            outputs.append(ColumnDefinition(name, type))
        }
        var sql = "SELECT \(selected.joined(separator: ", ")) FROM \(fromSource) AS \(dialect.quote("f"))\(joins)"
        if let filter = config.optionalText("where") {
            sql += " WHERE \(try text.renderTyped(filter, field: "where", types: types).sql)"
        }
        if !groupBy.isEmpty {
            sql += " GROUP BY " + (try groupBy.map { column throws(StepFailure) in try text.column(column) }).joined(separator: ", ")
        }
        return (sql, text.arguments, outputs)
    }

    /// The columns a procedure's result is staged with: the target schema's type for each
    /// column it declares; else the type the warehouse gives the result column (a column read
    /// as it is keeps its declared type; PostgreSQL types every result); else the type of the
    /// values in the first rows: integers are INT64, numbers FLOAT64, canonical decimal text
    /// with a point (what `decimal_sum` and its kin give on
    /// SQLite) NUMERIC, anything else STRING.
    private func resultColumns(
        _ probe: QueryResult, schema: TableSchema?, procedure: String, workspace: any RunWorkspace, select: String,
        arguments: [WarehouseValue]
    ) async throws -> [ColumnDefinition] {
        var types: [ColumnType?] = probe.columns.indices.map { index in
            schema?.column(probe.columns[index])?.type ?? (index < probe.types.count ? probe.types[index] : nil)
        }
        if types.contains(where: { $0 == nil }) {
            let sample = try await ProcedureFile.located(procedure, exactPositions: false) {
                try await workspace.queryProcedure("SELECT * FROM (\(select)) AS result", arguments, maxRows: 1000)
            }
            for index in types.indices where types[index] == nil {
                types[index] = Self.inferredType(sample.rows.compactMap { index < $0.count ? $0[index] : nil })
            }
        }
        return zip(probe.columns, types).map { ColumnDefinition($0, $1 ?? .string) }
    }

    static func inferredType(_ values: [WarehouseValue]) -> ColumnType {
        var integers = 0
        var reals = 0
        var decimals = 0
        var others = 0
        for value in values {
            switch value {
            case .null: continue
            case .integer: integers += 1
            case .real: reals += 1
            // Canonical decimal text with a point: whole-number text ("2024") may be an id.
            case .text(let text) where text.contains(".") && ExactDecimal(text)?.description == text: decimals += 1
            default: others += 1
            }
        }
        if others > 0 || integers + reals + decimals == 0 { return .string }
        if decimals > 0 { return reals > 0 ? .float64 : .numeric }
        return reals > 0 ? .float64 : .int64
    }

    /// A procedure's single SELECT, with `:params` bound positionally.
    private func procedureQuery(_ path: String, params: [String: WarehouseValue], step: StepContext) throws -> (String, [WarehouseValue]) {
        let sql = try ProcedureFile.read(path, step: step)
        return try ProcedureFile.bindNamed(sql, params: params, dialect: try step.requireWorkspace().dialect)
    }
}
