import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import Testing

/// The processor tables of docs/pipeline-format.md are generated from the specs of the standard
/// environment (the processors `sluice run` runs): these tests fail when the file says
/// something else, and say how to regenerate it.
struct ProcessorDocsTests {
    static let docsPath = "docs/pipeline-format.md"
    static let docsFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(docsPath)
    static let registry = ProcessorEnvironment.standard.registry
    static let regenerate = "run `swift run sluice processors --format markdown --update \(docsPath)` and commit the result"

    @Test func theGeneratedTablesInTheDocsSayWhatTheSpecsSay() throws {
        let document = try String(contentsOf: Self.docsFile, encoding: .utf8)
        let generated: String
        do {
            generated = try GeneratedSection.replacing(ProcessorDocs.markdownSections(Self.registry), in: document)
        } catch {
            Issue.record("\(Self.docsPath): \(error); then \(Self.regenerate)")
            return
        }
        if let difference = Self.firstDifference(document, generated) {
            Issue.record("\(difference); \(Self.regenerate)")
        }
    }

    /// Read from the file and walked from the specs here, not through `ProcessorDocs`: a field
    /// the generator missed, or a table edited by hand, fails this.
    @Test func theSecretTableListsEveryFieldThatTakesSecretsAndNoOther() throws {
        let table = try Self.rows(ofSection: "secret-fields")
        var documented: Set<String> = []
        for row in table {
            #expect(row.count == 3, "a row of the secret table has three cells: \(row)")
            let (processors, _) = Self.processorsAndShape(row[0])
            for processor in processors {
                for field in Self.codeSpans(row[1]) { documented.insert("\(processor) \(field): \(row[2])") }
            }
        }
        let declared = Self.declaredFields { field in
            switch field.secret {
            case .never: return nil
            case .allowed: return "may hold secrets"
            case .required: return "must be a secret"
            }
        }
        #expect(declared.contains { $0.hasSuffix("must be a secret") } && declared.contains { $0.hasSuffix("may hold secrets") })
        #expect(documented.subtracting(declared).sorted() == [], "in the docs, not in the specs; \(Self.regenerate)")
        #expect(declared.subtracting(documented).sorted() == [], "in the specs, not in the docs; \(Self.regenerate)")
    }

    @Test func theDestinationTableListsEveryDestinationFieldAndNoOther() throws {
        let table = try Self.rows(ofSection: "destination-fields")
        var documented: Set<String> = []
        for row in table {
            #expect(row.count == 2, "a row of the destination table has two cells: \(row)")
            let (processors, _) = Self.processorsAndShape(row[0])
            for processor in processors {
                for field in Self.codeSpans(row[1]) { documented.insert("\(processor) \(field): destination") }
            }
        }
        let declared = Self.declaredFields { $0.destination ? "destination" : nil }
        #expect(!declared.isEmpty)
        #expect(documented.subtracting(declared).sorted() == [], "in the docs, not in the specs; \(Self.regenerate)")
        #expect(declared.subtracting(documented).sorted() == [], "in the specs, not in the docs; \(Self.regenerate)")
    }

    @Test func aProcessorThatTakesASecretShowsInTheGeneratedTables() {
        let vendor = ProcessorSpec(
            name: "test_vendor", summary: "s", description: "d",
            fields: [
                FieldSpec(
                    "endpoint",
                    .object([
                        FieldSpec("url", .string, .required, destination: true, description: "Where."),
                        FieldSpec("token", .string, secret: .required, description: "The token."),
                    ]), description: "The endpoint.")
            ], outputs: [OutputSpec("x", "string", "x")], example: "")
        let sections = ProcessorDocs.markdownSections(ProcessorRegistry(Self.registry.specs + [vendor]))
        let text = { (name: String) in sections.first { $0.name == name }?.text ?? "" }
        #expect(text("secret-fields").contains("| `test_vendor` | `endpoint.token` | must be a secret |"))
        #expect(text("destination-fields").contains("| `test_vendor` | `endpoint.url` |"))
        #expect(text("at-a-glance").contains("| `test_vendor` | `endpoint` (**`url`**, `token`) | `x` |"))
    }

    @Test func sectionsKeepTheIndentationOfTheirMarkerAndMissingMarkersAreNamed() throws {
        let section = GeneratedSection(name: "secret-fields", text: "| a |\n|---|\n")
        let document = """
            - A rule:

              \(section.startMarker)
              stale
              \(GeneratedSection.endMarker)

            after
            """
        let replaced = try GeneratedSection.replacing([section], in: document)
        #expect(
            replaced == """
                - A rule:

                  \(section.startMarker)

                  | a |
                  |---|

                  \(GeneratedSection.endMarker)

                after
                """)
        #expect(try GeneratedSection.replacing([section], in: replaced) == replaced)
        #expect(throws: GeneratedSectionError.missing(["at-a-glance"])) {
            try GeneratedSection.replacing([section, GeneratedSection(name: "at-a-glance", text: "")], in: document)
        }
        #expect(throws: GeneratedSectionError.unterminated("secret-fields", line: 3)) {
            try GeneratedSection.replacing([section], in: "- A rule:\n\n  \(section.startMarker)\n  stale\n")
        }
    }

    // MARK: Reading the docs

    /// The table rows (header and separator left out) between the markers of `name`, as cells.
    static func rows(ofSection name: String) throws -> [[String]] {
        let lines = try String(contentsOf: docsFile, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let marker = GeneratedSection(name: name, text: "").startMarker
        let start = try #require(lines.firstIndex(of: marker), "\(docsPath) has no \(marker)")
        let end = try #require(lines[start...].firstIndex(of: GeneratedSection.endMarker), "\(docsPath): \(name) is not closed")
        return lines[start..<end].filter { $0.hasPrefix("|") }.dropFirst(2).map { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// "`ingest` (`format: http`)": the processors, and the shape a row is about.
    static func processorsAndShape(_ cell: String) -> (processors: [String], shape: String?) {
        let spans = codeSpans(cell)
        return (spans.filter { !$0.contains(":") }, spans.first { $0.contains(":") })
    }

    static func codeSpans(_ cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    /// "line 505: in the file `…`, from the specs `…`" for the first line where they differ.
    static func firstDifference(_ document: String, _ generated: String) -> String? {
        let have = document.split(separator: "\n", omittingEmptySubsequences: false)
        let want = generated.split(separator: "\n", omittingEmptySubsequences: false)
        guard let index = (0..<max(have.count, want.count)).first(where: { $0 >= have.count || $0 >= want.count || have[$0] != want[$0] }) else {
            return nil
        }
        let line = { (lines: [Substring]) in index < lines.count ? "`\(lines[index])`" : "(the end)" }
        return "\(docsPath):\(index + 1): the file says \(line(have)), the specs give \(line(want))"
    }

    // MARK: Walking the specs

    /// "processor path: what" for every field, nested ones included, that `what` says something of.
    static func declaredFields(_ what: (FieldSpec) -> String?) -> Set<String> {
        var found: Set<String> = []
        for spec in registry.specs {
            collect(spec.fields, processor: spec.name, prefix: "", what: what, into: &found)
        }
        return found
    }

    private static func collect(
        _ fields: [FieldSpec], processor: String, prefix: String,
        what: (FieldSpec) -> String?, into found: inout Set<String>
    ) {
        for field in fields {
            if let said = what(field) { found.insert("\(processor) \(prefix)\(field.name): \(said)") }
            collect(field.type, processor: processor, prefix: prefix + field.name + ".", what: what, into: &found)
        }
    }

    private static func collect(
        _ type: FieldType, processor: String, prefix: String,
        what: (FieldSpec) -> String?, into found: inout Set<String>
    ) {
        switch type {
        case .object(let fields):
            collect(fields, processor: processor, prefix: prefix, what: what, into: &found)
        case .list(let item), .map(let item, _):
            collect(item, processor: processor, prefix: prefix, what: what, into: &found)
        case .variants(_, let shapes):
            for fields in shapes.values { collect(fields, processor: processor, prefix: prefix, what: what, into: &found) }
        default:
            break
        }
    }
}
