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
        let maxBadRows = try config.threshold("max_bad_rows")
        let normalizedSchema = schemaPath.hasPrefix("./") ? String(schemaPath.dropFirst(2)) : schemaPath
        guard var schema = project.schemas.byPath[normalizedSchema] else {
            throw StepFailure(.missingSchema, "schema \(shown(schemaPath)) is not a valid schema file under schemas/")
        }
        let rename = try Self.applyColumns(config["columns"], to: &schema)

        guard let source = config["source"] else { throw StepFailure.config("'source' is missing", at: config.location) }
        let format = try source.text("format")
        let fields = RowTyper.sourceFields(schema: schema, rename: rename)
        let columns = schema.columns.map { ColumnDefinition($0.name, $0.type, required: $0.mode == .required) }
        var load = Load(
            step: step, workspace: workspace, schema: schema, rename: rename, columns: columns,
            onBadRow: onBadRow, maxBadRows: maxBadRows, batchSize: batchSize)
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
        try load.checkBadRows()
        step.logger.info(
            "ingested \(label)", metadata: ["rows": "\(load.written)", "quarantined": "\(load.quarantined)", "skipped": "\(load.skipped)"])
        return [
            "rows_read": .number(Double(load.read)),
            "rows_written": .number(Double(load.written)),
            "rows_skipped": .number(Double(load.skipped)),
            "rows_quarantined": .number(Double(load.quarantined)),
            "bytes_read": .number(Double(load.bytesRead)),
            "pages_read": .number(Double(load.pages)),
        ]
    }

    /// Reads `columns`: each schema column's source field (`day: ChargePeriodStart`), or an
    /// object that may also say how the source writes its dates and times, which then
    /// overrides the schema file's `format` and `timezone` for this step. Returns the renames.
    static func applyColumns(_ node: YAMLNode?, to schema: inout TableSchema) throws(StepFailure) -> [String: String] {
        var rename: [String: String] = [:]
        for pair in node?.mapping ?? [] {
            guard let name = pair.key.scalarText else { continue }
            guard let index = schema.columns.firstIndex(where: { $0.name == name }) else {
                throw StepFailure.config(
                    "columns maps '\(name)', which is not a column of \(schema.table) (\(schema.file))\(Suggestion.hint(for: name, in: schema.columnNames))",
                    at: pair.key.location)
            }
            if let field = pair.value.scalarText {
                rename[name] = field
                continue
            }
            if let field = pair.value["from"]?.scalarText { rename[name] = field }
            if let formatNode = pair.value["format"], let text = formatNode.scalarText {
                do { schema.columns[index].inputFormat = try TimeFormat(text) } catch {
                    throw StepFailure.config("columns.\(name).format \(shown(text)): \(error.description)", at: formatNode.location)
                }
            }
            if let zone = pair.value["timezone"]?.scalarText { schema.columns[index].inputTimezone = zone }
            if let why = RowTyper.formatProblem(of: schema.columns[index]) {
                throw StepFailure.config("columns.\(name): \(why)", at: pair.value.location)
            }
        }
        return rename
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
    let maxBadRows: RowThreshold
    let batchSize: Int
    var staged = ""
    var read = 0, written = 0, skipped = 0, quarantined = 0, bytesRead = 0, pages = 0
    /// The first few bad rows, for the message when there are too many.
    var firstBad: [BadRow] = []
    /// Told of every row written (the HTTP source tracks its incremental cursor with it).
    var observe: ((_ row: [WarehouseValue]) -> Void)?

    /// Streams every record of `reader` into the staged table; `file` names it in errors. The
    /// batches are read and typed here while a task of their own writes those before them
    /// (`RowBatches`, two at most waiting), so parsing and the warehouse work at once; they are
    /// written in order. A batch's rows and bad rows count once it is handed over.
    mutating func records(from reader: any RecordReader, file: String) async throws {
        var reader = reader
        let typer = try RowTyper(schema: schema, fields: reader.fields, rename: rename, file: file)
        let (workspace, staged, names) = (workspace, staged, columns.map(\.name))
        let batches = RowBatches(capacity: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await workspace.insert(into: staged, columns: names, batches: batches)
                } catch {
                    await batches.stop()
                    throw error
                }
            }
            do {
                while let batch = try typedBatch(from: &reader, typer: typer, file: file, readBefore: read) {
                    try await batches.send(batch.rows)
                    read += batch.read
                    written += batch.rows.count
                    skipped += batch.skipped
                    if !batch.bad.isEmpty {
                        try await step.requireRecords().keep(batch.bad, as: .quarantinedRows)
                        quarantined += batch.bad.count
                    }
                    // A count is known to be passed as soon as it is; a share only at the end.
                    if case .count = maxBadRows, maxBadRows.isExceeded(bad: skipped + quarantined, of: read) { try checkBadRows() }
                }
                await batches.finish()
            } catch is RowBatches.Stopped {
                // The writing failed: its error is the one the group throws.
            } catch {
                await batches.fail(error)
                try? await group.waitForAll()
                throw error
            }
            try await group.waitForAll()
        }
        bytesRead += Int(reader.bytesRead)
    }

    /// One batch read and typed: its rows, and the bad ones, counted once the batch is written.
    struct TypedBatch {
        var read = 0
        var rows: [[WarehouseValue]] = []
        var skipped = 0
        var bad: [QuarantinedRow] = []
    }

    /// Reads the next batch of `reader` and types it; nil at the end. Checks the step's budget
    /// (`readBefore` rows read until now) before the batch is written: past a limit, it is not.
    private mutating func typedBatch(
        from reader: inout any RecordReader, typer: RowTyper, file: String, readBefore: Int
    ) throws -> TypedBatch? {
        try Task.checkCancellation()
        let records = try reader.next(limit: batchSize)
        if records.isEmpty { return nil }
        var batch = TypedBatch(read: records.count)
        batch.rows.reserveCapacity(records.count)
        let redactor = SecretRedactor.shared
        // A source that echoes a run's secret (an API repeating the token it was sent) must
        // not get it stored: with live secrets about, text is masked before it is kept.
        let masking = !redactor.holdsNoLiveValues
        for record in records {
            switch typer.type(record) {
            case .success(var values):
                if masking {
                    for (index, value) in values.enumerated() {
                        if case .text(let text) = value { values[index] = .text(redactor.redactLiveValues(text)) }
                    }
                }
                observe?(values)
                batch.rows.append(values)
            case .failure(let problem):
                if firstBad.count < 3 { firstBad.append(problem) }
                switch onBadRow {
                case "skip":
                    batch.skipped += 1
                case "quarantine":
                    batch.bad.append(
                        QuarantinedRow(
                            runID: step.runID, stepID: step.stepID, file: file, line: problem.location.line,
                            column: problem.location.column, reason: redactor.redact(problem.reason),
                            raw: redactor.redact(problem.raw)))
                default:
                    throw problem.failure
                }
            }
        }
        // Past a limit, the batch is not written: the step stops with what it had read.
        try StepBudget.current?.check(rows: readBefore + records.count, bytes: Int64(bytesRead + reader.bytesRead), reading: file)
        return batch
    }

    /// Fails the step when more rows were bad than `max_bad_rows` allows, or every row read
    /// was: such a load is not a success, whatever the threshold. The bad rows are kept
    /// (quarantined ones in the run store), so nothing is lost; nothing is published.
    func checkBadRows() throws(StepFailure) {
        let bad = skipped + quarantined
        guard bad > 0 else { return }
        let everyRow = bad == read
        guard everyRow || maxBadRows.isExceeded(bad: bad, of: read) else { return }
        let why = everyRow ? "every row read was bad" : "more than max_bad_rows (\(maxBadRows)) allows"
        let kept = quarantined > 0 ? "; the quarantined rows are kept with the run (sluice runs show)" : ""
        let reasons = firstBad.map { SecretRedactor.shared.redact("\($0.location): \($0.reason)") }.joined(separator: "; ")
        throw StepFailure(
            .tooManyBadRows,
            "\(bad) of \(read) rows were bad (\(skipped) skipped, \(quarantined) quarantined): \(why)\(kept). The first: \(reasons)")
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
