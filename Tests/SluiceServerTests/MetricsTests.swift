import Foundation
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage
import Synchronization
import Testing

@testable import SluiceServer

/// A step that fails transiently `failures` times, then succeeds.
private final class FlakyProcessor: Processor, Sendable {
    let attempts = Mutex(0)
    let failures = 2

    var spec: ProcessorSpec {
        ProcessorSpec(name: "test_flaky", summary: "s", description: "d", fields: [], outputs: [], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let attempt = attempts.withLock {
            $0 += 1; return $0
        }
        if attempt <= failures { throw StepFailure("provider_unavailable", "attempt \(attempt) failed", transient: true) }
        return [:]
    }
}

/// What the server's metrics count, through a real executor and SQLite run store.
struct MetricsTests {
    func store() throws -> (SQLiteRunStore, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return (try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path), folder)
    }

    func plan(_ catalog: ProcessorEnvironment) throws -> PipelinePlan {
        let loaded = PipelineLoader(registry: catalog.registry).load(
            Data(
                """
                pipeline: flaky
                defaults: { timeout: 1m, retry: { attempts: 3, initial_delay: 10ms, max_delay: 20ms } }
                steps:
                  - { id: call, uses: test_flaky }
                """.utf8), file: "pipelines/flaky.yml")
        return try PipelinePlan.build(try #require(loaded.definition, "\(loaded.diagnostics)")).get()
    }

    @Test func retriesAndStepTimesAreCountedForARunThatSucceedsOnItsThirdAttempt() async throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(at: folder) }
        let catalog = ProcessorEnvironment([FlakyProcessor()])
        let plan = try plan(catalog)
        let metrics = ServerMetrics()
        var options = ExecutorOptions()
        options.observer = metrics.observer(for: plan, processors: catalog.registry)
        let executor = Executor(processors: catalog, store: store, options: options, logger: LiveServer.quiet)
        let run = try await executor.create(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:])).run
        try await executor.execute(plan, run: run, env: [:])
        #expect(try await store.run(run.id)?.state == .succeeded)
        #expect(try await store.steps(of: run.id).first?.attempt == 3)

        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(hasSample(text, "sluice_step_retries_total", 2), "\(text)")
        #expect(hasSample(text, #"sluice_step_duration_seconds_count{processor="test_flaky",state="succeeded"}"#, 1), "\(text)")
        #expect(hasSample(text, #"sluice_runs_total{state="running"}"#, 1))
        #expect(hasSample(text, #"sluice_runs_total{state="succeeded"}"#, 1))
    }

    @Test func aRunRefusedAtShutdownIsCountedCancelled() async throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(at: folder) }
        let catalog = ProcessorEnvironment([FlakyProcessor()])
        let plan = try plan(catalog)
        let metrics = ServerMetrics()
        let executor = Executor(processors: catalog, store: store, logger: LiveServer.quiet)
        let launcher = RunLauncher(logger: LiveServer.quiet, metrics: metrics)
        await launcher.stop()
        let run = try await executor.create(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:])).run
        #expect(await !launcher.launch(run, plan: plan, executor: executor, env: [:]))
        #expect(try await store.run(run.id)?.state == .cancelled)
        #expect(hasSample(String(decoding: metrics.exposition(), as: UTF8.self), #"sluice_runs_total{state="cancelled"}"#, 1))
    }
}
