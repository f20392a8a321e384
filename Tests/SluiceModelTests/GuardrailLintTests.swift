import Foundation
import SluiceEngine
import SluiceModel
import SluiceProviders
import Testing

/// Lint of the guardrail fields: limits, max_bad_rows, input formats, the run timeout.
struct GuardrailLintTests {
    func diagnostics(_ yaml: String) -> [String] {
        PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/guarded.yml")
            .diagnostics.map(\.description)
    }

    func pipeline(load: String, step: String = "", top: String = "") -> String {
        """
        pipeline: guarded
        \(top)defaults: { timeout: 1m }
        params: { n: { type: integer, default: 5 } }
        steps:
          - id: load
            uses: ingest
            with: { source: { format: csv, path: data/x.csv }, table: x_raw, schema: schemas/x.json\(load) }
        \(step)
        """
    }

    @Test func wellFormedGuardrailsPass() {
        #expect(
            diagnostics(
                pipeline(
                    load: ", max_bad_rows: \"0.5%\", columns: { day: { from: Day, format: \"%m/%d/%Y\", timezone: America/New_York }, id: Id }",
                    step: "    limits: { max_rows: 100, max_bytes: 2GiB, max_requests: 3 }", top: "timeout: 2h\n")) == [])
    }

    @Test func mistakesAreNamedWhereTheyAreWritten() {
        #expect(
            diagnostics(pipeline(load: ", max_bad_rows: lots")) == [
                "pipelines/guarded.yml:7:108: error: step 'load' (ingest): 'max_bad_rows': 'lots' is not a count of rows (like 100) or a percentage (like 5%) [invalid-value]"
            ])
        #expect(
            diagnostics(pipeline(load: ", columns: { day: { format: \"%m/%d/%Q\" } }")) == [
                "pipelines/guarded.yml:7:127: error: step 'load' (ingest): 'columns.day.format': %Q is not a directive Sluice reads (it reads %Y %y %m %b %B %d %e %H %I %M %S %f %p %z %F %T and %%) [invalid-value]"
            ])
        #expect(
            diagnostics(pipeline(load: "", step: "    limits: { max_bytes: 2 parsecs, max_rowz: 1 }")) == [
                "pipelines/guarded.yml:8:26: error: step 'load': 'limits.max_bytes': '2 parsecs' is not a size; write bytes, or a number and a unit like 500MB or 2GiB [invalid-value]",
                "pipelines/guarded.yml:8:37: error: step 'load': 'limits' has no key 'max_rowz'; did you mean 'max_rows'? (keys: max_rows, max_bytes, max_requests) [unknown-key]",
            ])
        #expect(diagnostics(pipeline(load: "", top: "timeout: soon\n")).first?.contains("'timeout'") == true)
    }

    @Test func limitsAreLiteralSoNoParamCanLiftThem() {
        #expect(
            diagnostics(pipeline(load: "", step: "    limits: { max_rows: \"${{ params.n }}\" }")) == [
                "pipelines/guarded.yml:8:25: error: step 'load': limits.max_rows must be a literal value; expressions are not allowed here [invalid-value]"
            ])
        // Timeouts too: read before the run, an expression would leave the run or step without one.
        #expect(
            diagnostics(pipeline(load: "", step: "    timeout: \"${{ params.n }}s\"", top: "timeout: \"${{ params.n }}m\"\n")) == [
                "pipelines/guarded.yml:2:10: error: pipeline: timeout must be a literal value; expressions are not allowed here [invalid-value]",
                "pipelines/guarded.yml:9:14: error: step 'load': timeout must be a literal value; expressions are not allowed here [invalid-value]",
            ])
    }
}
