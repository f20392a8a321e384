import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceStorage

extension Sluice {
    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Query an org's published tables (read-only).",
            discussion: """
                --format table (the default) prints an aligned table for people and the row \
                count. csv prints RFC 4180 CSV: a header row, CRLF line ends, fields holding a \
                comma, quote or line break quoted with quotes doubled, NULL as an empty unquoted \
                field (the empty string is ""), a blob as base64. json prints an array of objects \
                keyed by column name in the query's column order: numbers as JSON numbers, NULL as \
                null, a blob as a base64 string.
                """)

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case table, csv, json
        }

        @Argument(help: "The org whose warehouse to query.")
        var org: String

        @Argument(help: "The SQL to run (read-only).")
        var sql: String

        @Option(help: "Output format: table, csv (RFC 4180) or json (an array of objects).")
        var format: Format = .table

        @OptionGroup var project: ProjectOptions

        func run() async throws {
            let result: QueryResult
            do {
                let (warehouse, close) = try await Runtime.warehouse(projectRoot: project.root)
                do {
                    result = try await warehouse.query(org: org, sql, [])
                } catch {
                    await close()
                    throw error
                }
                await close()
            } catch {
                writeError("sluice query: \(error)")
                throw ExitCode(1)
            }
            switch format {
            case .table:
                print(TextTable.render(header: result.columns, rows: result.rows.map { $0.map(\.displayText) }))
                print("(\(result.rows.count) row\(result.rows.count == 1 ? "" : "s"))")
            case .csv:
                // Written as is, not through `print`: a script gets the values byte for byte. On
                // a terminal, control characters are escaped as in the table.
                let escape = isatty(STDOUT_FILENO) == 1
                FileHandle.standardOutput.write(Data(QueryOutput.csv(result, escapingControlCharacters: escape).utf8))
            case .json:
                FileHandle.standardOutput.write(Data(QueryOutput.json(result).utf8))
            }
        }
    }
}

/// The machine-readable forms of a query's result.
enum QueryOutput {
    /// RFC 4180: a header row, then a record per row, each ended by CRLF. A field holding the
    /// delimiter, a quote, CR or LF (or starting or ending with a space) is quoted, its quotes
    /// doubled. NULL is an empty unquoted field and the empty string a quoted one (`""`), so
    /// the two stay apart; a blob is base64; a real is written as `table` shows it.
    static func csv(_ result: QueryResult, escapingControlCharacters escape: Bool = false) -> String {
        func field(_ text: String) -> String {
            let text = escape ? printable(text) : text
            let needsQuotes =
                text.isEmpty || text.utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
                || text.first == " " || text.last == " "
            return needsQuotes ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var output = result.columns.map(field).joined(separator: ",") + "\r\n"
        for row in result.rows {
            output +=
                row.map { value in
                    switch value {
                    case .null: ""
                    case .blob(let bytes): Data(bytes).base64EncodedString()
                    default: field(value.displayText)
                    }
                }.joined(separator: ",") + "\r\n"
        }
        return output
    }

    /// A JSON array with an object per row, its keys the column names in the query's order.
    static func json(_ result: QueryResult) -> String {
        let keys = result.columns.map(WarehouseValue.jsonString)
        var output = "["
        for (index, row) in result.rows.enumerated() {
            output += index == 0 ? "\n  {" : ",\n  {"
            output += zip(keys, row).map { "\($0): \($1.jsonText)" }.joined(separator: ", ")
            output += "}"
        }
        output += result.rows.isEmpty ? "]\n" : "\n]\n"
        return output
    }
}
