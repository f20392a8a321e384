import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceStorage

extension Sluice {
    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Query an org's published tables (read-only).")

        @Argument(help: "The org whose warehouse to query.")
        var org: String

        @Argument(help: "The SQL to run (read-only).")
        var sql: String

        @OptionGroup var project: ProjectOptions

        func run() async throws {
            let warehouse = Runtime.warehouse(projectRoot: project.root)
            do {
                let result = try await warehouse.query(org: org, sql, [])
                print(TextTable.render(header: result.columns, rows: result.rows.map { $0.map(\.displayText) }))
                print("(\(result.rows.count) row\(result.rows.count == 1 ? "" : "s"))")
            } catch {
                writeError("sluice query: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
