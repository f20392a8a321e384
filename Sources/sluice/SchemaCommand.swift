import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders

extension Sluice {
    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a JSON Schema for pipeline files, for editors (the VS Code YAML extension).",
            discussion: """
                Point the editor at it, e.g. in .vscode/settings.json: \
                "yaml.schemas": { "./sluice.schema.json": "pipelines/*.yml" }
                """)

        @Option(name: .shortAndLong, help: "File to write (default: standard output).")
        var output: String?

        func run() throws {
            let text = PipelineJSONSchema.document(for: ProcessorEnvironment.standard.registry)
            if let output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output))
            } else {
                print(text, terminator: "")
            }
        }
    }
}
