import Foundation
import SluiceModel
import SluiceProviders
import SluiceStorage
import Testing

@testable import SluiceEngine

struct RunProgressTests {
    @Test func linesFollowTheRunWithStatesTimesAndRates() throws {
        let yaml = """
            pipeline: p
            defaults: { timeout: 1m }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: a.csv }, table: raw, schema: schemas/raw.json } }
              - { id: check, uses: validate_data, with: { table: raw, checks: [{ type: row_count, min: 1 }] } }
            """
        let definition = try #require(
            PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/p.yml").definition)
        var progress = RunProgress(try PipelinePlan.build(definition).get())
        let start = Date(timeIntervalSince1970: 1_000)
        func event(
            _ step: String?, _ state: RunState, _ seconds: Double, attempt: Int = 1, reason: String = "",
            outputs: [String: ExpressionValue]? = nil
        ) -> RunEvent {
            RunEvent(
                transition: Transition(stepID: step, attempt: attempt, state: state, reason: reason, at: start.addingTimeInterval(seconds)),
                outputs: outputs)
        }
        progress.apply(event(nil, .running, 0))
        progress.apply(event("load", .running, 0))
        #expect(
            progress.render(now: start.addingTimeInterval(1.5)) == [
                "› load   ingest         running         1.5s",
                "  check  validate_data  pending      ",
            ])
        progress.apply(event("load", .succeeded, 2, outputs: ["rows_written": .number(5_000)]))
        progress.apply(event("check", .running, 2))
        progress.apply(event("check", .retrying, 3, reason: "the provider said 429; retrying in 1s"))
        progress.apply(event("check", .running, 4, attempt: 2))
        progress.apply(event("check", .failed, 5, attempt: 2, reason: "1 data test on 'raw' failed"))
        #expect(
            progress.render(now: start.addingTimeInterval(9)) == [
                "✓ load   ingest         succeeded       2.0s  5000 rows, 2500 rows/s",
                "✗ check  validate_data  failed          3.0s (attempt 2)  1 data test on 'raw' failed",
            ])
        #expect(progress.runState == .running)
    }
}
