import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders

extension Sluice {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a pipeline's DAG: steps in parallel layers with what each reads and writes.")

        @Argument(help: "A pipeline file, or a pipeline id found as pipelines/<id>.yml.")
        var pipeline: String

        @Option(help: "Output format: text, dot (Graphviz) or mermaid.")
        var format: String = "text"

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard PlanOutputFormat(rawValue: format) != nil else {
                throw ValidationError("unknown format '\(format)'; use one of \(PlanOutputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let root = project.root
            let path = try resolvePipeline(pipeline, project: project)
            let linter = Linter(projectRoot: root, registry: ProcessorEnvironment.standard.registry)
            let (plan, diagnostics) = linter.plan(file: path)
            guard let plan else {
                writeError(LintOutputFormat.text.render(LintReport(diagnostics: diagnostics, filesChecked: 1)))
                writeError("sluice plan: fix the errors above first")
                throw ExitCode(1)
            }
            print(PlanOutputFormat(rawValue: format)!.render(plan), terminator: "")
        }
    }
}
