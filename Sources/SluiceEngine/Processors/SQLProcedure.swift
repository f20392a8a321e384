import Foundation
import SluiceModel
import SluiceStorage

/// `sql`: runs a procedure from `procedures/` with its `:name` parameters bound from
/// `params`. The tables it writes (found by preparing it, as lint does) are copied into the
/// run's staging first, so the procedure's changes publish with the rest of the run or not
/// at all. It runs sandboxed (`ProcedureSandbox`), and the run holds its target tables from
/// before the procedure reads them until it publishes, so the copy it publishes can't hide
/// another run's publish.
public struct SQLProcedureProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .sql }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let workspace = try step.requireWorkspace()
        guard let project = step.project else { throw StepFailure.config("sql needs the project folder") }
        let path = try step.config.text("procedure")
        let sql = try ProcedureFile.readScript(path, step: step)
        let params = step.config.boundParams()

        // What the procedure reads and writes, as the warehouse's SQL reads it over the schemas.
        let info = workspace.checkProcedure(fileAt: URL(fileURLWithPath: path, relativeTo: project.root), path: path, schemas: project.schemas)
        if let problem = info.diagnostics.first {
            throw StepFailure(problem.rule == .procedureSandbox ? .procedureRefused : .invalidProcedure, problem.message, at: problem.location)
        }
        for parameter in info.parameters where params[parameter] == nil {
            throw StepFailure.config("\(path) uses :\(parameter), but the step gives no params.\(parameter)")
        }
        var writes: [(table: String, columns: [ColumnDefinition])] = []
        for table in info.writes {
            let columns = project.schemas[table]?.columns.map { ColumnDefinition($0.name, $0.type) } ?? []
            writes.append((table, columns))
        }
        let changed = try await ProcedureFile.located(path, exactPositions: true) {
            try await workspace.runScript(sql, named: params.filter { info.parameters.contains($0.key) }, writes: writes, step: step.stepID)
        }
        for table in info.writes {
            guard let staged = try await workspace.source(table) else { continue }
            try await SchemaContract.check(staged: staged, table: table, schema: project.schemas[table], workspace: workspace)
        }
        step.logger.info("ran \(path)", metadata: ["rows_affected": "\(changed)", "writes": "\(info.writes.joined(separator: ","))"])
        return ["rows_affected": .number(Double(changed))]
    }
}
