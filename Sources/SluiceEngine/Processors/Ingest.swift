import Foundation
import SluiceModel

/// `ingest`: streams a file (CSV, JSON Lines, a JSON array) into a run-scoped staging table
/// typed by a schema, in batches, so memory follows `batch_size` and not the file. Bad rows
/// fail the step, are skipped (counted), or are quarantined in the run store with their
/// line, column and reason, per `on_bad_row`.
public struct IngestProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .ingest }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        guard let project = step.project else { throw StepFailure.config("ingest needs the project folder") }
        let config = step.config
        let table = try config.identifier("table")
        let schemaPath = try config.text("schema")
        let onBadRow = config.optionalText("on_bad_row") ?? "fail"
        let batchSize = max(1, try config.integer("batch_size", default: 10_000))
        let normalizedSchema = schemaPath.hasPrefix("./") ? String(schemaPath.dropFirst(2)) : schemaPath
        guard let schema = project.schemas.byPath[normalizedSchema] else {
            throw StepFailure("missing_schema", "schema \(shown(schemaPath)) is not a valid schema file under schemas/")
        }
        var rename: [String: String] = [:]
        for pair in config["columns"]?.mapping ?? [] {
            if let column = pair.key.scalarText, let field = pair.value.scalarText { rename[column] = field }
        }

        guard let source = config["source"] else { throw StepFailure.config("'source' is missing", at: config.location) }
        let format = try source.text("format")
        let path = try source.text("path")
        let absolute = URL(fileURLWithPath: path, relativeTo: project.root).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: absolute) else {
            throw StepFailure("missing_input", "input file \(shown(path)) does not exist", at: source["path"]?.location)
        }
        var reader: any RecordReader
        switch format {
        case "csv":
            let header = source.flag("header", default: true)
            reader = try CSVReader(path: absolute, file: path, delimiter: source.optionalText("delimiter") ?? ",",
                                   header: header ? .firstLine : .none(fields: RowTyper.sourceFields(schema: schema, rename: rename)))
        case "jsonl":
            reader = try JSONLinesReader(path: absolute, file: path, fields: RowTyper.sourceFields(schema: schema, rename: rename))
        case "json":
            reader = try JSONArrayReader(path: absolute, file: path, fields: RowTyper.sourceFields(schema: schema, rename: rename),
                                         items: source.optionalText("items"))
        default:
            throw StepFailure("unsupported_source", "source format '\(format)' is declared but not runnable in this version of Sluice; csv, jsonl and json are")
        }
        let typer = try RowTyper(schema: schema, fields: reader.fields, rename: rename, file: path)
        let columns = schema.columns.map { ColumnDefinition($0.name, $0.type, required: $0.mode == .required) }
        let staged = try await workspace.stage(table, columns: columns, change: .scratch)

        var read = 0, written = 0, skipped = 0, quarantined = 0
        while true {
            try Task.checkCancellation()
            let batch = try reader.next(limit: batchSize)
            if batch.isEmpty { break }
            read += batch.count
            var rows: [[WarehouseValue]] = []
            rows.reserveCapacity(batch.count)
            var bad: [QuarantinedRow] = []
            for record in batch {
                switch typer.type(record) {
                case .success(let values):
                    rows.append(values)
                case .failure(let problem):
                    switch onBadRow {
                    case "skip":
                        skipped += 1
                    case "quarantine":
                        bad.append(QuarantinedRow(runID: step.runID, stepID: step.stepID, file: path, line: problem.location.line,
                                                  column: problem.location.column, reason: problem.reason, raw: problem.raw))
                    default:
                        throw problem.failure
                    }
                }
            }
            try await workspace.insert(into: staged, columns: columns.map(\.name), rows: rows)
            written += rows.count
            if !bad.isEmpty {
                guard let store = step.runStore else { throw StepFailure.config("quarantine needs a run store") }
                try await store.saveQuarantined(bad)
                quarantined += bad.count
            }
        }
        step.logger.info("ingested \(path)", metadata: ["rows": "\(written)", "quarantined": "\(quarantined)", "skipped": "\(skipped)"])
        return [
            "rows_read": .number(Double(read)),
            "rows_written": .number(Double(written)),
            "rows_skipped": .number(Double(skipped)),
            "rows_quarantined": .number(Double(quarantined)),
            "bytes_read": .number(Double(reader.bytesRead)),
        ]
    }
}
