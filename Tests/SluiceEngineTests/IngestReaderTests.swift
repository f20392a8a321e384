import Foundation
import SluiceModel
import SluiceStorage
import Testing

@testable import SluiceEngine

// Readers and typing for `ingest`, on real files in a temp folder.

/// A temp folder removed when the value goes away.
final class IngestFolder {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-ingest-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `name` and returns its path.
    func file(_ name: String, _ text: String) -> String {
        bytes(name, Array(text.utf8))
    }

    func bytes(_ name: String, _ bytes: [UInt8]) -> String {
        let path = url.appendingPathComponent(name).path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    /// A schema read from BigQuery JSON, as the project reads `schemas/*.json`.
    func schema(_ fields: [(String, String, String)], table: String = "usage") -> TableSchema {
        let json = "[" + fields.map { #"{"name": "\#($0.0)", "type": "\#($0.1)", "mode": "\#($0.2)"}"# }.joined(separator: ",") + "]"
        let path = file("\(table).json", json)
        var catalog = SchemaCatalog()
        catalog.load(fileAt: URL(fileURLWithPath: path), path: "schemas/\(table).json")
        #expect(catalog.diagnostics.isEmpty, "\(catalog.diagnostics)")
        return catalog.byPath["schemas/\(table).json"]!
    }
}

/// Runs `body` and returns the step failure it throws.
func stepFailure(_ body: () throws(StepFailure) -> Void) -> StepFailure? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Every record, in batches of `limit`, checking no batch is larger.
func readAll(_ reader: inout some RecordReader, limit: Int = 1000) throws(StepFailure) -> [RawRecord] {
    var records: [RawRecord] = []
    while true {
        let batch = try reader.next(limit: limit)
        #expect(batch.count <= limit)
        if batch.isEmpty { return records }
        records += batch
    }
}

@Suite struct IngestReaderTests {
    // MARK: CSV structure

    @Test func quotedFieldsHoldDelimitersEscapedQuotesAndLineBreaks() throws {
        let folder = IngestFolder()
        let path = folder.file(
            "q.csv", "id,note\n1,\"a,b\"\n2,\"he said \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\"crlf\r\ninside\"\n5,\"cr\rinside\"\n6,plain\n")
        var reader = try CSVReader(path: path, file: "q.csv")
        #expect(reader.fields == ["id", "note"])
        let records = try readAll(&reader)
        #expect(
            records.map { $0.values } == [
                [.text("1", quoted: false), .text("a,b", quoted: true)],
                [.text("2", quoted: false), .text("he said \"hi\"", quoted: true)],
                [.text("3", quoted: false), .text("two\nlines", quoted: true)],
                [.text("4", quoted: false), .text("crlf\r\ninside", quoted: true)],
                [.text("5", quoted: false), .text("cr\rinside", quoted: true)],
                [.text("6", quoted: false), .text("plain", quoted: false)],
            ])
        // A record that spans lines pushes the next one down.
        #expect(records.map(\.line) == [2, 3, 4, 6, 8, 10])
        #expect(records[2].raw == "3,\"two\nlines\"")
    }

    @Test func recordsEndAtLFCRLFOrCRAndBlankLinesAreSkipped() throws {
        let folder = IngestFolder()
        let path = folder.file("n.csv", "a,b\r\n1,2\r\n\r\n3,4\r5,6\n\n7,8")
        var reader = try CSVReader(path: path)
        let records = try readAll(&reader)
        #expect(records.map { $0.values } == [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]].map { $0.map { .text($0, quoted: false) } })
        #expect(records.map(\.line) == [2, 4, 5, 7])
        #expect(records.map(\.raw) == ["1,2", "3,4", "5,6", "7,8"])
    }

    @Test func unquotedEmptyIsNullAndQuotedEmptyIsTheEmptyString() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("a", "STRING", "NULLABLE"), ("b", "STRING", "REQUIRED"), ("n", "INT64", "NULLABLE")])
        let path = folder.file("e.csv", "a,b,n\n,\"\",\"\"\n\"\",x,\n")
        var reader = try CSVReader(path: path, file: "e.csv")
        let records = try readAll(&reader)
        #expect(records[0].values == [.null, .text("", quoted: true), .text("", quoted: true)])
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "e.csv")
        #expect(try typer.type(records[0]).get() == [.null, .text(""), .null])
        #expect(try typer.type(records[1]).get() == [.text(""), .text("x"), .null])
    }

    @Test func headerMapsColumnsByNameWithRenamesAndIgnoresExtraFields() throws {
        let folder = IngestFolder()
        let schema = folder.schema([
            ("request_id", "STRING", "REQUIRED"), ("input_tokens", "INT64", "NULLABLE"),
            ("model", "STRING", "NULLABLE"), ("notes", "STRING", "NULLABLE"),
        ])
        let path = folder.file("h.csv", "extra,tokens_in,Model,request_id\nzzz,12,gpt-4o,r1\n")
        var reader = try CSVReader(path: path, file: "h.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, rename: ["input_tokens": "tokens_in"], file: "h.csv")
        let records = try readAll(&reader)
        // `Model` matches `model` by case; `notes` has no field and is NULL; `extra` is ignored.
        #expect(try typer.type(records[0]).get() == [.text("r1"), .integer(12), .text("gpt-4o"), .null])
    }

    @Test func headerWithoutARequiredColumnFailsAtTheFileStart() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("request_id", "STRING", "REQUIRED"), ("model", "STRING", "NULLABLE")])
        let path = folder.file("m.csv", "model,other\ngpt,1\n")
        let reader = try CSVReader(path: path, file: "data/m.csv")
        let failure = stepFailure { () throws(StepFailure) in
            _ = try RowTyper(schema: schema, fields: reader.fields, file: "data/m.csv")
        }
        #expect(failure?.code == "missing_column")
        #expect(
            failure?.description
                == "data/m.csv:1:1: data/m.csv has no column 'request_id', which usage requires (request_id is REQUIRED in schemas/usage.json) [missing_column]"
        )
    }

    @Test func renamesToAbsentFieldsAndUnknownColumnsAndDuplicateHeadersFail() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "NULLABLE"), ("n", "INT64", "NULLABLE")])
        let renamed = stepFailure { () throws(StepFailure) in
            _ = try RowTyper(schema: schema, fields: ["id", "n"], rename: ["n": "count"], file: "f.csv")
        }
        #expect(renamed?.code == "missing_column")
        #expect(renamed?.message == "f.csv has no column 'count', which columns maps to n")
        let unknown = stepFailure { () throws(StepFailure) in
            _ = try RowTyper(schema: schema, fields: ["id", "n"], rename: ["nope": "id"], file: "f.csv")
        }
        #expect(unknown?.code == "invalid_config")
        let duplicate = stepFailure { () throws(StepFailure) in
            _ = try RowTyper(schema: schema, fields: ["id", "n", "id"], file: "f.csv")
        }
        #expect(duplicate?.code == "duplicate_column")
        // A duplicate the schema doesn't read is harmless.
        _ = try RowTyper(schema: schema, fields: ["id", "n", "x", "x"], file: "f.csv")
    }

    @Test func headerlessCSVTakesFieldsByPosition() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("n", "INT64", "NULLABLE")])
        let path = folder.file("p.csv", "a,1\nb,2\n")
        var reader = try CSVReader(path: path, header: .none(fields: schema.columnNames))
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "p.csv")
        let rows = try readAll(&reader).map { try typer.type($0).get() }
        #expect(rows == [[.text("a"), .integer(1)], [.text("b"), .integer(2)]])
    }

    @Test func byteOrderMarkIsSkippedAndTheDelimiterIsConfigurable() throws {
        let folder = IngestFolder()
        let path = folder.bytes("t.tsv", [0xEF, 0xBB, 0xBF] + Array("id\tnote\n1\t\"a\tb\"\n".utf8))
        var reader = try CSVReader(path: path, delimiter: "\t")
        #expect(reader.fields == ["id", "note"])
        #expect(try readAll(&reader).map(\.values) == [[.text("1", quoted: false), .text("a\tb", quoted: true)]])
        let semicolon = folder.file("s.csv", "id;note\n1;\"a;b\"\n")
        var second = try CSVReader(path: semicolon, delimiter: ";")
        #expect(try readAll(&second).map(\.values) == [[.text("1", quoted: false), .text("a;b", quoted: true)]])
        let bad = stepFailure { () throws(StepFailure) in _ = try CSVReader(path: semicolon, delimiter: "ab") }
        #expect(bad?.code == "invalid_config")
    }

    @Test func textAfterAClosingQuoteIsABadRow() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "NULLABLE"), ("note", "STRING", "NULLABLE")])
        let path = folder.file("x.csv", "id,note\n1,\"ab\"cd\n2,ok\n")
        var reader = try CSVReader(path: path, file: "x.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "x.csv")
        let records = try readAll(&reader)
        #expect(records.count == 2)
        guard case .failure(let bad) = typer.type(records[0]) else { Issue.record("expected a bad row"); return }
        #expect(bad.description == #"x.csv:2:7: unexpected text after the closing quote of a field (a quote inside a quoted field is written "")"#)
        #expect(bad.raw == "1,\"ab\"cd")
        #expect(try typer.type(records[1]).get() == [.text("2"), .text("ok")])
    }

    @Test func aNULByteMakesABadRowAtItsPlace() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "NULLABLE"), ("note", "STRING", "NULLABLE")])
        let path = folder.bytes("n.csv", Array("id,note\n1,ab".utf8) + [0] + Array("cd\n2,\"q".utf8) + [0] + Array("\"\n3,ok\n".utf8))
        var reader = try CSVReader(path: path, file: "n.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "n.csv")
        let results = try readAll(&reader).map { typer.type($0) }
        let bad = results.compactMap { if case .failure(let bad) = $0 { bad } else { nil } }
        #expect(bad.map(\.description) == ["n.csv:2:5: a NUL byte (0x00), which no text holds", "n.csv:3:5: a NUL byte (0x00), which no text holds"])
        #expect(bad.first?.raw == "1,ab\u{0}cd")
        #expect(try results[2].get() == [.text("3"), .text("ok")])
        // Nor is it taken as the end of a header.
        let header = folder.bytes("h.csv", Array("id,no".utf8) + [0] + Array("te\n1,x\n".utf8))
        #expect(stepFailure { () throws(StepFailure) in _ = try CSVReader(path: header, file: "h.csv") }?.code == "malformed_csv")
    }

    @Test func aNULEscapeInJSONMakesABadRowToo() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("note", "STRING", "NULLABLE")])
        let lines = #"{"id": "a", "note": "x\u0000y"}"# + "\n" + #"{"id": "b", "note": "a \\u0000 is text"}"# + "\n"
        var jsonl = try JSONLinesReader(path: folder.file("n.jsonl", lines), file: "n.jsonl", fields: RowTyper.sourceFields(schema: schema))
        let typer = try RowTyper(schema: schema, fields: jsonl.fields, file: "n.jsonl")
        let results = try readAll(&jsonl).map { typer.type($0) }
        guard case .failure(let bad) = results[0] else { Issue.record("expected a bad row"); return }
        #expect(bad.description == #"n.jsonl:1:23: a NUL character (\u0000), which no text holds"#)
        #expect(try results[1].get() == [.text("b"), .text(#"a \u0000 is text"#)])

        let array = #"{"data": [{"id": "a", "note": "\u0000"}, {"id": "b"}]}"#
        var reader = try JSONArrayReader(
            path: folder.file("n.json", array), file: "n.json", fields: RowTyper.sourceFields(schema: schema), items: "/data")
        let typed = try readAll(&reader).map { typer.type($0) }
        guard case .failure(let arrayBad) = typed[0] else { Issue.record("expected a bad row"); return }
        #expect(arrayBad.description.hasSuffix("a NUL character (\\u0000), which no text holds"), "\(arrayBad.description)")
        #expect(try typed[1].get() == [.text("b"), .null])
    }

    @Test func recordsWithTooFewOrTooManyFieldsAreBadRows() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("a", "STRING", "NULLABLE"), ("b", "STRING", "NULLABLE"), ("c", "INT64", "NULLABLE")])
        let path = folder.file("f.csv", "a,b,c\n1,2,3,4\n1,2\n")
        var reader = try CSVReader(path: path, file: "f.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "f.csv")
        let records = try readAll(&reader)
        let bad = records.map { typer.type($0) }.compactMap { if case .failure(let bad) = $0 { bad } else { nil } }
        #expect(
            bad.map(\.description) == [
                "f.csv:2:7: the record has 4 fields where 3 were expected",
                "f.csv:3:4: column c: missing, the record has 2 fields where 3 were expected",
            ])
    }

    // MARK: Broken CSV files

    @Test func truncatedLastLineInsideAQuoteFailsAtTheQuote() throws {
        let folder = IngestFolder()
        let path = folder.file("t.csv", "id,note\n1,ok\n2,\"never closed\n")
        var reader = try CSVReader(path: path, file: "t.csv")
        let failure = stepFailure { () throws(StepFailure) in _ = try readAll(&reader) }
        #expect(failure?.code == "unterminated_quote")
        #expect(failure?.location == SourceLocation(file: "t.csv", line: 3, column: 3))
        #expect(failure?.transient == false)
    }

    @Test func truncatedLastLineOutsideQuotesIsABadRowNotAFailure() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("day", "DATE", "REQUIRED"), ("n", "INT64", "REQUIRED")])
        let path = folder.file("t.csv", "id,day,n\nr1,2025-06-02,5\nr2,2025-0")
        var reader = try CSVReader(path: path, file: "t.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "t.csv")
        let results = try readAll(&reader).map { typer.type($0) }
        #expect(try results[0].get() == [.text("r1"), .text("2025-06-02"), .integer(5)])
        guard case .failure(let bad) = results[1] else { Issue.record("expected a bad row"); return }
        #expect(bad.description == "t.csv:3:10: column n: missing, the record has 2 fields where 3 were expected")
        #expect(bad.line == 3)
        #expect(bad.raw == "r2,2025-0")
    }

    @Test func emptyFilesFail() throws {
        let folder = IngestFolder()
        for (name, bytes) in [("zero.csv", [UInt8]()), ("bom.csv", [0xEF, 0xBB, 0xBF]), ("blank.csv", Array("\n\r\n\n".utf8))] {
            let path = folder.bytes(name, bytes)
            let failure = stepFailure { () throws(StepFailure) in _ = try CSVReader(path: path, file: name) }
            #expect(failure?.code == "empty_input", "\(name)")
            #expect(failure?.location == SourceLocation(file: name, line: 1, column: 1))
            #expect(failure?.message == "\(name) is empty: a CSV file needs at least a header line naming its columns")
        }
        // A header and no rows is an empty table, not an error.
        var headerOnly = try CSVReader(path: folder.file("h.csv", "a,b\n"))
        #expect(try headerOnly.next(limit: 10).isEmpty)
    }

    @Test func missingInputFileFails() {
        let failure = stepFailure { () throws(StepFailure) in _ = try CSVReader(path: "/nonexistent/x.csv", file: "examples/x.csv") }
        #expect(failure?.code == "missing_input")
        #expect(failure?.message == "input file examples/x.csv does not exist")
    }

    @Test func invalidUTF8IsReportedAtItsLineAndColumn() throws {
        let folder = IngestFolder()
        // Line 3: `é` is one character, so the bad byte after "2,ré" is column 5.
        let bytes = Array("id,name\n1,ok\n2,ré".utf8) + [0xFF] + Array("x\n".utf8)
        var reader = try CSVReader(path: folder.bytes("u.csv", bytes), file: "u.csv")
        let failure = stepFailure { () throws(StepFailure) in _ = try readAll(&reader) }
        #expect(failure?.description == "u.csv:3:5: byte 0xFF is not valid UTF-8 (the file must be UTF-8 text) [invalid_utf8]")

        // Inside a quoted field that started on an earlier line.
        let multiline = Array("id,name\n\"a\nb".utf8) + [0xC3, 0x28] + Array("\",1\n".utf8)
        var second = try CSVReader(path: folder.bytes("v.csv", multiline), file: "v.csv")
        let inQuotes = stepFailure { () throws(StepFailure) in _ = try readAll(&second) }
        #expect(inQuotes?.location == SourceLocation(file: "v.csv", line: 3, column: 2))
        #expect(inQuotes?.code == "invalid_utf8")

        // In the header.
        let header = stepFailure { () throws(StepFailure) in
            _ = try CSVReader(path: folder.bytes("w.csv", [0x61, 0x2C, 0xC0, 0x0A]), file: "w.csv")
        }
        #expect(header?.location == SourceLocation(file: "w.csv", line: 1, column: 3))
    }

    // MARK: Typing

    static let accepted: [(ColumnType, String, WarehouseValue)] = [
        (.string, "héllo, world", .text("héllo, world")),
        (.int64, "42", .integer(42)),
        (.int64, "-9223372036854775808", .integer(.min)),
        (.int64, "+7", .integer(7)),
        (.float64, "1.5", .real(1.5)),
        (.float64, "-2.5e-3", .real(-0.0025)),
        (.float64, ".5", .real(0.5)),
        (.float64, "3.", .real(3)),
        (.float64, "0.1", .real(0.1)),
        (.float64, "12345678901234567890.5", .real(12345678901234567890.5)),
        (.float64, "1e300", .real(1e300)),
        (.numeric, "0.000125", .text("0.000125")),
        (.bool, "TRUE", .integer(1)),
        (.bool, "false", .integer(0)),
        (.bool, "t", .integer(1)),
        (.bool, "F", .integer(0)),
        (.bool, "1", .integer(1)),
        (.bool, "0", .integer(0)),
        (.date, "2024-02-29", .text("2024-02-29")),
        (.timestamp, "2025-06-02T00:01:02Z", .text("2025-06-02T00:01:02.000000Z")),
        (.timestamp, "2025-06-02 00:01:02", .text("2025-06-02T00:01:02.000000Z")),
        (.timestamp, "2025-06-02T00:01:02.5Z", .text("2025-06-02T00:01:02.500000Z")),
        (.timestamp, "2025-06-02T00:01:02.123456789Z", .text("2025-06-02T00:01:02.123456Z")),
        (.timestamp, "2025-06-02T00:01:02.000Z", .text("2025-06-02T00:01:02.000000Z")),
        (.timestamp, "2025-06-02T01:30:00+02:00", .text("2025-06-01T23:30:00.000000Z")),
        (.timestamp, "2025-12-31T23:00:00-01:30", .text("2026-01-01T00:30:00.000000Z")),
        (.timestamp, "2025-06-02 10:00:00 UTC", .text("2025-06-02T10:00:00.000000Z")),
        (.timestamp, "2025-06-02T10:00:00+0530", .text("2025-06-02T04:30:00.000000Z")),
        (.datetime, "2025-06-02 10:00:00.25", .text("2025-06-02T10:00:00.250000")),
        (.time, "23:59:59", .text("23:59:59")),
        (.time, "07:00:00.1", .text("07:00:00.100000")),
        (.json, #"{"a": [1, 2, {"b": null}]}"#, .text(#"{"a": [1, 2, {"b": null}]}"#)),
        (.json, "3", .text("3")),
        (.bytes, "aGk=", .blob([0x68, 0x69])),
    ]

    @Test(arguments: accepted)
    func valuesOfEachTypeAreAccepted(type: ColumnType, text: String, expected: WarehouseValue) throws {
        let folder = IngestFolder()
        let schema = folder.schema([("v", type.rawValue, "NULLABLE")])
        let escaped = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        var reader = try CSVReader(path: folder.file("a.csv", "v\n\(escaped)\n"), file: "a.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "a.csv")
        let record = try #require(try reader.next(limit: 10).first)
        #expect(try typer.type(record).get() == [expected])
    }

    static let rejected: [(ColumnType, String, String)] = [
        (.int64, "abc", "column v: 'abc' is not an INT64"),
        (.int64, "1.5", "column v: '1.5' is not an INT64"),
        (.int64, "1e3", "column v: '1e3' is not an INT64"),
        (.int64, " 4", "column v: ' 4' is not an INT64"),
        (.int64, "-", "column v: '-' is not an INT64"),
        (.int64, "9223372036854775808", "column v: '9223372036854775808' is out of range for INT64"),
        (.float64, "NaN", "column v: 'NaN' is not a FLOAT64"),
        (.float64, "inf", "column v: 'inf' is not a FLOAT64"),
        (.float64, "1.2.3", "column v: '1.2.3' is not a FLOAT64"),
        (.float64, "0x10", "column v: '0x10' is not a FLOAT64"),
        (.float64, "1e", "column v: '1e' is not a FLOAT64"),
        (.float64, "1e400", "column v: '1e400' is out of range for FLOAT64"),
        (.numeric, "12,5", "column v: '12,5' is not a NUMERIC"),
        (.bool, "yes", "column v: 'yes' is not a BOOL (expected true/false, t/f or 1/0)"),
        (.date, "2025-02-29", "column v: '2025-02-29' is not a DATE (expected YYYY-MM-DD)"),
        (.date, "2025-13-01", "column v: '2025-13-01' is not a DATE (expected YYYY-MM-DD)"),
        (.date, "2025-6-2", "column v: '2025-6-2' is not a DATE (expected YYYY-MM-DD)"),
        (.date, "0000-01-01", "column v: '0000-01-01' is not a DATE (expected YYYY-MM-DD)"),
        (.timestamp, "2025-06-02", "column v: '2025-06-02' is not a TIMESTAMP (expected YYYY-MM-DD HH:MM:SS[.ffffff] with an optional Z or ±HH:MM)"),
        (
            .timestamp, "2025-06-02T24:00:00Z",
            "column v: '2025-06-02T24:00:00Z' is not a TIMESTAMP (expected YYYY-MM-DD HH:MM:SS[.ffffff] with an optional Z or ±HH:MM)"
        ),
        (
            .timestamp, "2025-06-02T10:00:00+2",
            "column v: '2025-06-02T10:00:00+2' is not a TIMESTAMP (expected YYYY-MM-DD HH:MM:SS[.ffffff] with an optional Z or ±HH:MM)"
        ),
        (
            .timestamp, "2025-06-02T10:00:00.Z",
            "column v: '2025-06-02T10:00:00.Z' is not a TIMESTAMP (expected YYYY-MM-DD HH:MM:SS[.ffffff] with an optional Z or ±HH:MM)"
        ),
        (.timestamp, "0001-01-01T00:30:00+01:00", "column v: '0001-01-01T00:30:00+01:00' is out of range for TIMESTAMP"),
        (
            .datetime, "2025-06-02T10:00:00Z",
            "column v: '2025-06-02T10:00:00Z' is not a DATETIME (expected YYYY-MM-DD HH:MM:SS[.ffffff], without a time zone)"
        ),
        (.time, "7:00:00", "column v: '7:00:00' is not a TIME (expected HH:MM:SS[.ffffff])"),
        (.json, "{a: 1}", "column v: '{a: 1}' is not valid JSON"),
        (.json, "[1] 2", "column v: '[1] 2' is not valid JSON"),
        (.bytes, "not base64!", "column v: 'not base64!' is not BYTES (expected base64)"),
    ]

    @Test(arguments: rejected)
    func valuesThatDontFitTheirTypeAreBadRowsThatSayWhy(type: ColumnType, text: String, reason: String) throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "NULLABLE"), ("v", type.rawValue, "NULLABLE")])
        // The value is on line 3, after a two-character field: column 4.
        var reader = try CSVReader(path: folder.file("r.csv", "id,v\nok,1\nab,\"\(text)\"\n"), file: "r.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "r.csv")
        let records = try readAll(&reader)
        guard case .failure(let bad) = typer.type(records[1]) else { Issue.record("'\(text)' was accepted as \(type)"); return }
        #expect(bad.reason == reason)
        #expect(bad.location == SourceLocation(file: "r.csv", line: 3, column: 4))
        #expect(bad.line == 3)
        #expect(bad.raw == "ab,\"\(text)\"")
        #expect(bad.failure.description == "r.csv:3:4: \(reason) [bad_row]")
    }

    @Test func requiredColumnsRejectNullsAndTheMessageNamesTheColumnAndItsPlace() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("request_id", "STRING", "REQUIRED"), ("input_tokens", "INT64", "REQUIRED")])
        var reader = try CSVReader(path: folder.file("n.csv", "request_id,input_tokens\n,5\n\"\",\"\"\n\"x\nrow\",abc\n"), file: "n.csv")
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "n.csv")
        let bad = try readAll(&reader).map { typer.type($0) }.map { result -> String in
            switch result {
            case .success(let row): "\(row)"
            case .failure(let bad): bad.description
            }
        }
        #expect(
            bad == [
                "n.csv:2:1: column request_id: empty, but the column is REQUIRED (expected a STRING)",
                // A quoted "" is an empty STRING, but NULL for an INT64.
                "n.csv:3:4: column input_tokens: empty, but the column is REQUIRED (expected an INT64)",
                // The bad value sits on the record's second line.
                "n.csv:5:6: column input_tokens: 'abc' is not an INT64",
            ])
    }

    // MARK: JSON Lines

    @Test func jsonLinesPicksKeysByNameAndTypesJSONValues() throws {
        let folder = IngestFolder()
        let schema = folder.schema([
            ("id", "STRING", "REQUIRED"), ("n", "INT64", "NULLABLE"), ("ok", "BOOL", "NULLABLE"),
            ("meta", "JSON", "NULLABLE"), ("price", "FLOAT64", "NULLABLE"), ("tag", "STRING", "NULLABLE"),
        ])
        let text = """
            {"id": "a\\"\\u00e9\\ud83d\\ude00\\n", "n": 5, "ok": true, "meta": {"x": [1, {"y": null}]}, "price": 1.25, "unused": [1,2]}

            {"n": "6", "id": "b", "ok": "f", "meta": "s", "price": 2, "tag": 17}\r
              {"id":"c","n":null,"ok":1,"meta":[] ,"price":-1e2,"tag":false}
            """
        var reader = try JSONLinesReader(
            path: folder.file("l.jsonl", text), file: "l.jsonl",
            fields: RowTyper.sourceFields(schema: schema))
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "l.jsonl")
        let records = try readAll(&reader)
        #expect(records.map(\.line) == [1, 3, 4])
        #expect(records[0].values[0] == .text("a\"é😀\n", quoted: true))
        #expect(records[0].values[5] == .missing)
        #expect(records[1].raw == #"{"n": "6", "id": "b", "ok": "f", "meta": "s", "price": 2, "tag": 17}"#)
        #expect(
            try records.map { try typer.type($0).get() } == [
                [.text("a\"é😀\n"), .integer(5), .integer(1), .text(#"{"x": [1, {"y": null}]}"#), .real(1.25), .null],
                [.text("b"), .integer(6), .integer(0), .text(#""s""#), .real(2), .text("17")],
                [.text("c"), .null, .integer(1), .text("[]"), .real(-100), .text("false")],
            ])
    }

    @Test func jsonValuesThatDontFitAreBadRowsAtTheirColumn() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("n", "INT64", "NULLABLE")])
        let text = """
            {"id": "a", "n": 1.5}
            {"n": 2}
            {"id": {"nested": 1}}
            [1, 2]
            {"id": null}
            """
        var reader = try JSONLinesReader(path: folder.file("b.jsonl", text), file: "b.jsonl", fields: RowTyper.sourceFields(schema: schema))
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "b.jsonl")
        let reasons = try readAll(&reader).map { record -> String in
            if case .failure(let bad) = typer.type(record) { return bad.description }
            return "accepted"
        }
        #expect(
            reasons == [
                "b.jsonl:1:18: column n: '1.5' is not an INT64",
                "b.jsonl:2:1: column id: missing from the object, but the column is REQUIRED (expected a STRING)",
                "b.jsonl:3:8: column id: an object is not a STRING",
                "b.jsonl:4:1: expected a JSON object, found an array",
                "b.jsonl:5:8: column id: null, but the column is REQUIRED (expected a STRING)",
            ])
    }

    @Test func malformedJSONLinesFailAtTheProblem() throws {
        let folder = IngestFolder()
        let cases: [(String, String)] = [
            ("{\"id\": \"a\"}\n{\"id\": \"é\", \"n\": 1,}\n", "m.jsonl:2:20: expected a key in double quotes, found '}' [malformed_json]"),
            ("{\"id\": \"a\"}\n{\"id\": \"b\"\n", "m.jsonl:2:11: the line ends where ',' or '}' was expected [malformed_json]"),
            (
                "{\"id\": \"a\"} {\"id\": \"b\"}\n",
                "m.jsonl:1:13: expected the end of the line after the object, found an object (JSON Lines holds one object per line) [malformed_json]"
            ),
            ("{\"id\": \"unterminated}\n", "m.jsonl:1:8: a string starting here is not closed before the line ends [malformed_json]"),
            ("{\"id\": tru}\n", "m.jsonl:1:8: expected a value (a string, number, object, array, true, false or null) [malformed_json]"),
            ("{\"id\": 01}\n", "m.jsonl:1:9: expected ',' or '}', found a number [malformed_json]"),
        ]
        for (text, expected) in cases {
            var reader = try JSONLinesReader(path: folder.file("m.jsonl", text), file: "m.jsonl", fields: ["id", "n"])
            let failure = stepFailure { () throws(StepFailure) in _ = try readAll(&reader) }
            #expect(failure?.description == expected, "\(text)")
        }
        let utf8 = Array("{\"id\": \"a\"}\n{\"id\": \"".utf8) + [0xED, 0xA0, 0x80] + Array("\"}\n".utf8)
        var reader = try JSONLinesReader(path: folder.bytes("u.jsonl", utf8), file: "u.jsonl", fields: ["id"])
        let failure = stepFailure { () throws(StepFailure) in _ = try readAll(&reader) }
        #expect(failure?.description == "u.jsonl:2:9: byte 0xED is not valid UTF-8 (the file must be UTF-8 text) [invalid_utf8]")
        let empty = stepFailure { () throws(StepFailure) in
            _ = try JSONLinesReader(path: folder.file("e.jsonl", "\n  \n"), file: "e.jsonl", fields: ["id"])
        }
        #expect(empty?.code == "empty_input")
    }

    // MARK: JSON arrays

    @Test func jsonArrayStreamsObjectsWithTheirLinesAndColumns() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("n", "INT64", "NULLABLE")])
        let text = """
            [
              {"id": "a", "n": 1},
              {
                "id": "b",
                "n": "x"
              }, {"id": "c"},
              7
            ]
            """
        var reader = try JSONArrayReader(path: folder.file("a.json", text), file: "a.json", fields: RowTyper.sourceFields(schema: schema))
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "a.json")
        let records = try readAll(&reader)
        #expect(records.map(\.line) == [2, 3, 6, 7])
        #expect(records[1].raw == "{\n    \"id\": \"b\",\n    \"n\": \"x\"\n  }")
        #expect(try typer.type(records[0]).get() == [.text("a"), .integer(1)])
        guard case .failure(let bad) = typer.type(records[1]) else { Issue.record("expected a bad row"); return }
        #expect(bad.description == "a.json:5:10: column n: 'x' is not an INT64")
        #expect(bad.line == 3)
        #expect(try typer.type(records[2]).get() == [.text("c"), .null])
        guard case .failure(let notObject) = typer.type(records[3]) else { Issue.record("expected a bad row"); return }
        #expect(notObject.description == "a.json:7:3: expected a JSON object, found a number")
    }

    @Test func itemsPointerFindsTheArrayInsideObjectsAndChecksWhatSurroundsIt() throws {
        let folder = IngestFolder()
        let text = """
            {"meta": {"skip": [1, {"deep": ["x", {"y": [[]]}]}], "s": "}]"}, "result": {"count": 2, "items":
              [{"id": "a"}, {"id": "b", "id": "c"}], "after": {"more": [true, false, null]}}, "tail": 1e5}
            """
        var reader = try JSONArrayReader(path: folder.file("p.json", text), file: "p.json", fields: ["id"], items: "/result/items")
        #expect(try readAll(&reader).map(\.values) == [[.text("a", quoted: true)], [.text("c", quoted: true)]])

        var data = try JSONArrayReader(path: folder.file("d.json", #"{"data": [], "next": null}"#), fields: ["id"], items: "/data")
        #expect(try data.next(limit: 5).isEmpty)

        var escaped = try JSONArrayReader(path: folder.file("e.json", #"{"a/b": [{"id": 1}]}"#), fields: ["id"], items: "/a~1b")
        #expect(try readAll(&escaped).count == 1)

        // Values around the array that are larger than a read chunk stream past too.
        let big = "[" + (0..<60_000).map { #"{"k": [\#($0), "\#($0)"]}"# }.joined(separator: ",") + "]"
        let wrapped = #"{"included": \#(big), "data": [{"id": "x"}, {"id": "y"}], "links": \#(big)}"#
        var large = try JSONArrayReader(path: folder.file("w.json", wrapped), fields: ["id"], items: "/data")
        #expect(try readAll(&large).map(\.values) == [[.text("x", quoted: true)], [.text("y", quoted: true)]])
        #expect(large.bytesRead == wrapped.utf8.count)
        let truncated = String(wrapped.dropLast(3))
        let failure = stepFailure { () throws(StepFailure) in
            var reader = try JSONArrayReader(path: folder.file("t.json", truncated), file: "t.json", fields: ["id"], items: "/data")
            _ = try readAll(&reader)
        }
        #expect(failure?.location == SourceLocation(file: "t.json", line: 1, column: truncated.count + 1))
        #expect(failure?.code == "malformed_json")
    }

    @Test func brokenJSONArraysFailWithThePlace() throws {
        let folder = IngestFolder()
        let cases: [(String, String?, String)] = [
            // Truncated after a complete element.
            ("[{\"id\": \"a\"},\n {\"id\": \"b\"", nil, "j.json:2:12: the file ends where ',' or '}' was expected [malformed_json]"),
            ("[{\"id\": \"a\"}\n", nil, "j.json:2:1: the file ends where ',' or ']' was expected [malformed_json]"),
            ("[{\"id\": \"a\"}]]", nil, "j.json:1:14: expected the end of the file after the JSON document, found ']' [malformed_json]"),
            (
                "[{\"id\": \"a\"} {\"id\": \"b\"}]", nil,
                "j.json:1:14: expected ',' or ']' after an element of the array, found an object [malformed_json]"
            ),
            (
                "{\"id\": 1}", nil,
                "j.json:1:1: expected a JSON array of objects, found an object (set items to the JSON pointer of the array inside it, e.g. /data) [malformed_json]"
            ),
            (
                "{\"other\": [], \"x\": 1}", "/data",
                "j.json:1:1: the object here has no key 'data', so there is no array at /data (items) [missing_items]"
            ),
            ("{\"data\": {\"id\": 1}}", "/data", "j.json:1:10: expected an array of objects at /data (items), found an object [malformed_json]"),
            (
                "{\"data\": [{\"id\": 1}], \"next\": }", "/data",
                "j.json:1:31: expected a value (a string, number, object, array, true, false or null), found '}' [malformed_json]"
            ),
            ("{\"data\": [{\"id\": 1}], \"next\": [1, 2}", "/data", "j.json:1:36: expected ',' or ']', found '}' [malformed_json]"),
            ("[{\"id\": 1}]", "/data", "j.json:1:1: items is /data, so the document must be an object, but it is an array [malformed_json]"),
            ("{\"a\": {\"b\": 1}}", "/a/b", "j.json:1:13: expected an array of objects at /a/b (items), found a number [malformed_json]"),
            ("{\"a\": [1]}", "/a/b", "j.json:1:7: items is /a/b, so /a must be an object, but it is an array [malformed_json]"),
        ]
        for (text, items, expected) in cases {
            let failure = stepFailure { () throws(StepFailure) in
                var reader = try JSONArrayReader(path: folder.file("j.json", text), file: "j.json", fields: ["id"], items: items)
                _ = try readAll(&reader)
            }
            #expect(failure?.description == expected, "\(text)")
        }
        let utf8 = Array("[\n  {\"id\": \"ok\"},\n  {\"id\": \"".utf8) + [0xF5] + Array("\"}]".utf8)
        let invalid = stepFailure { () throws(StepFailure) in
            var reader = try JSONArrayReader(path: folder.bytes("u.json", utf8), file: "u.json", fields: ["id"])
            _ = try readAll(&reader)
        }
        #expect(invalid?.description == "u.json:3:11: byte 0xF5 is not valid UTF-8 (the file must be UTF-8 text) [invalid_utf8]")
        for (name, text) in [("zero.json", ""), ("space.json", " \n\t\n")] {
            let failure = stepFailure { () throws(StepFailure) in
                _ = try JSONArrayReader(path: folder.file(name, text), file: name, fields: ["id"])
            }
            #expect(failure?.code == "empty_input")
        }
    }

    // MARK: Batches and large inputs

    /// Records large enough that a 1 MiB chunk ends inside many of them.
    static func bigCSV(rows: Int) -> String {
        var text = "id,note,n\r\n"
        for row in 0..<rows {
            let note = row % 7 == 0 ? "\"multi\nline \"\"\(row)\"\", with, commas\"" : "plain-\(row)-\(String(repeating: "x", count: row % 50))"
            text += "r\(row),\(note),\(row)\r\n"
        }
        return text
    }

    @Test func batchesHoldAtMostTheLimitAndTogetherEqualTheWholeInput() throws {
        let folder = IngestFolder()
        let path = folder.file("big.csv", Self.bigCSV(rows: 30_000))
        var whole = try CSVReader(path: path)
        let all = try readAll(&whole, limit: 1_000_000)
        #expect(all.count == 30_000)
        for limit in [1, 7, 4096] {
            var reader = try CSVReader(path: path)
            var batched: [RawRecord] = []
            while true {
                let batch = try reader.next(limit: limit)
                #expect(batch.count <= limit)
                if batch.isEmpty { break }
                batched += batch
            }
            #expect(batched.map(\.values) == all.map(\.values))
            #expect(batched.map(\.line) == all.map(\.line))
            #expect(reader.bytesRead == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
        }
        // Lines follow the multi-line notes.
        #expect(all[0].line == 2 && all[1].line == 4 && all[8].line == 12)
        #expect(all[7].values[1] == .text("multi\nline \"7\", with, commas", quoted: true))
    }

    @Test func jsonBatchesAcrossChunksEqualTheWholeInput() throws {
        let folder = IngestFolder()
        var lines: [String] = []
        for row in 0..<30_000 {
            lines.append(#"{"id": "r\#(row)", "pad": "\#(String(repeating: "é", count: row % 40))", "n": \#(row)}"#)
        }
        let jsonl = folder.file("big.jsonl", lines.joined(separator: "\n") + "\n")
        let array = folder.file("big.json", #"{"page": 1, "data": ["# + lines.joined(separator: ",") + #"], "next": "x"}"#)
        var linesReader = try JSONLinesReader(path: jsonl, fields: ["n", "id"])
        var arrayReader = try JSONArrayReader(path: array, fields: ["n", "id"], items: "/data")
        let fromLines = try readAll(&linesReader, limit: 333)
        let fromArray = try readAll(&arrayReader, limit: 500)
        let expected: [[SourceValue]] = (0..<30_000).map { [.number("\($0)"), .text("r\($0)", quoted: true)] }
        #expect(fromLines.map(\.values) == expected)
        #expect(fromArray.map(\.values) == expected)
        #expect(fromLines.last?.line == 30_000)
        // One line holds the whole array: columns count characters across chunks.
        let last = fromArray[29_999]
        let before = #"{"page": 1, "data": ["# + lines[..<29_999].joined(separator: ",") + ","
        #expect(last.position(ofField: 1) == (line: 1, column: before.unicodeScalars.count + #"{"id": "#.count + 1))
        #expect(last.position(ofRawOffset: 0) == (line: 1, column: before.unicodeScalars.count + 1))
    }

    @Test func recordsKeptFromAnEarlierBatchStayIntactWhileLaterBatchesAreRead() throws {
        let folder = IngestFolder()
        let path = folder.file("keep.csv", Self.bigCSV(rows: 30_000))
        var reader = try CSVReader(path: path)
        let first = try reader.next(limit: 100)
        let expected = first.map(\.values)
        var later = 0
        while true {
            // Each later batch is dropped before the next, so the reader reuses its memory;
            // the first batch is still held and must not be.
            let batch = try reader.next(limit: 1_000)
            if batch.isEmpty { break }
            later += batch.count
        }
        #expect(later == 29_900)
        #expect(first.map(\.values) == expected)
        #expect(first[0].values[0] == .text("r0", quoted: false))
    }

    @Test func aLargeFileIsReadInBoundedBatches() throws {
        let folder = IngestFolder()
        let schema = folder.schema([("id", "STRING", "REQUIRED"), ("note", "STRING", "NULLABLE"), ("n", "INT64", "REQUIRED")])
        let path = folder.file("large.csv", Self.bigCSV(rows: 200_000))
        var reader = try CSVReader(path: path)
        let typer = try RowTyper(schema: schema, fields: reader.fields, file: "large.csv")
        var rows = 0
        var largestBatchBytes = 0
        var sum: Int64 = 0
        while true {
            let batch = try reader.next(limit: 2_000)
            if batch.isEmpty { break }
            #expect(batch.count <= 2_000)
            largestBatchBytes = max(largestBatchBytes, batch[0].batch.bytes.count)
            for record in batch {
                guard case .integer(let n) = try typer.type(record).get()[2] else { continue }
                sum += n
                rows += 1
            }
        }
        #expect(rows == 200_000)
        #expect(sum == Int64(199_999 * 200_000 / 2))
        // 2,000 records of under 100 bytes each, however large the file.
        #expect(largestBatchBytes < 200_000)
    }

    @Test func aRecordLongerThanAChunkIsReadWhole() throws {
        let folder = IngestFolder()
        let long = String(repeating: "abc,\"\n", count: 500_000)
        let escaped = long.replacingOccurrences(of: "\"", with: "\"\"")
        var reader = try CSVReader(path: folder.file("long.csv", "id,text\n1,\"\(escaped)\"\n2,short\n"))
        let records = try readAll(&reader)
        #expect(records.count == 2)
        #expect(records[0].values[1] == .text(long, quoted: true))
        #expect(records[1].line == 3 + 500_000)
    }

    @Test func aNextLinkIsFollowedOnlyOnTheFirstPagesSchemeHostAndPort() throws {
        let first = try #require(URL(string: "https://API.example.com/v1/usage?limit=2"))
        func follows(_ header: String) -> Bool {
            guard let link = HTTPSource.nextLink(header, relativeTo: first) else { return false }
            return (try? HTTPSource.sameOrigin(link, as: first, after: 1)) != nil
        }
        #expect(follows("</v1/usage?page=2>; rel=\"next\""))
        #expect(follows("<?page=2>; rel=next"))
        #expect(follows("<https://api.example.com:443/v1/usage?page=2>; rel=\"next\""), "443 is https's own port")
        #expect(!follows("<http://api.example.com/v1/usage?page=2>; rel=\"next\""), "https to http")
        #expect(!follows("<https://api.example.com:8443/v1/usage?page=2>; rel=\"next\""))
        #expect(!follows("<https://api.example.com.evil.test/v1/usage>; rel=\"next\""))
        #expect(!follows("<//evil.test/v1/usage>; rel=\"next\""), "a scheme-relative link to another host")
        #expect(!follows("<https://api.example.com@evil.test/v1/usage>; rel=\"next\""))

        let link = try #require(HTTPSource.nextLink("<http://evil.test:8080/x?token=abc>; rel=\"next\"", relativeTo: first))
        #expect(
            throws: StepFailure(
                "http_link_other_origin",
                """
                page 3: the Link header's next page is on http://evil.test:8080, not on https://api.example.com:443 where 'url' points; \
                the step's headers (and the secrets in them) go only to the origin of 'url', so the link was not followed
                """)
        ) { try HTTPSource.sameOrigin(link, as: first, after: 3) }
    }
}
