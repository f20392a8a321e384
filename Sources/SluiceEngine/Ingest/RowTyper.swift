import Foundation
import SluiceModel
import SluiceStorage

/// Maps a source's fields to a schema's columns and types each record's values into what the
/// warehouse stores.
///
/// Columns take the field of the same name (exact, else the one field whose name differs only
/// in case), or the field `rename` names for them (schema column → source field, the step's
/// `columns`). Fields the schema doesn't name are ignored. Types:
///
/// | type | accepts | stores |
/// |---|---|---|
/// | STRING | any text; a JSON number or boolean as written | text |
/// | INT64 | `[+-]digits` within 64 bits | integer |
/// | FLOAT64 | decimal numbers with an optional exponent, finite | real |
/// | NUMERIC, BIGNUMERIC | the same, within 29 (38) digits before the point and 9 (38) after | canonical decimal text, exact |
/// | BOOL | `true`/`false` (any case), `t`/`f`, `1`/`0` | integer 1/0 |
/// | DATE | `YYYY-MM-DD`, a real day | text |
/// | TIMESTAMP | `YYYY-MM-DD[T ]HH:MM:SS[.f]` + `Z`, `UTC`, `±HH:MM` or nothing (UTC) | text `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, in UTC |
/// | DATETIME | the same without a zone | text `YYYY-MM-DDTHH:MM:SS[.ffffff]` |
/// | TIME | `HH:MM:SS[.f]` | text `HH:MM:SS[.ffffff]` |
/// | JSON | one JSON value (a JSON source's value as written) | text |
/// | BYTES | base64 | blob |
///
/// An unquoted empty CSV field, JSON null and a missing JSON key are NULL; so is a quoted
/// empty CSV field for every type but STRING, where it is the empty string. NULL in a
/// REQUIRED column makes the row bad. A REPEATED column takes a JSON array, stored as JSON text.
public struct RowTyper: Sendable {
    public let schema: TableSchema
    /// The source file, as messages name it.
    public let file: String
    /// How many fields each record should have.
    private let expectedFields: Int
    private let columns: [ColumnPlan]
    private let columnNames: [String]

    /// How to fill one column; names are kept apart so typing a value copies no strings.
    private struct ColumnPlan: Sendable {
        var type: ColumnType
        var required: Bool
        var repeated: Bool
        /// The source field, or nil when the source has none (always NULL).
        var field: Int?
        /// How the source writes the column's dates or times, when not ISO 8601. A reference,
        /// nil for most columns, so copying a plan per value costs no reference counting.
        var declared: DeclaredFormat?
    }

    /// A column's declared input format and the zone of timestamps read without one (nil: UTC).
    private final class DeclaredFormat: Sendable {
        let format: TimeFormat
        let zone: TimeZone?

        init(format: TimeFormat, zone: TimeZone?) {
            self.format = format
            self.zone = zone
        }
    }

    /// The field names a JSON reader should pick out for `schema`: each column's name, or its
    /// source field from `rename`.
    public static func sourceFields(schema: TableSchema, rename: [String: String] = [:]) -> [String] {
        schema.columns.map { rename[$0.name] ?? $0.name }
    }

    /// Maps `fields` (a reader's) to the schema's columns. Fails with `missing_column` when a
    /// REQUIRED column, or a column `rename` maps, has no field; with `duplicate_column` when a
    /// column's field appears twice; with `invalid_config` when `rename` names no column.
    public init(schema: TableSchema, fields: [String], rename: [String: String] = [:], file: String) throws(StepFailure) {
        self.schema = schema
        self.file = file
        expectedFields = fields.count
        for column in rename.keys.sorted() where schema.column(column) == nil {
            throw StepFailure.config("columns maps '\(column)', which is not a column of \(schema.table) (\(schema.file))")
        }
        var positions: [String: [Int]] = [:]
        var folded: [String: [Int]] = [:]
        for (index, field) in fields.enumerated() {
            positions[field, default: []].append(index)
            folded[field.lowercased(), default: []].append(index)
        }
        var columns: [ColumnPlan] = []
        for column in schema.columns {
            let source = rename[column.name] ?? column.name
            var field: Int?
            if let exact = positions[source] {
                guard exact.count == 1 else {
                    throw StepFailure(
                        .duplicateColumn, "\(file) has \(exact.count) columns named '\(source)'; \(column.name) can't tell which to read",
                        at: .start(of: file))
                }
                field = exact[0]
            } else if let similar = folded[source.lowercased()], similar.count == 1 {
                field = similar[0]
            } else if column.mode == .required || rename[column.name] != nil {
                let why =
                    rename[column.name] != nil
                    ? "which columns maps to \(column.name)"
                    : "which \(schema.table) requires (\(column.name) is REQUIRED in \(schema.file))"
                throw StepFailure(.missingColumn, "\(file) has no column '\(source)', \(why)", at: .start(of: file))
            }
            var plan = ColumnPlan(type: column.type, required: column.mode == .required, repeated: column.mode == .repeated, field: field)
            if let why = Self.formatProblem(of: column) { throw StepFailure.config("column \(column.name): \(why)") }
            if let format = column.inputFormat {
                var zone: TimeZone?
                if let name = column.inputTimezone, name != "UTC" {
                    do { zone = try TimeZoneName.zone(named: name) } catch { throw StepFailure.config("column \(column.name): \(error.description)") }
                }
                plan.declared = DeclaredFormat(format: format, zone: zone)
            }
            columns.append(plan)
        }
        self.columns = columns
        columnNames = schema.columnNames
    }

    /// Why a column's declared `format` and `timezone` can't read it (a format on a type
    /// that has none, a timezone without a format); nil when they can, or there are none.
    static func formatProblem(of column: TableSchema.Column) -> String? {
        guard let format = column.inputFormat else {
            guard column.inputTimezone == nil else {
                return "a timezone goes with a format (the zone of the times it reads without one); ISO 8601 timestamps without a zone are UTC"
            }
            return nil
        }
        return format.problem(for: column.type, timezone: column.inputTimezone).map { "format \(shown(format.pattern)): \($0)" }
    }

    /// The record's values typed in the schema's column order, or why the record doesn't fit.
    public func type(_ record: RawRecord) -> Result<[WarehouseValue], BadRow> {
        if let issue = record.issue {
            return .failure(badRow(record, at: record.position(ofRawOffset: issue.offset), issue.message))
        }
        if record.fieldCount != expectedFields {
            return .failure(wrongFieldCount(record))
        }
        let batch = record.batch
        let head = record.head
        let bytes = batch.bytes.buffer(0..<batch.bytes.count)
        let spans = batch.fields.base + Int(head.firstField)
        var bad: (column: Int, field: Int, reason: String)?
        let row = [WarehouseValue](unsafeUninitializedCapacity: columns.count) { row, initialized in
            for (index, column) in columns.enumerated() {
                let value: WarehouseValue
                if let field = column.field {
                    switch Self.value(spans[field], in: bytes, rawStart: Int(head.rawStart), for: column) {
                    case .value(let typed):
                        value = typed
                    case .bad(let reason):
                        bad = (index, field, reason)
                        return
                    }
                } else {
                    value = .null
                }
                (row.baseAddress! + initialized).initialize(to: value)
                initialized += 1
            }
        }
        if let bad {
            return .failure(badRow(record, at: record.position(ofField: bad.field), "column \(columnNames[bad.column]): \(bad.reason)"))
        }
        return .success(row)
    }

    private func badRow(_ record: RawRecord, at position: (line: Int, column: Int), _ reason: String) -> BadRow {
        BadRow(
            line: record.line, location: SourceLocation(file: file, line: position.line, column: position.column),
            reason: reason, raw: record.raw)
    }

    private func wrongFieldCount(_ record: RawRecord) -> BadRow {
        let counts = "the record has \(record.fieldCount) field\(record.fieldCount == 1 ? "" : "s") where \(expectedFields) were expected"
        if record.fieldCount > expectedFields {
            return badRow(record, at: record.position(ofField: expectedFields), counts)
        }
        let firstMissing = columns.indices.filter { (columns[$0].field ?? -1) >= record.fieldCount }
            .min { columns[$0].field! < columns[$1].field! }
        let reason = firstMissing.map { "column \(columnNames[$0]): missing, \(counts)" } ?? counts
        return badRow(record, at: record.position(ofField: record.fieldCount), reason)
    }

    private enum Typed {
        case value(WarehouseValue)
        case bad(String)
    }

    private static func value(_ span: FieldSpan, in bytes: UnsafeBufferPointer<UInt8>, rawStart: Int, for column: ColumnPlan) -> Typed {
        let content = UnsafeBufferPointer(rebasing: bytes[Int(span.start)..<Int(span.end)])
        let type = column.type
        func null(_ what: String) -> Typed {
            column.required ? .bad("\(what), but the column is REQUIRED (expected \(type.withArticle))") : .value(.null)
        }
        switch span.kind {
        case .missing:
            return null("missing from the object")
        case .null:
            return null("null")
        case .plain, .quoted, .string:
            if content.isEmpty, span.kind == .plain || type != .string || column.repeated {
                return null("empty")
            }
            if column.repeated {
                guard content.first == UInt8(ascii: "["), ValueSyntax.isJSON(content) else {
                    return .bad("\(quoted(content)) is not a JSON array (the column is REPEATED)")
                }
                return .value(.text(ValueSyntax.text(content)))
            }
            if type == .json, span.kind == .string {
                return .value(.text(ValueSyntax.text(stringLiteral(in: bytes, at: rawStart + Int(span.rawOffset)))))
            }
            if let declared = column.declared {
                return typeFormatted(content, as: type, format: declared.format, zone: declared.zone)
            }
            return typeText(content, as: type)
        case .number:
            switch type {
            case .string, .json:
                return .value(.text(ValueSyntax.text(content)))
            case .int64, .float64, .numeric, .bigNumeric:
                return typeText(content, as: type)
            case .bool:
                if let value = ValueSyntax.bool(content), content.count == 1 { return .value(.integer(value ? 1 : 0)) }
                return .bad("\(ValueSyntax.text(content)) is not \(type.withArticle)\(type.expectedForm)")
            default:
                return .bad("the number \(ValueSyntax.text(content)) is not \(type.withArticle)\(type.expectedForm)")
            }
        case .boolTrue, .boolFalse:
            let value = span.kind == .boolTrue
            switch type {
            case .bool: return .value(.integer(value ? 1 : 0))
            case .string, .json: return .value(.text(value ? "true" : "false"))
            default: return .bad("\(value) is not \(type.withArticle)\(type.expectedForm)")
            }
        case .container:
            let isArray = content.first == UInt8(ascii: "[")
            if type == .json || (column.repeated && isArray) {
                return .value(.text(ValueSyntax.text(content)))
            }
            return .bad("\(isArray ? "an array" : "an object") is not \(column.repeated ? "a JSON array" : type.withArticle)")
        }
    }

    /// Types text (a CSV field, a JSON string's content, a JSON number as written).
    private static func typeText(_ content: UnsafeBufferPointer<UInt8>, as type: ColumnType) -> Typed {
        func invalid() -> Typed { .bad("\(quoted(content)) is not \(type.withArticle)\(type.expectedForm)") }
        func outOfRange() -> Typed { .bad("\(quoted(content)) is out of range for \(type.rawValue)") }
        switch type {
        case .string:
            return .value(.text(ValueSyntax.text(content)))
        case .int64:
            switch ValueSyntax.int64(content) {
            case .value(let value): return .value(.integer(value))
            case .invalid: return invalid()
            case .outOfRange: return outOfRange()
            }
        case .float64:
            switch ValueSyntax.double(content) {
            case .value(let value): return .value(.real(value))
            case .invalid: return invalid()
            case .outOfRange: return outOfRange()
            }
        case .numeric, .bigNumeric:
            guard let decimal = ExactDecimal.parse(content), let limits = type.decimalLimits else { return invalid() }
            switch limits.check(decimal) {
            case .fits(let value): return .value(.text(value.description))
            case .outOfRange:
                return .bad(
                    "\(quoted(content)) is out of range for \(type.rawValue) (at most \(limits.precision - limits.scale) digits before the point)")
            case .tooManyFractionDigits:
                let more = type == .numeric ? "; declare the column BIGNUMERIC to keep them" : ""
                return .bad(
                    "\(quoted(content)) has \(decimal.scale) digits after the point, and \(type.rawValue) keeps \(limits.scale)\(more)")
            }
        case .bool:
            guard let value = ValueSyntax.bool(content) else { return invalid() }
            return .value(.integer(value ? 1 : 0))
        case .date:
            return ValueSyntax.date(content) ? .value(.text(ValueSyntax.text(content))) : invalid()
        case .timestamp, .datetime:
            switch ValueSyntax.timestamp(content, zoned: type == .timestamp) {
            case .value(let text): return .value(.text(text))
            case .invalid: return invalid()
            case .outOfRange: return outOfRange()
            }
        case .time:
            guard let text = ValueSyntax.time(content) else { return invalid() }
            return .value(.text(text))
        case .json:
            guard ValueSyntax.isJSON(content) else { return .bad("\(quoted(content)) is not valid JSON") }
            return .value(.text(ValueSyntax.text(content)))
        case .bytes:
            guard let blob = ValueSyntax.base64(content) else { return invalid() }
            return .value(.blob(blob))
        }
    }

    /// Types a date or time the source writes in a declared format (a column's `format`).
    private static func typeFormatted(
        _ content: UnsafeBufferPointer<UInt8>, as type: ColumnType, format: TimeFormat, zone: TimeZone?
    ) -> Typed {
        guard let reading = format.read(content) else {
            return .bad("\(quoted(content)) does not match the format \(shown(format.pattern)) declared for this \(type.rawValue) column")
        }
        switch type {
        case .date:
            return .value(.text(ValueSyntax.canonical(date: reading.date)))
        case .datetime:
            return .value(.text(ValueSyntax.canonical(date: reading.date, seconds: reading.seconds, micros: reading.micros, zone: "")))
        default:
            let instant = reading.instant(in: zone ?? .gmt)
            let day = CalendarDate(daysSinceEpoch: Int((Double(instant) / 86_400).rounded(.down)))
            guard (1...9999).contains(day.year) else { return .bad("\(quoted(content)) is out of range for \(type.rawValue)") }
            let seconds = instant - day.daysSinceEpoch * 86_400
            return .value(.text(ValueSyntax.canonical(date: day, seconds: seconds, micros: reading.micros, zone: "Z")))
        }
    }

    /// The JSON string literal (quotes and escapes included) whose opening quote is at `start`.
    private static func stringLiteral(in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> UnsafeBufferPointer<UInt8> {
        var index = start + 1
        while index < bytes.count, bytes[index] != 0x22 {
            index += bytes[index] == 0x5C ? 2 : 1
        }
        return UnsafeBufferPointer(rebasing: bytes[start..<min(index + 1, bytes.count)])
    }

    /// A value for a message: quoted, control characters escaped, long ones cut.
    private static func quoted(_ content: UnsafeBufferPointer<UInt8>) -> String {
        // Secrets first, then the cut: a cut piece of a secret is no longer recognisable.
        var text = SecretRedactor.shared.redactLiveValues(ValueSyntax.text(content))
        if text.count > 60 { text = text.prefix(57) + "…" }
        text = text.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
            .replacingOccurrences(of: "\t", with: "\\t")
        return "'\(text)'"
    }
}

extension ColumnType {
    /// "an INT64", "a DATE", "BYTES": the type as a message says what was expected.
    fileprivate var withArticle: String {
        switch self {
        case .int64: "an INT64"
        case .bytes: "BYTES"
        case .json: "JSON"
        default: "a \(rawValue)"
        }
    }

    /// How the type is written, for a message about a value that isn't.
    fileprivate var expectedForm: String {
        switch self {
        case .bool: " (expected true/false, t/f or 1/0)"
        case .date: " (expected YYYY-MM-DD)"
        case .timestamp: " (expected YYYY-MM-DD HH:MM:SS[.ffffff] with an optional Z or ±HH:MM)"
        case .datetime: " (expected YYYY-MM-DD HH:MM:SS[.ffffff], without a time zone)"
        case .time: " (expected HH:MM:SS[.ffffff])"
        case .bytes: " (expected base64)"
        default: ""
        }
    }
}
