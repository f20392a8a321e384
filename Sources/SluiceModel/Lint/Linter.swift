import Foundation
import Synchronization

/// Everything `sluice lint` found in one run.
public struct LintReport: Sendable {
    public var diagnostics: [Diagnostic]
    public var filesChecked: Int

    public init(diagnostics: [Diagnostic], filesChecked: Int) {
        self.diagnostics = diagnostics
        self.filesChecked = filesChecked
    }

    public var errorCount: Int { diagnostics.errorCount }
    public var warningCount: Int { diagnostics.warningCount }
}

/// Checks pipeline files against the project they belong to: the file itself (through
/// `PipelineLoader`), then the DAG (unknown needs, cycles), schemas, procedures, tables and
/// columns, and timeouts. Every problem is reported, not just the first.
///
/// A linter reads `schemas/` once and prepares each procedure once, however many pipeline
/// files it checks; it is meant for one thread. `lint(paths:)` over many files starts one
/// linter per core and splits the files between them.
public final class Linter {
    public let projectRoot: URL
    public let loader: PipelineLoader
    public let schemas: SchemaCatalog
    private let procedures: ProcedureChecker
    private var reportedProcedures = Set<String>()
    private var reportedSchemaFiles = false

    public init(projectRoot: URL, registry: ProcessorRegistry) {
        // A directory URL, so paths resolve inside it rather than beside it.
        self.projectRoot = URL(fileURLWithPath: projectRoot.standardizedFileURL.path, isDirectory: true)
        loader = PipelineLoader(registry: registry)
        schemas = SchemaCatalog(projectRoot: projectRoot)
        procedures = ProcedureChecker(schemas: schemas)
    }

    /// Lints the pipeline files under `paths` (files, or folders searched for `*.yml` and
    /// `*.yaml`), relative to the project root unless absolute.
    public func lint(paths: [String]) -> LintReport {
        let (found, missing) = ProjectFiles.pipelineFiles(for: paths, relativeTo: projectRoot)
        var seen = Set<String>()
        let files = found.filter { seen.insert(URL(fileURLWithPath: $0, relativeTo: projectRoot).standardizedFileURL.path).inserted }
        var diagnostics = missing.map {
            Diagnostic(.missingPath, at: .start(of: $0), "no such file or folder")
        }
        diagnostics += takeSchemaDiagnostics()
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, files.count / Self.filesPerWorker)
        if workers < 2 {
            for file in files {
                diagnostics += lint(file: file)
            }
        } else {
            diagnostics += lintAtOnce(files, workers: workers)
        }
        return LintReport(diagnostics: diagnostics.sortedForReading(), filesChecked: files.count)
    }

    /// Below this many files a project is linted on one thread: starting a linter of its own
    /// for each core costs more than it saves.
    static let filesPerWorker = 16

    /// Lints `files` on `workers` threads at once, each with a linter of its own (they share
    /// nothing: a linter reads the schemas and prepares procedures for itself). Files are dealt
    /// out in turn, so each thread gets a like share. A procedure that pipelines on two threads
    /// use is reported by both; identical diagnostics are kept once.
    private func lintAtOnce(_ files: [String], workers: Int) -> [Diagnostic] {
        let (root, registry) = (projectRoot, loader.registry)
        let found = Mutex([[Diagnostic]](repeating: [], count: workers))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let linter = Linter(projectRoot: root, registry: registry)
            linter.reportedSchemaFiles = true
            var diagnostics: [Diagnostic] = []
            for index in stride(from: worker, to: files.count, by: workers) {
                diagnostics += linter.lint(file: files[index])
            }
            found.withLock { $0[worker] = diagnostics }
        }
        var seen = Set<Diagnostic>()
        return found.withLock { $0 }.joined().filter { seen.insert($0).inserted }
    }

    /// Lints one pipeline file; `path` is shown in messages.
    public func lint(file path: String) -> [Diagnostic] {
        examine(file: path).diagnostics
    }

    /// The DAG of a pipeline file, or the diagnostics that prevent one.
    public func plan(file path: String) -> (plan: PipelinePlan?, diagnostics: [Diagnostic]) {
        let (definition, diagnostics) = examine(file: path)
        let sorted = diagnostics.sortedForReading()
        guard sorted.errorCount == 0, let definition,
            case .success(let plan) = PipelinePlan.build(definition, procedures: procedureInfos(for: definition))
        else {
            return (nil, sorted)
        }
        return (plan, sorted)
    }

    private func examine(file path: String) -> (definition: PipelineDefinition?, diagnostics: [Diagnostic]) {
        let url = URL(fileURLWithPath: path, relativeTo: projectRoot)
        let result = loader.load(fileAt: url, displayPath: path)
        var diagnostics = result.diagnostics + takeSchemaDiagnostics()
        guard let definition = result.definition else { return (nil, diagnostics) }
        diagnostics += check(definition)
        return (definition, diagnostics)
    }

    /// Schema files are project-wide: their problems are reported once per linter.
    private func takeSchemaDiagnostics() -> [Diagnostic] {
        guard !reportedSchemaFiles else { return [] }
        reportedSchemaFiles = true
        return schemas.diagnostics
    }

    // MARK: Checks that need the DAG or the project

    private func check(_ definition: PipelineDefinition) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        let ids = definition.writtenStepIDs.union(definition.steps.map(\.id.value))

        for step in definition.steps {
            for need in step.needs where !ids.contains(need.value) && Identifier.isValid(need.value) {
                diagnostics.append(
                    Diagnostic(
                        .unknownNeed, at: need.location,
                        "step \(shown(step.id.value)) needs \(shown(need.value)), which is not a step of this pipeline\(Suggestion.hint(for: need.value, in: ids))"
                    ))
            }
            for need in step.needs where need.value == step.id.value {
                diagnostics.append(Diagnostic(.cycle, at: need.location, "step \(shown(step.id.value)) needs itself"))
            }
        }
        let handlers = Set(definition.onFailure.map(\.location))
        for step in definition.steps + definition.onFailure where step.timeout == nil && definition.defaults.timeout == nil {
            let what = handlers.contains(step.location) ? "on_failure handler" : "step"
            diagnostics.append(
                Diagnostic(
                    .missingTimeout, at: handlers.contains(step.location) ? step.location : step.id.location,
                    "\(what) \(shown(step.id.value)) has no timeout; set `timeout:` on it or in `defaults`, or a hung source can hold the run forever"
                ))
        }

        diagnostics += checkFiles(definition)
        let infos = procedureInfos(for: definition)
        diagnostics += checkProcedureParameters(definition, infos)

        let built = PipelinePlan.build(definition, procedures: infos)
        if case .failure(let error) = built {
            for cycle in error.cycles {
                let step = definition.step(cycle.steps[0])
                let path = zip(cycle.steps, cycle.steps.dropFirst()).enumerated().map { index, pair in
                    let reason: String
                    switch cycle.edges[index].reason {
                    case .needs: reason = "needs"
                    case .table(let table): reason = "table \(table)"
                    case .output: reason = "outputs"
                    case .secret(let name): reason = "secret \(name)"
                    }
                    return index == 0 ? "\(pair.0) → \(pair.1) (\(reason))" : "→ \(pair.1) (\(reason))"
                }.joined(separator: " ")
                diagnostics.append(
                    Diagnostic(
                        .cycle, at: step?.id.location ?? definition.location,
                        "steps depend on each other in a circle: \(path)"))
            }
            if error.cycles.isEmpty {
                diagnostics.append(Diagnostic(.cycle, at: definition.location, "the steps can't be put in an order (a cycle lint could not trace)"))
            }
        }

        diagnostics += checkTables(definition, infos, plan: try? built.get())
        return diagnostics
    }

    private func checkFiles(_ definition: PipelineDefinition) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        let fileManager = FileManager.default
        for step in definition.steps + definition.onFailure {
            for schema in step.io.schemaFiles where !Template.containsExpression(schema.value) {
                if schemas.byPath[normalized(schema.value)] != nil || schemas.invalidPaths.contains(normalized(schema.value)) { continue }
                let exists = fileManager.fileExists(atPath: projectRoot.appendingPathComponent(schema.value).path)
                diagnostics.append(
                    Diagnostic(
                        .missingSchema, at: schema.location,
                        exists
                            ? "schema \(shown(schema.value)) is not under schemas/; keep schema files there so every pipeline and lint see them"
                            : "schema file \(shown(schema.value)) does not exist\(Suggestion.hint(for: schema.value, in: schemas.byPath.keys))"))
            }
            for procedure in step.io.procedureFiles where !Template.containsExpression(procedure.value) {
                let url = projectRoot.appendingPathComponent(procedure.value)
                if !fileManager.fileExists(atPath: url.path) {
                    let known = ProjectFiles.find(in: projectRoot.appendingPathComponent("procedures"), extensions: ["sql"]).map {
                        "procedures/\($0)"
                    }
                    diagnostics.append(
                        Diagnostic(
                            .missingProcedure, at: procedure.location,
                            "procedure file \(shown(procedure.value)) does not exist\(Suggestion.hint(for: procedure.value, in: known))"))
                    continue
                }
                let info = procedures.check(fileAt: url, path: normalized(procedure.value))
                if reportedProcedures.insert(info.path).inserted {
                    diagnostics += info.diagnostics
                }
                if let first = info.diagnostics.first {
                    diagnostics.append(
                        first.rule == .procedureSandbox
                            ? Diagnostic(
                                .procedureSandbox, at: procedure.location,
                                "procedure \(shown(procedure.value)) does what runs refuse; see \(first.location)")
                            : Diagnostic(
                                .invalidProcedure, at: procedure.location,
                                "procedure \(shown(procedure.value)) does not prepare; see \(first.location)"))
                }
            }
        }
        return diagnostics
    }

    private func procedureInfos(for definition: PipelineDefinition) -> [String: ProcedureInfo] {
        var infos: [String: ProcedureInfo] = [:]
        for step in definition.steps + definition.onFailure {
            for procedure in step.io.procedureFiles {
                let url = projectRoot.appendingPathComponent(procedure.value)
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                infos[procedure.value] = procedures.check(fileAt: url, path: normalized(procedure.value))
            }
        }
        return infos
    }

    /// Every `:name` a procedure uses must be given in the step's `params`.
    private func checkProcedureParameters(_ definition: PipelineDefinition, _ infos: [String: ProcedureInfo]) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for step in definition.steps + definition.onFailure {
            for procedure in step.io.procedureFiles {
                guard let info = infos[procedure.value], info.diagnostics.isEmpty else { continue }
                let owner = step.config.flatMap { mapping(holding: procedure.location, in: $0) }
                let paramsNode = owner?["params"]
                let given = Set(paramsNode?.mapping?.compactMap(\.key.scalarText) ?? [])
                for parameter in info.parameters where !given.contains(parameter) {
                    diagnostics.append(
                        Diagnostic(
                            .missingField, at: paramsNode?.location ?? procedure.location,
                            "\(procedure.value) uses :\(parameter), but step \(shown(step.id.value)) gives no params.\(parameter)"))
                }
            }
        }
        return diagnostics
    }

    /// The mapping in `with` whose value sits at `location` (where a procedure field is).
    private func mapping(holding location: SourceLocation, in node: YAMLNode) -> YAMLNode? {
        if let pairs = node.mapping {
            if pairs.contains(where: { $0.value.location == location }) { return node }
            for pair in pairs { if let found = mapping(holding: location, in: pair.value) { return found } }
        }
        for item in node.sequence ?? [] { if let found = mapping(holding: location, in: item) { return found } }
        return nil
    }

    private func checkTables(_ definition: PipelineDefinition, _ infos: [String: ProcedureInfo], plan: PipelinePlan?) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        // Columns of every table this pipeline can see: schemas first, then what its steps write.
        var columns: [String: [String]] = schemas.tables.mapValues(\.columnNames)
        var producers = Set<String>()
        let order = plan?.order ?? definition.steps.map(\.id.value)
        for id in order {
            guard let step = definition.step(id) else { continue }
            let stepWrites = step.io.writes.map(\.value) + step.io.procedureFiles.flatMap { infos[$0.value]?.writes ?? [] }
            producers.formUnion(stepWrites)
            let fromSchemaFile = step.io.schemaFiles.compactMap { schemas.byPath[normalized($0.value)]?.columnNames }.first
            let derived =
                fromSchemaFile
                ?? step.config.flatMap { config in
                    loader.registry[step.uses.value]?.resultColumns?(config) { columns[$0] }
                }
            for table in step.io.writes where columns[table.value] == nil || fromSchemaFile != nil {
                if let derived { columns[table.value] = derived }
            }
            // A target with its own schema must hold every column the step will write.
            if fromSchemaFile == nil, let derived {
                for table in step.io.writes {
                    guard let schema = schemas[table.value] else { continue }
                    let missing = derived.filter { schema.column($0) == nil }
                    if !missing.isEmpty {
                        diagnostics.append(
                            Diagnostic(
                                .conflictingSchema, at: table.location,
                                "step \(shown(step.id.value)) writes \(missing.map { "'\($0)'" }.joined(separator: ", ")) into \(shown(table.value)), but \(schema.file) has no such column\(missing.count == 1 ? "" : "s")"
                            ))
                    }
                }
            }
        }

        for step in definition.steps {
            for read in step.io.reads where !producers.contains(read.value) && schemas[read.value] == nil {
                diagnostics.append(
                    Diagnostic(
                        .unproducedTable, at: read.location,
                        "step \(shown(step.id.value)) reads table \(shown(read.value)), which no step of this pipeline writes and no file in schemas/ declares\(Suggestion.hint(for: read.value, in: Set(columns.keys)))"
                    ))
            }
            for use in step.io.columnUses {
                let known = use.tables.compactMap { columns[$0] }
                guard !use.tables.isEmpty, known.count == use.tables.count else { continue }
                let all = known.flatMap { $0 }
                if use.inEveryTable, let missingFrom = zip(use.tables, known).first(where: { !$0.1.contains(use.column.value) })?.0,
                    all.contains(use.column.value)
                {
                    diagnostics.append(
                        Diagnostic(
                            .unknownColumn, at: use.column.location,
                            "step \(shown(step.id.value)): \(shown(use.field)): join column \(shown(use.column.value)) is not in table \(shown(missingFrom)); a join key must be in both tables"
                        ))
                } else if !all.contains(use.column.value) {
                    diagnostics.append(
                        Diagnostic(
                            .unknownColumn, at: use.column.location,
                            "step \(shown(step.id.value)): \(shown(use.field)): column \(shown(use.column.value)) is not in \(tableList(use.tables))\(Suggestion.hint(for: use.column.value, in: all))"
                        ))
                }
            }
            for use in step.io.sqlExpressions {
                let expression: SQLExpression
                do {
                    expression = try SQLExpression(parsing: use.text.value)
                } catch {
                    diagnostics.append(
                        Diagnostic(
                            .invalidValue, at: location(in: use, offset: error.offset),
                            "step \(shown(step.id.value)): \(shown(use.field)): \(error.description)"))
                    continue
                }
                let known = use.tables.compactMap { columns[$0] }
                guard !use.tables.isEmpty, known.count == use.tables.count else { continue }
                let all = Set(known.flatMap { $0 })
                for column in expression.columns where !all.contains(column.name) {
                    diagnostics.append(
                        Diagnostic(
                            .unknownColumn, at: location(in: use, offset: column.offset),
                            "step \(shown(step.id.value)): \(shown(use.field)): column \(shown(column.name)) is not in \(tableList(use.tables))\(Suggestion.hint(for: column.name, in: all))"
                        ))
                }
            }
        }
        return diagnostics
    }

    private func location(in use: SQLExpressionUse, offset: Int) -> SourceLocation {
        guard var location = use.firstCharacter else { return use.text.location }
        location.column += use.text.value.prefix(offset).unicodeScalars.count
        return location
    }

    private func tableList(_ tables: [String]) -> String {
        let unique = tables.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return unique.count == 1 ? "table \(shown(unique[0]))" : "tables " + unique.map { "'\($0)'" }.joined(separator: ", ")
    }

    private func normalized(_ path: String) -> String {
        path.hasPrefix("./") ? String(path.dropFirst(2)) : path
    }
}
