import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders

extension Sluice {
    struct Lint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check pipeline files without running them.",
            discussion: """
                Reports every problem found, each as file:line:column with a rule id. Exit status: \
                0 when clean, 1 on errors (on warnings too with --strict), 2 on usage errors.
                """)

        @Argument(help: "Pipeline files or folders to check (default: pipelines/).")
        var paths: [String] = []

        @Option(help: "Output format: text, json, github (Actions annotations) or sarif (SARIF 2.1.0).")
        var format: String = "text"

        @Flag(help: "Fail on warnings too.")
        var strict = false

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard LintOutputFormat(rawValue: format) != nil else {
                throw ValidationError("unknown format '\(format)'; use one of \(LintOutputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let format = LintOutputFormat(rawValue: format)!
            let linter = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry)
            let targets = paths.isEmpty ? ["pipelines"] : paths.map(project.projectPath)
            let report = linter.lint(paths: targets)
            let colour = format == .text && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            // Not through `print`, which would escape the colours: the text format escapes the
            // paths and messages it quotes itself, and the others are JSON or escape their own.
            FileHandle.standardOutput.write(Data(format.render(report, colour: colour).utf8))
            if report.errorCount > 0 || (strict && report.warningCount > 0) {
                throw ExitCode(1)
            }
        }
    }
}
