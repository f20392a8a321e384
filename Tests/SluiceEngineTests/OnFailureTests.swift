import Foundation
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceEngine

/// A stand-in for `notify` that keeps what each attempt was told and answers as told.
final class RecordingNotify: Processor, Sendable {
    private let seen = Mutex([StepContext]())

    var spec: ProcessorSpec { .notify }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        seen.withLock { $0.append(step) }
        return ["http_status": .number(200)]
    }

    var contexts: [StepContext] { seen.withLock { $0 } }
}

/// Fails transiently twice per step id, then succeeds; its spec asks for 3 quick tries.
final class PatientProcessor: Processor, Sendable {
    private let calls = Mutex([String: Int]())

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_patient", summary: "s", description: "d", fields: [],
            outputs: [OutputSpec("attempts", "integer", "tries")], example: "",
            defaultRetry: RetryPolicy(
                attempts: 3, backoff: .fixed, initialDelay: .milliseconds(10),
                maxDelay: .milliseconds(10), jitter: false))
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let call = calls.withLock { calls -> Int in
            calls[step.stepID, default: 0] += 1
            return calls[step.stepID]!
        }
        if call <= 2 { throw StepFailure("test_busy", "busy, try again", transient: true) }
        return ["attempts": .number(Double(call))]
    }
}

/// Fails for good with a message that quotes a secret, as a careless provider error might.
struct LeakyFailProcessor: Processor {
    let secret: String

    var spec: ProcessorSpec {
        ProcessorSpec(name: "test_leaky_fail", summary: "s", description: "d", fields: [], outputs: [OutputSpec("x", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        throw StepFailure("credential_invalid", "the provider refused key \(secret)")
    }
}

/// A warehouse that can't be reached; its error quotes a connection string with a password.
struct UnreachableWarehouse: Warehouse {
    struct Refused: Error, CustomStringConvertible {
        var description: String { "could not connect to postgres://sluice:Hunter2-Passw0rd@db.internal:5432/warehouse" }
    }

    func workspace(org: String, runID: String, targets: [String], existing: Bool) async throws -> any RunWorkspace { throw Refused() }
    func wasPublished(org: String, runID: String) async throws -> Bool { false }
    func query(org: String, _ sql: String, _ arguments: [WarehouseValue]) async throws -> QueryResult { throw Refused() }
    func stagings() async throws -> [StagingInfo] { [] }
    func hasStaging(org: String, runID: String) async throws -> Bool { false }
    func removeStaging(org: String, runID: String) async throws -> Bool { false }
}

extension Harness {
    /// An executor over this harness's store with `more` processors.
    func executor(adding more: [any Processor], warehouse: (any Warehouse)? = nil) -> Executor {
        var options = ExecutorOptions()
        options.cancellationGrace = .milliseconds(300)
        options.heartbeatInterval = .milliseconds(100)
        return Executor(processors: catalog.adding(more), store: store, warehouse: warehouse, options: options, logger: quietLogger)
    }

    func plan(_ yaml: String, adding more: [any Processor]) throws -> PipelinePlan {
        let result = PipelineLoader(registry: catalog.adding(more).registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        return try PipelinePlan.build(try #require(result.definition)).get()
    }

    func steps(_ run: RunRecord) async throws -> [String: StepRunRecord] {
        Dictionary(uniqueKeysWithValues: try await store.steps(of: run.id).map { ($0.stepID, $0) })
    }
}

struct OnFailureTests {
    let request = Executor.RunRequest(org: "acme", logicalDate: "2026-03-01", env: ["HOOK": "http://127.0.0.1:9/hook"])

    @Test(arguments: Backend.all) func handlersSeeTheFailureAndTheOutputsOfTheStepsThatRan(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let run = try await harness.executor(adding: [recorder]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                steps:
                  - { id: first, uses: test_echo, with: { value: hello } }
                  - { id: call, uses: test_fail, needs: [first] }
                on_failure:
                  - id: report
                    uses: test_echo
                    with: { value: "${{ run.failed_step }}|${{ run.error_code }}|${{ run.error }}|${{ steps.first.outputs.echo }}" }
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """, adding: [recorder]), request)
        #expect(run.state == .failed)
        #expect(run.reason == "step 'call' failed: the provider said 401")
        let steps = try await harness.steps(run)
        #expect(steps["report"]?.state == .succeeded)
        #expect(steps["report"]?.outputs["echo"] == .string("call|credential_invalid|the provider said 401|hello"))
        #expect(steps["alert"]?.state == .succeeded)
        #expect(recorder.contexts.count == 1)
        let context = try #require(recorder.contexts.first)
        #expect(context.runFailure?.stepID == "call")
        #expect(context.runFailure?.code == "credential_invalid")
        #expect(context.runFailure?.message == "the provider said 401")
        #expect(context.logicalDate == "2026-03-01")
        #expect(context.config["url"]?.scalarText == "http://127.0.0.1:9/hook")
        // Handlers run after the failed step, before the run is stored as failed.
        let order = try await harness.store.transitions(of: run.id).map { "\($0.stepID ?? "run"):\($0.state.rawValue)" }
        #expect(order.suffix(6) == ["call:failed", "report:running", "report:succeeded", "alert:running", "alert:succeeded", "run:failed"])
    }

    @Test(arguments: Backend.all) func aFailingHandlerIsRecordedAndTheRunKeepsItsOwnReason(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let run = try await harness.executor(adding: [recorder]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                steps:
                  - { id: call, uses: test_fail }
                on_failure:
                  - { id: broken, uses: test_fail }
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """, adding: [recorder]), request)
        #expect(run.state == .failed)
        #expect(run.reason == "step 'call' failed: the provider said 401")
        let steps = try await harness.steps(run)
        #expect(steps["broken"]?.state == .failed)
        #expect(steps["broken"]?.errorCode == "credential_invalid")
        // One handler failing does not keep the next from running.
        #expect(steps["alert"]?.state == .succeeded)
        #expect(recorder.contexts.count == 1)
    }

    @Test(arguments: Backend.all) func aSecretInTheFailureIsMaskedForHandlersAndInStoredReasons(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let secret = "sk-test-\(UUID().uuidString)"
        let owner = "test-\(UUID().uuidString)"
        SecretRedactor.shared.register(secret, owner: owner)
        defer { SecretRedactor.shared.forget(owner: owner) }
        let leaky = LeakyFailProcessor(secret: secret)
        let recorder = RecordingNotify()
        let run = try await harness.executor(adding: [leaky, recorder]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                steps:
                  - { id: login, uses: test_leaky_fail }
                on_failure:
                  - { id: report, uses: test_echo, with: { value: "${{ run.error }}" } }
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """, adding: [leaky, recorder]), request)
        #expect(run.reason == "step 'login' failed: the provider refused key [redacted]")
        let steps = try await harness.steps(run)
        #expect(steps["report"]?.outputs["echo"] == .string("the provider refused key [redacted]"))
        #expect(recorder.contexts.first?.runFailure?.message == "the provider refused key [redacted]")
        let stored = try await harness.store.transitions(of: run.id).map(\.reason) + steps.values.map(\.reason)
        #expect(!stored.contains { $0.contains(secret) })
    }

    @Test(arguments: Backend.all) func aProcessorsOwnRetryPolicyAppliesWhenTheStepAndDefaultsSetNone(_ backend: Backend) async throws {
        for (retry, expected) in [
            ("", RunState.succeeded), ("retry: { attempts: 1 }", .deadLettered), ("retry: { attempts: 2, initial_delay: 10ms }", .deadLettered),
        ] {
            let harness = try await Harness(backend)
            defer { harness.remove() }
            let patient = PatientProcessor()
            let run = try await harness.executor(adding: [patient]).start(
                try harness.plan(
                    """
                    pipeline: test_run
                    defaults: { timeout: 5m }
                    steps:
                      - id: call
                        uses: test_patient
                        \(retry)
                    """, adding: [patient]), request)
            let step = try #require(try await harness.steps(run)["call"])
            #expect(step.state == expected, "\(retry)")
            #expect(step.attempt == (retry.isEmpty ? 3 : retry.contains("2") ? 2 : 1), "\(retry)")
        }
        // The pipeline's defaults come before the processor's.
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let patient = PatientProcessor()
        let run = try await harness.executor(adding: [patient]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m, retry: { attempts: 1 } }
                steps:
                  - { id: call, uses: test_patient }
                """, adding: [patient]), request)
        #expect(try await harness.steps(run)["call"]?.attempt == 1)
        #expect(run.state == .failed)
    }

    @Test(arguments: Backend.all) func aRunThatSucceedsOrIsCancelledRunsNoHandler(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let succeeded = try await harness.executor(adding: [recorder]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                steps:
                  - { id: only, uses: test_echo, with: { value: x } }
                on_failure:
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """, adding: [recorder]), request)
        #expect(succeeded.state == .succeeded)
        #expect(try await harness.steps(succeeded)["alert"]?.state == .skipped)
        #expect(try await harness.steps(succeeded)["alert"]?.reason == "not needed: the run succeeded")

        let plan = try harness.plan(
            """
            pipeline: test_run
            defaults: { timeout: 30s }
            steps:
              - { id: long, uses: test_sleep, with: { for: 300s } }
            on_failure:
              - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
            """, adding: [recorder])
        let executor = harness.executor(adding: [recorder])
        let task = Task { [request] in try await executor.start(plan, request) }
        var running = false
        try await eventually(every: .milliseconds(50)) {
            if let run = try await harness.store.runs(pipeline: "test_run", org: "acme", limit: 1).first, run.id != succeeded.id {
                running = try await harness.store.steps(of: run.id).first { $0.stepID == "long" }?.state == .running
            }
            return running
        }
        #expect(running)
        task.cancel()
        let cancelled = try await task.value
        #expect(cancelled.state == .cancelled)
        #expect(try await harness.steps(cancelled)["alert"]?.state == .skipped)
        #expect(try await harness.steps(cancelled)["alert"]?.reason == "not run: the run was cancelled")
        #expect(recorder.contexts.isEmpty)
    }

    @Test(arguments: Backend.all) func aWarehouseThatCannotBeOpenedRunsTheHandlersWithoutItsPassword(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let run = try await harness.executor(adding: [recorder], warehouse: UnreachableWarehouse()).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                steps:
                  - { id: only, uses: test_echo, with: { value: x } }
                on_failure:
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """, adding: [recorder]), request)
        #expect(run.state == .failed)
        #expect(run.reason.hasPrefix("the warehouse could not be opened: could not connect to postgres://"), "\(run.reason)")
        #expect(!run.reason.contains("Hunter2-Passw0rd"))
        let steps = try await harness.steps(run)
        #expect(steps["only"]?.state == .skipped)
        #expect(steps["alert"]?.state == .succeeded)
        let failure = try #require(recorder.contexts.first?.runFailure)
        #expect(failure.stepID == nil)
        #expect(failure.code == "warehouse_unavailable")
        #expect(failure.message == run.reason)
    }

    @Test(arguments: Backend.all) func invalidParamsSkipTheHandlers(_ backend: Backend) async throws {
        let harness = try await Harness(backend)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let run = try await harness.executor(adding: [recorder]).start(
            try harness.plan(
                """
                pipeline: test_run
                defaults: { timeout: 5m }
                params: { day: { type: date, required: true } }
                steps:
                  - { id: only, uses: test_echo, with: { value: "${{ params.day }}" } }
                on_failure:
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}", message: "${{ params.day }}" } }
                """, adding: [recorder]), request)
        #expect(run.state == .failed)
        #expect(try await harness.steps(run)["alert"]?.state == .skipped)
        #expect(try await harness.steps(run)["alert"]?.reason == "not run: the run's params are invalid")
        #expect(recorder.contexts.isEmpty)
    }
}

struct PublishFailureHandlerTests {
    @Test func aPublishThatFailsRunsTheHandlersWithItsCode() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let yaml =
            PipelineProject.mergePipeline() + """

                on_failure:
                  - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
                """
        try project.write("data/events.csv", "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n")
        _ = try await project.run("merge_events", yaml: yaml)
        let size = try FileManager.default.attributesOfItem(atPath: try project.sqlite.warehousePath(org: "acme"))[.size] as? Int ?? 0

        // 20,000 new rows cannot fit in the few pages the org may grow by: publishing fails.
        var csv = "event_id,ts,day,org,amount\n"
        for index in 0..<20_000 { csv += "n\(index),2026-03-02T10:00:00Z,2026-03-02,acme,1\n" }
        try project.write("data/events.csv", csv)
        let (plan, _) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/merge_events.yml")
        let recorder = RecordingNotify()
        let executor = Executor(
            processors: ProcessorEnvironment.standard.adding([recorder]), store: project.store,
            warehouse: SQLiteWarehouse(root: project.root.appendingPathComponent(".sluice"), maxBytesPerOrg: size + 64 * 1024),
            project: ProjectContext(root: project.root), logger: quietLogger)
        let run = try await executor.start(
            try #require(plan), .init(org: "acme", logicalDate: "2026-03-02", env: ["HOOK": "http://127.0.0.1:9/hook"]))
        #expect(run.state == .failed)
        #expect(run.reason.hasPrefix("publishing failed, nothing was changed:"))
        let alert = try #require(try await project.store.steps(of: run.id).first { $0.stepID == "alert" })
        #expect(alert.state == .succeeded)
        #expect(recorder.contexts.count == 1)
        let failure = try #require(recorder.contexts.first?.runFailure)
        #expect(failure.stepID == nil)
        // A full disk has a code of its own (it was `publish_failed` before it had one).
        #expect(failure.code == "warehouse_full")
        #expect(failure.message == run.reason)
    }
}
