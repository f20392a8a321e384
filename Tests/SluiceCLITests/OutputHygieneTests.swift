import Foundation
import SluiceTestSupport
import Testing

/// What the CLI prints, whatever callers put into runs.
struct OutputHygieneTests {
    /// Clears the screen, then sets the terminal's title (OSC 0), then rings the bell.
    static let hostileParam = "\u{1B}[2J\u{1B}]0;pwned\u{07}usage.csv"

    @Test func runOutputAndRunHistoryEscapeControlCharactersFromParams() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let ran = try await sluice("run", "genai_costs_daily", "--param", "usage_file=\(Self.hostileParam)", in: project)
        #expect(ran.status == 1, "no such file: the run fails, its param stored as given")
        let runID = try #require(ran.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) }, "\(ran.stdout)")
        let show = try await sluice("runs", "show", runID, in: project)
        let list = try await sluice("runs", "list", in: project)
        #expect(show.status == 0)
        #expect(show.stdout.contains(#"usage_file=\u{1b}[2J\u{1b}]0;pwned\u{7}usage.csv"#), "\(show.stdout)")
        for (command, output) in [("run", ran), ("runs show", show), ("runs list", list)] {
            #expect(!(output.stdout + output.stderr).utf8.contains(0x1B), "\(command) printed a raw ESC")
            #expect(!(output.stdout + output.stderr).utf8.contains(0x07), "\(command) printed a raw BEL")
        }
    }
}
