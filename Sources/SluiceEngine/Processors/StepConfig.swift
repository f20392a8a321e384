import SluiceModel
import SluiceStorage

/// Reading a step's evaluated `with`. Lint has checked shapes already; these accessors still
/// fail cleanly (a `StepFailure` naming the field and its place) for what only a run can
/// know, like an expression that evaluated to something unusable. Public for processors that
/// live in other modules (the provider validators).
extension YAMLNode {
    public func text(_ field: String) throws(StepFailure) -> String {
        guard let node = self[field], let text = node.scalarText, !node.isNull else {
            throw .config("'\(field)' is missing", at: location)
        }
        return text
    }

    public func optionalText(_ field: String) -> String? {
        guard let node = self[field], !node.isNull else { return nil }
        return node.scalarText
    }

    func optionalDuration(_ field: String) throws(StepFailure) -> Duration? {
        guard let text = optionalText(field) else { return nil }
        do {
            return try DurationText.parse(text)
        } catch {
            throw .config("'\(field)': \(error)", at: self[field]?.location)
        }
    }

    /// A list of scalars as text, where a single scalar is accepted too; empty when absent.
    public func texts(_ field: String) throws(StepFailure) -> [String] {
        guard let node = self[field], !node.isNull else { return [] }
        var texts: [String] = []
        for item in node.sequence ?? [node] {
            guard let text = item.scalarText else {
                throw .config("'\(field)' must be a list of values, not a list holding \(item.kindDescription)", at: item.location)
            }
            texts.append(text)
        }
        return texts
    }

    /// A name that reaches SQL: it must pass `Identifier`, whatever an expression produced.
    func identifier(_ field: String) throws(StepFailure) -> String {
        let name = try text(field)
        if let problem = Identifier.problem(with: name) { throw .config("'\(field)': \(problem)", at: self[field]?.location) }
        return name
    }

    func optionalIdentifier(_ field: String) throws(StepFailure) -> String? {
        guard optionalText(field) != nil else { return nil }
        return try identifier(field)
    }

    /// A list of names, where a single name is accepted too.
    func identifiers(_ field: String) throws(StepFailure) -> [String] {
        guard let node = self[field], !node.isNull else { return [] }
        var names: [String] = []
        for item in node.sequence ?? [node] {
            guard let name = item.scalarText, Identifier.isValid(name) else {
                throw .config("'\(field)': \(Identifier.problem(with: item.scalarText ?? "") ?? "expected names")", at: item.location)
            }
            names.append(name)
        }
        return names
    }

    /// An integer that the step gives or its spec defaults (`ProcessorSpec.withDefaults`).
    func integer(_ field: String) throws(StepFailure) -> Int {
        guard let node = self[field], !node.isNull else { throw .config("'\(field)' is missing", at: location) }
        return try integer(field, default: 0)
    }

    func integer(_ field: String, default value: Int) throws(StepFailure) -> Int {
        guard let node = self[field], !node.isNull else { return value }
        guard let number = node.int ?? node.scalarText.flatMap({ Int($0) }) else {
            throw .config("'\(field)' must be an integer, not \(shown(node.scalarText ?? node.kindDescription))", at: node.location)
        }
        return number
    }

    /// A duration (`30s`, `2m`) that the step gives or its spec defaults.
    public func duration(_ field: String) throws(StepFailure) -> Duration {
        let text = try text(field)
        do { return try DurationText.parse(text) } catch { throw .config("'\(field)': \(error.description)", at: self[field]?.location) }
    }

    /// A count or percentage of rows (`100`, `5%`) that the step gives or its spec defaults.
    func threshold(_ field: String) throws(StepFailure) -> RowThreshold {
        let text = try text(field)
        do { return try RowThreshold(parsing: text) } catch { throw .config("'\(field)': \(error.description)", at: self[field]?.location) }
    }

    /// A boolean that the step gives or its spec defaults (`ProcessorSpec.withDefaults`).
    func flag(_ field: String) throws(StepFailure) -> Bool {
        guard let node = self[field], !node.isNull else { throw .config("'\(field)' is missing", at: location) }
        return node.bool ?? (node.scalarText == "true")
    }

    func flag(_ field: String, default value: Bool) -> Bool {
        guard let node = self[field], !node.isNull else { return value }
        return node.bool ?? (node.scalarText == "true")
    }
}

extension RunWorkspace {
    /// How to read `table`, or a failure saying no step wrote it and the warehouse lacks it.
    func requireSource(_ table: String, for step: StepContext) async throws -> String {
        guard let source = try await source(table) else {
            throw StepFailure(
                .missingTable,
                "step '\(step.stepID)' reads table '\(table)', which no earlier step of this run wrote and the warehouse of org '\(step.org)' does not have"
            )
        }
        return source
    }

    func requireColumns(_ table: String) async throws -> [ColumnDefinition] {
        guard let columns = try await columns(of: table) else {
            throw StepFailure(.missingTable, "table '\(table)' does not exist")
        }
        return columns
    }

    /// One number from a `SELECT count(*)`-like query.
    func count(_ sql: String, _ arguments: [WarehouseValue] = []) async throws -> Int {
        try await counts(sql, arguments).first ?? 0
    }

    /// The numbers of the first row of a query that counts several things in one scan (0 for
    /// what is not a number).
    func counts(_ sql: String, _ arguments: [WarehouseValue] = []) async throws -> [Int] {
        let result = try await query(sql, arguments)
        return (result.rows.first ?? []).map { value in
            switch value {
            case .integer(let value): Int(value)
            case .real(let value): Int(value)
            default: 0
            }
        }
    }
}
