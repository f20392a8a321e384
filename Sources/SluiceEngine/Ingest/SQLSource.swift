import Foundation
import SluiceModel
import SluiceStorage

/// A `format: sql` source of `ingest`: the rows of a procedure (one SELECT, `:name` parameters
/// bound from the source's `params`) over the org's warehouse, as the run sees it. The
/// procedure file is read and bound as `aggregate` reads its procedures (``ProcedureFile``,
/// within the project), and runs sandboxed: it may only read (else `procedure_refused`).
///
/// Each result row is typed by the schema as a line of JSON Lines would be (its columns are
/// the keys, a blob is base64), so `columns` and `on_bad_row` work as for files; a bad row's
/// line is its row number in the result, and its raw text the row as a JSON object. The
/// result is held in memory while it is typed, one batch of it as JSON at a time.
struct SQLSource {
    let source: YAMLNode
    let step: StepContext

    /// Loads the procedure's rows; returns the procedure's path, which names it in messages.
    func load(into load: inout Load) async throws -> String {
        let workspace = try step.requireWorkspace()
        let path = try source.text("procedure")
        let sql = try ProcedureFile.read(path, step: step)
        let (select, arguments) = try ProcedureFile.bindNamed(sql, params: source.boundParams(), dialect: workspace.dialect)
        // The result is held in memory: with `max_rows`, no more than one row past it is read,
        // so the limit bounds the memory too (and the step still fails past it).
        let maxRows = StepBudget.current?.limits.maxRows.map { $0 + 1 }
        let result = try await ProcedureFile.located(path, exactPositions: false) {
            try await workspace.queryProcedure(select, arguments, maxRows: maxRows)
        }
        // The column check (a REQUIRED column the query lacks, a column named twice) holds for
        // an empty result too.
        _ = try RowTyper(schema: load.schema, fields: result.columns, rename: load.rename, file: path)
        let bytesBefore = load.bytesRead
        var start = 0
        while start < result.rows.count {
            try Task.checkCancellation()
            let end = min(start + load.batchSize, result.rows.count)
            var text = ""
            for row in result.rows[start..<end] {
                text += "{"
                for (index, value) in row.enumerated() {
                    if index > 0 { text += "," }
                    text += WarehouseValue.jsonString(result.columns[index]) + ":" + value.jsonText
                }
                text += "}\n"
            }
            let reader = try JSONLinesReader(input: InputFile(bytes: Data(text.utf8), file: path), fields: result.columns, firstLine: start + 1)
            try await load.records(from: reader, file: path)
            start = end
        }
        // No file is read: the JSON the rows were typed through is no input's bytes.
        load.bytesRead = bytesBefore
        return path
    }
}
