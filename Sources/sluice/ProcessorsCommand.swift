import ArgumentParser
import SluiceEngine
import SluiceModel
import SluiceProviders

extension Sluice {
    struct Processors: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the processors, or show one's fields, rules, outputs and an example.")

        @Argument(help: "A processor name, such as ingest.")
        var name: String?

        func run() throws {
            let registry = ProcessorEnvironment.standard.registry
            guard let name else {
                print(ProcessorDocs.list(registry), terminator: "")
                return
            }
            guard let spec = registry[name] else {
                writeError("sluice processors: no processor '\(name)'\(Suggestion.hint(for: name, in: registry.names)); `sluice processors` lists them")
                throw ExitCode(1)
            }
            print(ProcessorDocs.page(spec), terminator: "")
        }
    }
}
