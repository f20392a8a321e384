import Foundation
import SluiceModel
import SluiceStorage

/// `ingest`: streams a file (CSV, JSON Lines, a JSON array) or the pages of an HTTP API into a
/// run-scoped staging table
/// typed by a schema, in batches, so memory follows `batch_size` and not the file. Bad rows
/// fail the step, are skipped (counted), or are quarantined in the run store with their
/// line, column and reason, per `on_bad_row`.
public struct IngestProcessor: Processor {
    /// How `format: http` sources are fetched; without one they are refused.
    public var transport: (any HTTPTransport)?

    public init(transport: (any HTTPTransport)? = nil) {
        self.transport = transport
    }

    public var spec: ProcessorSpec { .ingest }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        guard let project = step.project else { throw StepFailure.config("ingest needs the project folder") }
        let config = step.config
        let table = try config.identifier("table")
        let schemaPath = try config.text("schema")
        let onBadRow = try config.text("on_bad_row")
        let batchSize = max(1, try config.integer("batch_size"))
        let normalizedSchema = schemaPath.hasPrefix("./") ? String(schemaPath.dropFirst(2)) : schemaPath
        guard let schema = project.schemas.byPath[normalizedSchema] else {
            throw StepFailure(.missingSchema, "schema \(shown(schemaPath)) is not a valid schema file under schemas/")
        }
        var rename: [String: String] = [:]
        for pair in config["columns"]?.mapping ?? [] {
            if let column = pair.key.scalarText, let field = pair.value.scalarText { rename[column] = field }
        }

        guard let source = config["source"] else { throw StepFailure.config("'source' is missing", at: config.location) }
        let format = try source.text("format")
        let fields = RowTyper.sourceFields(schema: schema, rename: rename)
        let columns = schema.columns.map { ColumnDefinition($0.name, $0.type, required: $0.mode == .required) }
        var load = Load(
            step: step, workspace: workspace, schema: schema, rename: rename, columns: columns,
            onBadRow: onBadRow, batchSize: batchSize)
        load.staged = try await workspace.stage(table, columns: columns, change: .scratch)
        var label: String
        switch format {
        case "http":
            guard let transport else {
                throw StepFailure(
                    .unsupportedSource, "source format 'http' needs an HTTP client, and this build of the executor has none",
                    at: source["format"]?.location)
            }
            label = try await HTTPSource(source: source, transport: transport, step: step).load(into: &load, fields: fields)
        case "csv", "jsonl", "json":
            let path = try source.text("path")
            let delimiter = try CSVReader.delimiterByte(try source.text("delimiter"))
            // Within the project and the org's input root only, whoever chose the path.
            let input = try InputPath(path, field: "source.path", at: source["path"]?.location, step: step, project: project).openInput()
            let reader: any RecordReader
            switch format {
            case "csv":
                let header = try source.flag("header")
                reader = try CSVReader(input: input, delimiter: delimiter, header: header ? .firstLine : .none(fields: fields))
            case "jsonl":
                reader = try JSONLinesReader(input: input, fields: fields)
            default:
                reader = try JSONArrayReader(input: input, fields: fields, items: source.optionalText("items"))
            }
            try await load.records(from: reader, file: path)
            label = path
        case "sql":
            label = try await SQLSource(source: source, step: step).load(into: &load)
        default:
            throw StepFailure(
                .unsupportedSource,
                "source format '\(format)' is declared but not runnable in this version of Sluice; csv, jsonl, json, http and sql are")
        }
        step.logger.info(
            "ingested \(label)", metadata: ["rows": "\(load.written)", "quarantined": "\(load.quarantined)", "skipped": "\(load.skipped)"])
        return [
            "rows_read": .number(Double(load.read)),
            "rows_written": .number(Double(load.written)),
            "rows_skipped": .number(Double(load.skipped)),
            "rows_quarantined": .number(Double(load.quarantined)),
            "bytes_read": .number(Double(load.bytesRead)),
        ]
    }
}

/// Typed batches into the staged table, with the counts and bad-row handling of one step.
struct Load {
    let step: StepContext
    let workspace: any RunWorkspace
    let schema: TableSchema
    let rename: [String: String]
    let columns: [ColumnDefinition]
    let onBadRow: String
    let batchSize: Int
    var staged = ""
    var read = 0, written = 0, skipped = 0, quarantined = 0, bytesRead = 0
    /// Told of every row written (the HTTP source tracks its incremental cursor with it).
    var observe: ((_ row: [WarehouseValue]) -> Void)?

    /// Streams every record of `reader` into the staged table; `file` names it in errors.
    mutating func records(from reader: any RecordReader, file: String) async throws {
        var reader = reader
        let typer = try RowTyper(schema: schema, fields: reader.fields, rename: rename, file: file)
        let redactor = SecretRedactor.shared
        while true {
            try Task.checkCancellation()
            let batch = try reader.next(limit: batchSize)
            if batch.isEmpty { break }
            read += batch.count
            var rows: [[WarehouseValue]] = []
            rows.reserveCapacity(batch.count)
            var bad: [QuarantinedRow] = []
            // A source that echoes a run's secret (an API repeating the token it was sent) must
            // not get it stored: with live secrets about, text is masked before it is kept.
            let masking = !redactor.holdsNoLiveValues
            for record in batch {
                switch typer.type(record) {
                case .success(var values):
                    if masking {
                        for (index, value) in values.enumerated() {
                            if case .text(let text) = value { values[index] = .text(redactor.redactLiveValues(text)) }
                        }
                    }
                    observe?(values)
                    rows.append(values)
                case .failure(let problem):
                    switch onBadRow {
                    case "skip":
                        skipped += 1
                    case "quarantine":
                        bad.append(
                            QuarantinedRow(
                                runID: step.runID, stepID: step.stepID, file: file, line: problem.location.line,
                                column: problem.location.column, reason: redactor.redact(problem.reason),
                                raw: redactor.redact(problem.raw)))
                    default:
                        throw problem.failure
                    }
                }
            }
            try await workspace.insert(into: staged, columns: columns.map(\.name), rows: rows)
            written += rows.count
            if !bad.isEmpty {
                try await step.requireRecords().keep(bad, as: .quarantinedRows)
                quarantined += bad.count
            }
        }
        bytesRead += Int(reader.bytesRead)
    }
}

extension StepRecordKind where Record == QuarantinedRow {
    /// A source row `ingest` quarantined.
    public static var quarantinedRows: Self { Self("quarantined_row") }
}

extension RunStore {
    /// The rows the run's ingest steps quarantined.
    public func quarantined(of runID: String) async throws -> [QuarantinedRow] {
        try await records(of: runID, .quarantinedRows)
    }
}

/// A source row that did not fit its schema under `on_bad_row: quarantine`.
public struct QuarantinedRow: Sendable, Hashable, Codable {
    public var runID: String
    public var stepID: String
    public var file: String
    public var line: Int
    public var column: Int
    public var reason: String
    public var raw: String

    public init(runID: String, stepID: String, file: String, line: Int, column: Int, reason: String, raw: String) {
        self.runID = runID
        self.stepID = stepID
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
        self.raw = raw
    }
}
