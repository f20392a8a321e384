import Foundation
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceServer

/// A step that sleeps for `for`, cancellably (`test_nap`).
struct NapProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_nap", summary: "s", description: "d",
            fields: [FieldSpec("for", .duration, .required, description: "how long")],
            outputs: [], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        try await Task.sleep(for: try DurationText.parse(step.config["for"]?.scalarText ?? "1s"))
        return [:]
    }
}

/// What happens to the runs executing when a server or scheduler shuts down.
struct RunLauncherTests {
    /// Launches one run of a pipeline whose only step naps for `nap`, then stops the launcher
    /// with `grace`; returns the run as it ended and how long the stop took.
    func stop(grace: Duration, nap: String) async throws -> (RunRecord, Duration) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-launcher-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
        let catalog = ProcessorEnvironment([NapProcessor()])
        let loaded = PipelineLoader(registry: catalog.registry).load(
            Data(
                """
                pipeline: naps
                defaults: { timeout: 30m }
                steps:
                  - { id: nap, uses: test_nap, with: { for: \(nap) } }
                """.utf8), file: "pipelines/naps.yml")
        let plan = try PipelinePlan.build(try #require(loaded.definition)).get()
        let executor = Executor(processors: catalog, store: store, logger: LiveServer.quiet)
        let run = try await executor.create(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: [:])).run
        let launcher = RunLauncher(logger: LiveServer.quiet, shutdownGrace: grace)
        #expect(await launcher.launch(run, plan: plan, executor: executor, env: [:]))
        #expect(try await eventually { try await store.run(run.id)?.state == .running })

        let clock = ContinuousClock()
        let started = clock.now
        await launcher.stop()
        let took = clock.now - started
        // A run launched after the stop began is refused and recorded.
        let late = try await executor.create(plan, Executor.RunRequest(org: "acme", logicalDate: "2026-03-02", env: [:])).run
        #expect(await !launcher.launch(late, plan: plan, executor: executor, env: [:]))
        #expect(try await store.run(late.id)?.state == .cancelled)
        return (try #require(try await store.run(run.id)), took)
    }

    @Test func aRunThatEndsWithinTheGraceSucceeds() async throws {
        let (run, took) = try await stop(grace: TestTime.never, nap: "1s")
        #expect(run.state == .succeeded, "\(run.reason)")
        #expect(took < TestTime.patience, "the stop ends when the run does, not at the end of the grace")
    }

    @Test func aRunStillExecutingWhenTheGraceEndsIsCancelled() async throws {
        let (run, took) = try await stop(grace: .milliseconds(300), nap: "15m")
        #expect(run.state == .cancelled, "\(run.reason)")
        #expect(
            run.reason
                == "cancelled at shutdown: the process was stopping and the run did not end within the 300ms shutdown grace; nothing was published, resume it with sluice run --resume"
        )
        #expect(took >= .milliseconds(300))
        #expect(took < TestTime.patience, "the stop ends at the grace, not when the run would have")
    }

    @Test func withoutAGraceRunsAreCancelledAtOnce() async throws {
        let (run, took) = try await stop(grace: .zero, nap: "15m")
        #expect(run.state == .cancelled, "\(run.reason)")
        #expect(run.reason.hasPrefix("cancelled at shutdown: the process was stopping (no shutdown grace)"), "\(run.reason)")
        #expect(took < TestTime.patience)
    }
}
