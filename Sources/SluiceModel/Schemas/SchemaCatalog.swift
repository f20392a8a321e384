import Foundation

/// Every table schema of a project, read from `schemas/` (subfolders included), with the
/// diagnostics about the files themselves: invalid JSON, bad fields, and two files that
/// describe one table differently.
public struct SchemaCatalog: Sendable {
    public private(set) var tables: [String: TableSchema] = [:]
    /// Schemas by file path relative to the project (`schemas/genai_usage_raw.json`).
    public private(set) var byPath: [String: TableSchema] = [:]
    /// Paths of files that exist but did not load, so references to them aren't also
    /// reported as missing.
    public private(set) var invalidPaths: Set<String> = []
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    /// Loads `schemas/**/*.json` under `root`. Paths in messages are relative to `root`.
    public init(projectRoot root: URL) {
        let folder = root.appendingPathComponent("schemas")
        for relative in ProjectFiles.find(in: folder, extensions: ["json"]).map({ "schemas/\($0)" }) {
            load(fileAt: root.appendingPathComponent(relative), path: relative)
        }
    }

    public mutating func load(fileAt url: URL, path: String) {
        guard let data = try? Data(contentsOf: url) else {
            diagnostics.append(Diagnostic(.invalidSchema, at: .start(of: path), "cannot read the schema file"))
            invalidPaths.insert(path)
            return
        }
        switch SchemaParser.parse(data, file: path) {
        case .failure(let diagnostic):
            diagnostics.append(diagnostic)
            invalidPaths.insert(path)
        case .success(let (schema, problems)):
            diagnostics += problems
            if !problems.isEmpty { invalidPaths.insert(path) }
            add(schema)
        }
    }

    public mutating func add(_ schema: TableSchema) {
        byPath[schema.file] = schema
        if let existing = tables[schema.table] {
            if !existing.agrees(with: schema) {
                diagnostics.append(
                    Diagnostic(
                        .conflictingSchema, at: .start(of: schema.file),
                        "table \(shown(schema.table)) is also described by \(existing.file), differently: \(SchemaParser.difference(existing, schema))"
                    ))
            }
            return
        }
        tables[schema.table] = schema
    }

    public subscript(table: String) -> TableSchema? { tables[table] }
}

/// Reads one schema file. JSON is parsed with the YAML loader (JSON is YAML) to keep
/// positions, after a strict JSON check.
enum SchemaParser {
    static let fieldKeys: Set<String> = [
        "name", "type", "mode", "description", "fields", "policyTags", "maxLength", "precision", "scale",
        "defaultValueExpression", "collation", "roundingMode", "rangeElementType", "foreignTypeDefinition",
        "format", "timezone",
    ]
    static let tableKeys: Set<String> = ["table", "description", "primary_key", "partition_by", "fields"]

    static func parse(_ data: Data, file: String) -> Result<(TableSchema, [Diagnostic]), Diagnostic> {
        let root: YAMLNode
        switch YAMLLoader().load(data, file: file) {
        case .failure(var diagnostic):
            diagnostic.rule = .invalidSchema
            diagnostic.message = "not valid JSON: \(diagnostic.message)"
            return .failure(diagnostic)
        case .success(nil):
            return .failure(Diagnostic(.invalidSchema, at: .start(of: file), "the schema file is empty"))
        case .success(let node?):
            root = node
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data)
        } catch {
            return .failure(Diagnostic(.invalidSchema, at: .start(of: file), "not valid JSON: \(error.localizedDescription)"))
        }

        var problems: [Diagnostic] = []
        func problem(_ node: YAMLNode, _ message: String) {
            problems.append(Diagnostic(.invalidSchema, at: node.location, message))
        }

        let defaultName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        var schema = TableSchema(table: defaultName, description: nil, columns: [], primaryKey: [], partitionBy: nil, file: file)
        var fieldsNode = root
        if let pairs = root.mapping {
            for pair in pairs where !tableKeys.contains(pair.key.scalarText ?? "") {
                problem(
                    pair.key,
                    "unknown key '\(pair.key.scalarText ?? "")' in a table schema\(Suggestion.hint(for: pair.key.scalarText ?? "", in: tableKeys)) (keys: \(tableKeys.sorted().joined(separator: ", ")))"
                )
            }
            if let table = root["table"] {
                if let name = table.scalarText, Identifier.isValid(name) {
                    schema.table = name
                } else {
                    problem(table, Identifier.problem(with: table.scalarText ?? "") ?? "table must be a name")
                }
            }
            schema.description = root["description"]?.scalarText
            guard let fields = root["fields"] else {
                return .failure(Diagnostic(.invalidSchema, at: root.location, "a table schema object needs \"fields\": [...]"))
            }
            fieldsNode = fields
        }
        guard let items = fieldsNode.sequence else {
            return .failure(
                Diagnostic(
                    .invalidSchema, at: fieldsNode.location,
                    "a schema is a list of fields like {\"name\": \"id\", \"type\": \"STRING\"}, or an object with \"fields\"; this is \(fieldsNode.kindDescription)"
                ))
        }
        if items.isEmpty { problem(fieldsNode, "the schema has no fields") }
        if !Identifier.isValid(schema.table) {
            problem(root, "the file name \(shown(schema.table)) is not a valid table name; rename it or add \"table\": \"name\"")
        }

        var seen: [String: SourceLocation] = [:]
        for item in items {
            guard let pairs = item.mapping else {
                problem(item, "a field must be an object with name and type, not \(item.kindDescription)")
                continue
            }
            for pair in pairs where !fieldKeys.contains(pair.key.scalarText ?? "") {
                problem(
                    pair.key, "unknown key '\(pair.key.scalarText ?? "")' in a field\(Suggestion.hint(for: pair.key.scalarText ?? "", in: fieldKeys))"
                )
            }
            guard let nameNode = item["name"], let name = nameNode.scalarText else {
                problem(item, "a field needs \"name\"")
                continue
            }
            if let why = Identifier.problem(with: name) { problem(nameNode, "column \(why)") }
            if let first = seen[name] {
                problem(nameNode, "column \(shown(name)) is declared twice; the first is at \(first.line):\(first.column)")
            }
            seen[name] = nameNode.location
            guard let typeNode = item["type"], let typeName = typeNode.scalarText else {
                problem(item, "field \(shown(name)) needs \"type\"")
                continue
            }
            guard let type = ColumnType(bigQueryName: typeName) else {
                let names = ColumnType.allCases.map(\.rawValue)
                problem(
                    typeNode,
                    "field \(shown(name)): unknown type \(shown(typeName))\(Suggestion.hint(for: typeName.uppercased(), in: names)) (types: \(names.joined(separator: ", ")))"
                )
                continue
            }
            var mode = TableSchema.Column.Mode.nullable
            if let modeNode = item["mode"], let modeName = modeNode.scalarText {
                if let parsed = TableSchema.Column.Mode(rawValue: modeName.uppercased()) {
                    mode = parsed
                } else {
                    problem(modeNode, "field \(shown(name)): mode must be NULLABLE, REQUIRED or REPEATED, not \(shown(modeName))")
                }
            }
            var column = TableSchema.Column(
                name: name, type: mode == .repeated ? .json : type, mode: mode,
                description: item["description"]?.scalarText, location: nameNode.location)
            if let formatNode = item["format"] {
                if let text = formatNode.scalarText, !formatNode.isNull {
                    do {
                        let format = try TimeFormat(text)
                        if let why = format.problem(for: column.type, timezone: nil) {
                            problem(formatNode, "field \(shown(name)): \(why)")
                        }
                        column.inputFormat = format
                    } catch {
                        problem(formatNode, "field \(shown(name)): format \(shown(text)): \(error.description)")
                    }
                } else {
                    problem(formatNode, "field \(shown(name)): format must be a string like \"%m/%d/%Y\"")
                }
            }
            if let zoneNode = item["timezone"] {
                if let text = zoneNode.scalarText, !zoneNode.isNull {
                    do { _ = try TimeZoneName.zone(named: text) } catch { problem(zoneNode, "field \(shown(name)): \(error.description)") }
                    if column.type != .timestamp {
                        problem(zoneNode, "field \(shown(name)): a timezone applies to TIMESTAMP columns, not to \(column.type.rawValue)")
                    } else if item["format"] == nil {
                        problem(
                            zoneNode,
                            "field \(shown(name)): a timezone goes with a format (the zone of the times it reads without one); ISO 8601 timestamps without a zone are UTC"
                        )
                    }
                    column.inputTimezone = text
                } else {
                    problem(zoneNode, "field \(shown(name)): timezone must be an IANA name like \"America/New_York\"")
                }
            }
            schema.columns.append(column)
        }

        if let key = root["primary_key"] {
            for column in key.sequence ?? [key] {
                guard let name = column.scalarText else { continue }
                if seen[name] == nil {
                    problem(column, "primary_key column \(shown(name)) is not a field\(Suggestion.hint(for: name, in: schema.columnNames))")
                }
                schema.primaryKey.append(name)
            }
        }
        if let partition = root["partition_by"], let name = partition.scalarText {
            if let column = schema.column(name) {
                if ![.date, .timestamp, .datetime, .int64, .string].contains(column.type) {
                    problem(
                        partition,
                        "partition_by column \(shown(name)) is \(column.type.rawValue); partitions are by DATE, TIMESTAMP, DATETIME, INT64 or STRING")
                }
            } else if seen[name] == nil {  // a field whose type failed is reported already
                problem(partition, "partition_by column \(shown(name)) is not a field\(Suggestion.hint(for: name, in: schema.columnNames))")
            }
            schema.partitionBy = name
        }
        return .success((schema, problems))
    }

    /// The first way two schemas differ, in words.
    static func difference(_ a: TableSchema, _ b: TableSchema) -> String {
        let aNames = Set(a.columnNames), bNames = Set(b.columnNames)
        if let missing = a.columnNames.first(where: { !bNames.contains($0) }) { return "column \(shown(missing)) is only in \(a.file)" }
        if let extra = b.columnNames.first(where: { !aNames.contains($0) }) { return "column \(shown(extra)) is only in \(b.file)" }
        for column in a.columns {
            if let other = b.column(column.name), other != column {
                return
                    "column \(shown(column.name)) is \(column.type.rawValue) \(column.mode.rawValue) in \(a.file) but \(other.type.rawValue) \(other.mode.rawValue) in \(b.file)"
            }
        }
        if a.columnNames != b.columnNames { return "the columns are in a different order" }
        if a.primaryKey != b.primaryKey { return "primary keys differ" }
        return "partition columns differ"
    }
}
