import Foundation
import SluiceModel
import SluiceStorage

/// `merge_dedupe`: stages the rows of `from` that should land in `into`, keyed by `key`.
/// Duplicates inside the batch collapse first (latest by `latest_by`, or the first to arrive);
/// then, against the published target, latest_wins keeps only rows newer than what is there,
/// first_wins only new keys, and replace_partitions the whole batch for the partitions it
/// touches. Rows with a null key fail the step with a count; nothing is merged silently.
/// The result is an upsert (or partition replacement) applied when the run publishes, which
/// applies latest_wins or first_wins again against the table as it is then (another run may
/// have published the same keys meanwhile); the step's counts are then replaced by what the
/// publish did.
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
        let strategy = try config.text("strategy")
        let latestBy = try config.optionalIdentifier("latest_by")
        let partitionBy = try config.optionalIdentifier("partition_by")
        let lineage = try config.flag("lineage")
        guard !key.isEmpty else { throw StepFailure.config("'key' names no column", at: config.location) }

        let source = try await workspace.requireSource(from, for: step)
        let sourceColumns = try await workspace.requireColumns(from)
        let sourceNames = sourceColumns.map(\.name)
        for column in key + [latestBy, partitionBy].compactMap({ $0 }) where !sourceNames.contains(column) {
            throw StepFailure.config("column '\(column)' is not in table '\(from)' (its columns: \(sourceNames.joined(separator: ", ")))")
        }
        if try await workspace.isStaged(into) {
            throw StepFailure.config("table '\(into)' was already written by another step of this run; merge into it once per run")
        }
        let published = try await workspace.source(into)

        // Refuse null keys before anything is staged, with the count.
        let quotedKey = key.map(dialect.quote)
        let counted = try await workspace.counts(
            "SELECT count(*), coalesce(sum(CASE WHEN " + quotedKey.map { "\($0) IS NULL" }.joined(separator: " OR ")
                + " THEN 1 ELSE 0 END), 0) FROM \(source)")
        let (total, nullKeys) = (counted.first ?? 0, counted.dropFirst().first ?? 0)
        if nullKeys > 0 {
            throw StepFailure(
                .nullKey, "\(nullKeys) of \(total) rows of '\(from)' have a null key (\(key.joined(separator: ", "))); nothing was merged")
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
        case "first_wins":
            change = .upsert(key: key, onConflict: .keepPublished)
        case "latest_wins":
            // Without a version column, what is published stays, as at step time.
            change = .upsert(key: key, onConflict: latestBy.map { .latest(by: $0) } ?? .keepPublished)
        default:
            throw StepFailure.config("unknown strategy '\(strategy)'")
        }
        let staged = try await workspace.stage(into, columns: columns, change: change, primaryKey: key, step: step.stepID)

        // 1. Collapse the batch into the keyed staging table, in arrival order (a table scans in
        //    the order its rows were loaded): a later row replaces the staged one when it is at
        //    least as new (latest_wins) or never (first_wins). Re-delivered copies collapse here.
        let now = ISO8601DateFormatter().string(from: Date())
        let lineageValues: [WarehouseValue] = Array([.text(step.runID), .text(step.pipeline), .text(now)].prefix(lineageNames.count))
        let selectList = copied.map(dialect.quote) + lineageNames.indices.map { dialect.placeholder($0 + 1) }
        let keyList = quotedKey.joined(separator: ", ")
        let latest = latestBy.map(dialect.quote)
        // Sorted by key (a stable sort keeps arrival order within a key), rows reach the
        // staging table's key in order, which is far cheaper than in arrival order.
        try await workspace.execute(
            dialect.collapseStatement(
                into: staged, columns: (copied + lineageNames).map(dialect.quote), select: selectList, from: source, key: quotedKey,
                newerBy: strategy == "first_wins" ? nil : latest,
                updating: (copied + lineageNames).filter { !key.contains($0) }.map(dialect.quote)), lineageValues)
        let distinct = try await workspace.count("SELECT count(*) FROM \(staged)")

        // 2. Against the published table: keep only what changes it.
        var inserted = distinct
        var updated = 0
        var unchanged = 0
        if let published, strategy != "replace_partitions" {
            let matches = quotedKey.map { dialect.nullSafeEquals("p.\($0)", "s.\($0)") }.joined(separator: " AND ")
            let stale: String
            if strategy == "latest_wins", let latest {
                // Not newer than what is published: the published row stays.
                stale = "NOT (s.\(latest) IS NOT NULL AND (p.\(latest) IS NULL OR s.\(latest) > p.\(latest)))"
            } else {
                stale = "true"
            }
            unchanged = try await workspace.execute(
                """
                DELETE FROM \(staged) WHERE (\(keyList)) IN (
                    SELECT \(quotedKey.map { "s.\($0)" }.joined(separator: ", ")) FROM \(staged) AS s JOIN \(published) AS p ON \(matches)
                    WHERE \(stale))
                """, [])
            updated = try await workspace.count(
                """
                SELECT count(*) FROM \(staged) AS s WHERE EXISTS (SELECT 1 FROM \(published) AS p WHERE \(matches))
                """)
            inserted = distinct - unchanged - updated
        }
        step.logger.info("merged \(from) into \(into)", metadata: ["inserted": "\(inserted)", "updated": "\(updated)"])
        return [
            "rows_inserted": .number(Double(inserted)),
            "rows_updated": .number(Double(updated)),
            "rows_unchanged": .number(Double(unchanged)),
            "duplicates_collapsed": .number(Double(total - distinct)),
        ]
    }
}
