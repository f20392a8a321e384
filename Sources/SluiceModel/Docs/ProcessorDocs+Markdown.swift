import Foundation

/// The processor tables of docs/pipeline-format.md, generated from the specs
/// (`sluice processors --format markdown`). The secret-field and destination-field tables state
/// security rules lint enforces from the same specs, so the docs can't promise another set.
extension ProcessorDocs {
    /// Every generated section: the processors at a glance, the fields that take secrets, the
    /// fields that decide where a request goes, and one table per field whose shape depends on
    /// a discriminator (`ingest.source`, `validate_data.checks`).
    public static func markdownSections(_ registry: ProcessorRegistry) -> [GeneratedSection] {
        [
            GeneratedSection(name: "at-a-glance", text: glanceTable(registry)),
            GeneratedSection(name: "secret-fields", text: secretFieldsTable(registry)),
            GeneratedSection(name: "destination-fields", text: destinationFieldsTable(registry)),
        ] + shapeTables(registry)
    }

    /// Every generated section with its markers, as it stands in the docs.
    public static func markdown(_ registry: ProcessorRegistry) -> String {
        markdownSections(registry).map(\.marked).joined(separator: "\n")
    }

    // MARK: Tables

    static func glanceTable(_ registry: ProcessorRegistry) -> String {
        var lines = ["| processor | fields under `with` | outputs |", "|---|---|---|"]
        for spec in registry.specs {
            let outputs = spec.outputs.map { code($0.name) }.joined(separator: ", ")
            lines.append("| \(code(spec.name)) | \(glance(spec.fields)) | \(outputs) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func secretFieldsTable(_ registry: ProcessorRegistry) -> String {
        let rows = fieldRows(registry) { field in
            switch field.secret {
            case .never: return nil
            case .allowed: return "may hold secrets"
            case .required: return "must be a secret"
            }
        }
        var lines = ["| processor | fields | secrets |", "|---|---|---|"]
        for row in rows {
            // A map takes secrets in its values (header values), not its keys.
            let fields = row.fields.map { code($0.path) + (isMap($0.spec.type) ? " values" : "") }
            lines.append("| \(row.processorCell) | \(fields.joined(separator: ", ")) | \(row.kind) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func destinationFieldsTable(_ registry: ProcessorRegistry) -> String {
        let rows = fieldRows(registry) { $0.destination ? "" : nil }
        var lines = ["| processor | fields that decide where the request goes |", "|---|---|"]
        for row in rows {
            lines.append("| \(row.processorCell) | \(row.fields.map { code($0.path) }.joined(separator: ", ")) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One section per field whose shape its discriminator picks, named `<processor>.<field>`:
    /// a row per shape with its fields. Fields every shape has (a check's `name` and
    /// `severity`) get a row of their own, first.
    static func shapeTables(_ registry: ProcessorRegistry) -> [GeneratedSection] {
        var sections: [GeneratedSection] = []
        for spec in registry.specs {
            for field in spec.fields {
                guard case .variants(let discriminator, let shapes) = unwrappedList(field.type), !shapes.isEmpty else { continue }
                let kinds = shapes.keys.sorted()
                let common = (shapes[kinds[0]] ?? []).map(\.name).filter { name in
                    kinds.count > 1 && kinds.allSatisfy { shapes[$0]?.contains { $0.name == name } == true }
                }
                var lines = ["| \(discriminator) | fields |", "|---|---|"]
                if !common.isEmpty {
                    lines.append("| every \(code(discriminator)) | \(glance((shapes[kinds[0]] ?? []).filter { common.contains($0.name) })) |")
                }
                for kind in kinds {
                    lines.append("| \(code(kind)) | \(glance((shapes[kind] ?? []).filter { !common.contains($0.name) })) |")
                }
                sections.append(GeneratedSection(name: "\(spec.name).\(field.name)", text: lines.joined(separator: "\n") + "\n"))
            }
        }
        return sections
    }

    // MARK: Cells

    /// "**`credential`**, `ttl`, `expect` (`any`; `openai`, `anthropic`, `gcp`)": a required
    /// field in bold; in parentheses its default (an enumeration's default first, then its other
    /// values), the default's note, or an object's own fields.
    static func glance(_ fields: [FieldSpec]) -> String {
        fields.map { field in
            let name = field.requirement.isRequired ? "**\(code(field.name))**" : code(field.name)
            var details: [String] = []
            var defaultValue: String?
            if case .defaultValue(let value) = field.requirement { defaultValue = value }
            switch unwrappedList(field.type) {
            case .enumeration(let values):
                let others = values.filter { $0 != defaultValue }.map(code)
                if let defaultValue {
                    details.append(others.isEmpty ? code(defaultValue) : "\(code(defaultValue)); \(others.joined(separator: ", "))")
                } else {
                    details.append(others.joined(separator: " or "))
                }
            case .object(let nested):
                details.append(glance(nested))
            default:
                if let defaultValue { details.append(code(defaultValue)) }
            }
            if let note = field.defaultNote { details.append(note) }
            return details.isEmpty ? name : "\(name) (\(details.joined(separator: ", ")))"
        }.joined(separator: ", ")
    }

    /// `text` as inline code in a table cell.
    private static func code(_ text: String) -> String {
        "`" + text.replacingOccurrences(of: "|", with: "\\|") + "`"
    }

    // MARK: Fields with a place

    /// A field of a processor's `with` and where it sits: its dotted path (`source.url`) and,
    /// for a field of one shape of a discriminated field, that shape (`format: http`).
    struct PlacedField {
        var path: String
        var shape: String?
        var spec: FieldSpec
    }

    /// Every field under `fields`, nested ones included, in the order they are declared.
    static func placedFields(_ fields: [FieldSpec], under prefix: String = "", shape: String? = nil) -> [PlacedField] {
        fields.flatMap { field in
            let path = prefix + field.name
            return [PlacedField(path: path, shape: shape, spec: field)] + placedFields(in: field.type, under: path + ".", shape: shape)
        }
    }

    private static func placedFields(in type: FieldType, under prefix: String, shape: String?) -> [PlacedField] {
        switch type {
        case .object(let fields):
            return placedFields(fields, under: prefix, shape: shape)
        case .list(let item), .map(let item, _):
            return placedFields(in: item, under: prefix, shape: shape)
        case .variants(let discriminator, let shapes):
            return shapes.keys.sorted().flatMap { placedFields(shapes[$0] ?? [], under: prefix, shape: "\(discriminator): \($0)") }
        default:
            return []
        }
    }

    /// A row of the secret or destination table: the processors (and the shape) it is about,
    /// its fields, and what `kind` said of them.
    struct FieldRow {
        var processors: [String]
        var shape: String?
        var fields: [PlacedField]
        var kind: String

        var processorCell: String {
            processors.map(code).joined(separator: ", ") + (shape.map { " (\(code($0)))" } ?? "")
        }
    }

    /// The fields `kind` says something of, a row per processor, shape and kind, in the order
    /// of the registry; neighbours whose rows list the same fields share one
    /// (`validate_openai`, `validate_anthropic`).
    static func fieldRows(_ registry: ProcessorRegistry, kind: (FieldSpec) -> String?) -> [FieldRow] {
        var rows: [FieldRow] = []
        for spec in registry.specs {
            var own: [FieldRow] = []
            for placed in placedFields(spec.fields) {
                guard let said = kind(placed.spec) else { continue }
                if let index = own.firstIndex(where: { $0.shape == placed.shape && $0.kind == said }) {
                    own[index].fields.append(placed)
                } else {
                    own.append(FieldRow(processors: [spec.name], shape: placed.shape, fields: [placed], kind: said))
                }
            }
            for row in own {
                if let last = rows.last, own.count == 1, last.shape == row.shape, last.kind == row.kind,
                    last.fields.map(\.path) == row.fields.map(\.path)
                {
                    rows[rows.count - 1].processors += row.processors
                } else {
                    rows.append(row)
                }
            }
        }
        return rows
    }

    private static func unwrappedList(_ type: FieldType) -> FieldType {
        if case .list(let item) = type { return item }
        return type
    }

    private static func isMap(_ type: FieldType) -> Bool {
        if case .map = type { return true }
        return false
    }
}
