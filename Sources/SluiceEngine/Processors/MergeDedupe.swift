import Foundation
import SluiceModel

/// `merge_dedupe`: stages the rows of `from` that should land in `into`, keyed by `key`.
/// Duplicates inside the batch collapse first (latest by `latest_by`, or the first to arrive);
/// then, against the published target, latest_wins keeps only rows newer than what is there,
/// first_wins only new keys, and replace_partitions the whole batch for the partitions it
/// touches. Rows with a null key fail the step with a count; nothing is merged silently.
/// The result is an upsert (or partition replacement) applied when the run publishes.
public struct MergeDedupeProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .mergeDedupe }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        let dialect = workspace.dialect
        let config = step.config
        let from = try config.identifier("from")
        let into = try config.identifier("into")
        let key = try config.identifiers("key")
        let strategy = config.optionalText("strategy") ?? "latest_wins"
        let latestBy = try config.optionalIdentifier("latest_by")
        let partitionBy = try config.optionalIdentifier("partition_by")
        let lineage = config.flag("lineage", default: true)
        guard !key.isEmpty else { throw StepFailure.config("'key' names no column", at: config.location) }

        let source = try await workspace.requireSource(from, for: step)
        let sourceColumns = try await workspace.requireColumns(from)
        let sourceNames = sourceColumns.map(\.name)
        for column in key + [latestBy, partitionBy].compactMap({ $0 }) where !sourceNames.contains(column) {
            throw StepFailure.config("column '\(column)' is not in table '\(from)' (its columns: \(sourceNames.joined(separator: ", ")))")
        }
        if let target = try await workspace.source(into), !target.hasPrefix("main.") {
            throw StepFailure.config("table '\(into)' was already written by another step of this run; merge into it once per run")
        }
        let published = try await workspace.source(into)

        // Refuse null keys before anything is staged, with the count.
        let quotedKey = key.map(dialect.quote)
        let nullKeys = try await workspace.count(
            "SELECT count(*) FROM \(source) WHERE " + quotedKey.map { "\($0) IS NULL" }.joined(separator: " OR "))
        let total = try await workspace.count("SELECT count(*) FROM \(source)")
        if nullKeys > 0 {
            throw StepFailure("null_key", "\(nullKeys) of \(total) rows of '\(from)' have a null key (\(key.joined(separator: ", "))); nothing was merged")
        }

        // The staged table: the target's schema when the project has one, else the source's
        // columns, plus lineage.
        var columns = sourceColumns
        if let schema = step.project?.schemas[into] {
            columns = schema.columns.map { ColumnDefinition($0.name, $0.type, required: $0.mode == .required) }
            for column in sourceColumns where schema.column(column.name) == nil && !ProcessorSpec.lineageColumns.contains(column.name) {
                throw StepFailure.config("'\(from)' has column '\(column.name)', which the schema of '\(into)' (\(schema.file)) lacks")
            }
        }
        if lineage {
            for (name, type) in zip(ProcessorSpec.lineageColumns, [ColumnType.string, .string, .timestamp])
            where !columns.contains(where: { $0.name == name }) {
                columns.append(ColumnDefinition(name, type))
            }
        }
        let copied = columns.map(\.name).filter { sourceNames.contains($0) }
        let lineageNames = lineage ? ProcessorSpec.lineageColumns.filter { name in columns.contains { $0.name == name } } : []
        let change: StagedChange
        switch strategy {
        case "replace_partitions":
            guard let partitionBy else { throw StepFailure.config("replace_partitions needs 'partition_by'") }
            change = .replacePartitions(column: partitionBy)
        case "first_wins", "latest_wins":
            change = .upsert(key: key)
        default:
            throw StepFailure.config("unknown strategy '\(strategy)'")
        }
        let staged = try await workspace.stage(into, columns: columns, change: change)

        // Rank rows per key: the newest first for latest_wins, else in arrival order.
        let arrival = source.hasPrefix("main.") || source.hasPrefix("stage.") ? "rowid" : dialect.quotedList(sourceNames)
        let order: String
        if let latestBy, strategy != "first_wins" {
            order = "\(dialect.quote(latestBy)) DESC NULLS LAST, \(arrival == "rowid" ? "rowid DESC" : arrival)"
        } else {
            order = arrival
        }
        let winners = """
            WITH ranked AS (
                SELECT \(dialect.quotedList(copied)), row_number() OVER (PARTITION BY \(quotedKey.joined(separator: ", ")) ORDER BY \(order)) AS sluice_rank
                FROM \(source)
            )
            """
        let insertList = dialect.quotedList(copied + lineageNames)
        let selectList = copied.map { "w.\(dialect.quote($0))" } + Array(repeating: "?", count: lineageNames.count)
        let now = ISO8601DateFormatter().string(from: Date())
        let lineageValues: [WarehouseValue] = Array([.text(step.runID), .text(step.pipeline), .text(now)].prefix(lineageNames.count))
        let matches = quotedKey.map { dialect.nullSafeEquals("t.\($0)", "w.\($0)") }.joined(separator: " AND ")

        var inserted = 0
        var updated = 0
        if let published, strategy != "replace_partitions" {
            inserted = try await workspace.execute("""
                \(winners)
                INSERT INTO \(staged) (\(insertList))
                SELECT \(selectList.joined(separator: ", ")) FROM ranked AS w
                WHERE w.sluice_rank = 1 AND NOT EXISTS (SELECT 1 FROM \(published) AS t WHERE \(matches))
                """, lineageValues)
            if strategy == "latest_wins", let latestBy {
                let newer = "w.\(dialect.quote(latestBy)) > t.\(dialect.quote(latestBy)) OR (t.\(dialect.quote(latestBy)) IS NULL AND w.\(dialect.quote(latestBy)) IS NOT NULL)"
                updated = try await workspace.execute("""
                    \(winners)
                    INSERT INTO \(staged) (\(insertList))
                    SELECT \(selectList.joined(separator: ", ")) FROM ranked AS w
                    WHERE w.sluice_rank = 1 AND EXISTS (SELECT 1 FROM \(published) AS t WHERE \(matches) AND (\(newer)))
                    """, lineageValues)
            }
        } else {
            inserted = try await workspace.execute("""
                \(winners)
                INSERT INTO \(staged) (\(insertList))
                SELECT \(selectList.joined(separator: ", ")) FROM ranked AS w WHERE w.sluice_rank = 1
                """, lineageValues)
        }
        let distinct = try await workspace.count("SELECT count(*) FROM (SELECT DISTINCT \(quotedKey.joined(separator: ", ")) FROM \(source)) AS k")
        step.logger.info("merged \(from) into \(into)", metadata: ["inserted": "\(inserted)", "updated": "\(updated)"])
        return [
            "rows_inserted": .number(Double(inserted)),
            "rows_updated": .number(Double(updated)),
            "rows_unchanged": .number(Double(max(0, distinct - inserted - updated))),
            "duplicates_collapsed": .number(Double(total - distinct)),
        ]
    }
}
