import Foundation
import SluiceEngine
import SluiceProviders
import Testing

@testable import SluiceModel

/// What `on_failure` handlers may say, and what `notify` declares about itself.
struct OnFailureTests {
    func lint(_ text: String) throws -> [String] {
        let project = try TemporaryProject()
        defer { project.remove() }
        try project.write("pipelines/alerts.yml", text)
        return Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).lint(paths: ["pipelines/alerts.yml"]).diagnostics
            .map(\.description)
    }

    @Test func handlersMayReadWhyTheRunFailedAndStepsMayNot() throws {
        let diagnostics = try lint(
            """
            pipeline: alerts
            defaults: { timeout: 1m }
            params:
              note: { type: string, default: "${{ run.error }}" }
            steps:
              - { id: tell, uses: notify, with: { url: "${{ env.HOOK }}", message: "${{ run.failed_step }}" } }
            on_failure:
              - uses: notify
                with:
                  url: "${{ env.HOOK }}"
                  message: "${{ run.failed_step }} failed with ${{ run.error_code }}: ${{ run.error }}"
                  link: "${{ run.failed_stpe }}"
            """)
        #expect(
            diagnostics == [
                "pipelines/alerts.yml:4:39: error: pipeline: 'params.note.default': 'run.error' is set only in on_failure handlers, where the run has failed [unknown-reference]",
                "pipelines/alerts.yml:6:77: error: step 'tell' (notify): 'message': 'run.failed_step' is set only in on_failure handlers, where the run has failed [unknown-reference]",
                "pipelines/alerts.yml:12:18: error: on_failure handler 1 (notify): 'link': run has no field 'failed_stpe'; did you mean 'failed_step'? (run fields: id, logical_date, logical_time, pipeline, org, trigger, request_id, attempt, failed_step, error_code, error) [unknown-reference]",
            ])
    }

    @Test func aHandlerMaySetItsOwnRetry() throws {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 1m }
            steps:
              - { id: a, uses: sql, with: { procedure: procedures/a.sql } }
            on_failure:
              - uses: notify
                retry: { attempts: 5, initial_delay: 2s, max_delay: 10s }
                with: { url: "${{ env.HOOK }}" }
            """)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let handler = try #require(result.definition?.onFailure.first)
        #expect(handler.retry == RetryPolicy(attempts: 5, backoff: .exponential, initialDelay: .seconds(2), maxDelay: .seconds(10), jitter: true))
    }

    @Test func notifyDeclaresHowItRetriesAndItsDocsSaySo() {
        #expect(
            ProcessorSpec.notify.defaultRetry
                == RetryPolicy(
                    attempts: 3, backoff: .exponential, initialDelay: .seconds(1),
                    maxDelay: .seconds(30), jitter: true))
        #expect(ProcessorSpec.sql.defaultRetry == nil)
        #expect(ProcessorSpec.notify.field("request_timeout")?.requirement == .defaultValue("10s"))
        let page = ProcessorDocs.page(.notify)
        #expect(
            page.contains(
                """
                Retries (when neither the step nor `defaults` sets `retry`)
                  3 attempts, exponential backoff from 1s to 30s, with jitter; only transient failures retry
                """))
        #expect(!ProcessorDocs.page(.sql).contains("Retries"))
    }
}
