import Foundation
import Testing

@testable import SluiceModel

/// Run code reads defaults from the specs: `withDefaults` fills in what a step leaves out.
struct SpecDefaultsTests {
    func node(_ yaml: String) throws -> YAMLNode {
        guard case .success(let node?) = YAMLLoader().load(Data(yaml.utf8), file: "pipelines/x.yml") else { throw CancellationError() }
        return node
    }

    @Test func whatAStepLeavesOutTakesItsSpecsDefault() throws {
        let merge = ProcessorSpec.mergeDedupe.withDefaults(try node("{ from: a, into: b, key: [k], latest_by: ts }"))
        #expect(merge["strategy"]?.scalarText == "latest_wins")
        #expect(merge["lineage"]?.bool == true)
        #expect(merge["from"]?.scalarText == "a")
        // Given values stay; a null one (an expression that came out empty) takes the default.
        let given = ProcessorSpec.mergeDedupe.withDefaults(try node("{ strategy: first_wins, lineage: ~ }"))
        #expect(given["strategy"]?.scalarText == "first_wins")
        #expect(given["lineage"]?.bool == true)
    }

    @Test func defaultsReachVariantsListsAndObjects() throws {
        let ingest = ProcessorSpec.ingest.withDefaults(try node("{ source: { format: csv, path: x.csv }, table: t, schema: s.json }"))
        #expect(ingest["source"]?["delimiter"]?.scalarText == ",")
        #expect(ingest["source"]?["header"]?.bool == true)
        #expect(ingest["on_bad_row"]?.scalarText == "fail")
        #expect(ingest["batch_size"]?.int == 10_000)
        let http = ProcessorSpec.ingest.withDefaults(try node("{ source: { format: http, url: \"https://a.example\", pagination: { type: page } } }"))
        #expect(http["source"]?["items"]?.scalarText == "/data")
        #expect(http["source"]?["pagination"]?["page_param"]?.scalarText == "page")
        let gcp = ProcessorSpec.validateGCP.withDefaults(try node("{ service_account_json: x }"))
        #expect(gcp["scopes"]?.sequence?.compactMap(\.scalarText) == ["https://www.googleapis.com/auth/cloud-platform"])
        let check = ProcessorSpec.validateData.withDefaults(try node("{ table: t, checks: [{ type: not_null, column: c }] }"))
        #expect(check["severity"]?.scalarText == "error")
    }
}
