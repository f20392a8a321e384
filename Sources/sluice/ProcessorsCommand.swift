import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders

extension Sluice {
    struct Processors: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the processors, or show one's fields, rules, outputs and an example.",
            discussion: """
                With --format markdown, prints the processor tables of docs/pipeline-format.md \
                (each between its marker comments), generated from the specs; with --update FILE \
                as well, rewrites those tables in FILE in place.
                """)

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, markdown
        }

        @Argument(help: "A processor name, such as ingest.")
        var name: String?

        @Option(help: "markdown prints the processor tables of docs/pipeline-format.md, between their markers.")
        var format: Format = .text

        @Option(
            help: ArgumentHelp(
                "With --format markdown: rewrite the generated tables of this Markdown file in place.",
                valueName: "file"))
        var update: String?

        func validate() throws {
            if format == .markdown, let name {
                throw ValidationError("--format markdown documents every processor; leave out '\(name)'")
            }
            if update != nil, format != .markdown {
                throw ValidationError("--update rewrites Markdown tables; give --format markdown with it")
            }
        }

        func run() throws {
            let registry = ProcessorEnvironment.standard.registry
            if format == .markdown {
                guard let update else {
                    print(ProcessorDocs.markdown(registry), terminator: "")
                    return
                }
                try rewrite(update, with: ProcessorDocs.markdownSections(registry))
                return
            }
            guard let name else {
                print(ProcessorDocs.list(registry), terminator: "")
                return
            }
            guard let spec = registry[name] else {
                writeError(
                    "sluice processors: no processor '\(name)'\(Suggestion.hint(for: name, in: registry.names)); `sluice processors` lists them")
                throw ExitCode(1)
            }
            print(ProcessorDocs.page(spec), terminator: "")
        }

        /// Puts `sections` between their markers in the file at `path`, and says whether that
        /// changed it.
        private func rewrite(_ path: String, with sections: [GeneratedSection]) throws {
            let url = URL(fileURLWithPath: path)
            let document: String
            do {
                document = try String(contentsOf: url, encoding: .utf8)
            } catch {
                writeError("sluice processors: can't read \(path): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            let updated: String
            do {
                updated = try GeneratedSection.replacing(sections, in: document)
            } catch {
                writeError("sluice processors: \(path): \(error)")
                throw ExitCode(1)
            }
            guard updated != document else {
                print("\(path): the generated tables are up to date")
                return
            }
            do {
                try Data(updated.utf8).write(to: url, options: .atomic)
            } catch {
                writeError("sluice processors: can't write \(path): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            print("\(path): rewrote the generated tables from the specs")
        }
    }
}
