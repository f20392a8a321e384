import Foundation
import Logging
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceEngine

/// Executor logs would bury the test output; the run store holds what tests check.
let quietLogger = Logger(label: "sluice.test") { _ in SwiftLogNoOpLogHandler() }

// Processors that exist only to drive the executor through its paths. They touch no storage;
// the run store under test is a real SQLite file.

/// Publishes `value` as output `echo`.
struct EchoProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_echo", summary: "s", description: "d",
            fields: [FieldSpec("value", .string, .required, description: "what to publish")],
            outputs: [OutputSpec("echo", "string", "the value")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        ["echo": .string(step.config["value"]?.scalarText ?? "")]
    }
}

/// Fails transiently `failures` times per step id, then succeeds.
final class FlakyProcessor: Processor, Sendable {
    let failures: Int
    let retryAfter: Duration?
    let calls = Mutex([String: Int]())

    init(failures: Int, retryAfter: Duration? = nil) {
        self.failures = failures
        self.retryAfter = retryAfter
    }

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_flaky", summary: "s", description: "d", fields: [],
            outputs: [OutputSpec("attempts", "integer", "tries")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let call = calls.withLock { calls -> Int in
            calls[step.stepID, default: 0] += 1
            return calls[step.stepID]!
        }
        if call <= failures { throw StepFailure("rate_limited", "the provider said 429", transient: true, retryAfter: retryAfter) }
        return ["attempts": .number(Double(call))]
    }
}

/// Fails for good.
struct FailProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(name: "test_fail", summary: "s", description: "d", fields: [], outputs: [OutputSpec("x", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        throw StepFailure("credential_invalid", "the provider said 401")
    }
}

/// Sleeps `for`; honours cancellation unless `stubborn`, and counts how many run at once.
final class SleepProcessor: Processor, Sendable {
    let active = Mutex((now: 0, most: 0))

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_sleep", summary: "s", description: "d",
            fields: [
                FieldSpec("for", .duration, .required, description: "how long"),
                FieldSpec("stubborn", .boolean, description: "ignore cancellation"),
            ],
            outputs: [OutputSpec("slept", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        active.withLock {
            $0.now += 1; $0.most = max($0.most, $0.now)
        }
        defer { active.withLock { $0.now -= 1 } }
        let duration = try DurationText.parse(step.config["for"]?.scalarText ?? "1s")
        if step.config["stubborn"]?.bool == true {
            // A sleep that cancellation cannot interrupt, without blocking a thread.
            let seconds = duration.timeInterval
            await withCheckedContinuation { continuation in
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume() }
            }
        } else {
            try await Task.sleep(for: duration)
        }
        return ["slept": .string(DurationText.format(duration))]
    }

    var mostAtOnce: Int { active.withLock { $0.most } }
}

struct Harness {
    let folder: URL
    let store: any RunStore
    let sleeper = SleepProcessor()
    let flaky: FlakyProcessor
    let catalog: ProcessorEnvironment
    private let dropStorage: @Sendable () -> Void

    init(flakyFailures: Int = 2, retryAfter: Duration? = nil) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
        flaky = FlakyProcessor(failures: flakyFailures, retryAfter: retryAfter)
        catalog = ProcessorEnvironment([EchoProcessor(), flaky, FailProcessor(), sleeper] + [BuiltinNotify()])
        dropStorage = {}
    }

    /// A harness whose run store is on `backend`.
    init(_ backend: Backend, flakyFailures: Int = 2, retryAfter: Duration? = nil) async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let storage = try await backend.open(root: folder)
        store = storage.store
        dropStorage = storage.remove
        flaky = FlakyProcessor(failures: flakyFailures, retryAfter: retryAfter)
        catalog = ProcessorEnvironment([EchoProcessor(), flaky, FailProcessor(), sleeper] + [BuiltinNotify()])
    }

    func plan(_ yaml: String) throws -> PipelinePlan {
        let result = PipelineLoader(registry: catalog.registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        return try PipelinePlan.build(try #require(result.definition)).get()
    }

    func executor(grace: Duration = .milliseconds(300)) -> Executor {
        var options = ExecutorOptions()
        options.cancellationGrace = grace
        options.heartbeatInterval = .milliseconds(100)
        return Executor(processors: catalog, store: store, options: options, logger: quietLogger)
    }

    func start(_ yaml: String, params: [String: String] = [:], key: String? = nil) async throws -> RunRecord {
        try await executor().start(try plan(yaml), .init(org: "acme", logicalDate: "2026-03-01", params: params, env: ["HOOK": "x"], triggerKey: key))
    }

    /// "step:state" for every step transition, in order.
    func stepHistory(_ run: RunRecord) async throws -> [String] {
        try await store.transitions(of: run.id).compactMap { transition in
            transition.stepID.map { "\($0):\(transition.state.rawValue)" }
        }
    }

    func remove() {
        dropStorage()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// A stand-in for `notify` (the real one, in SluiceProviders, posts over HTTP).
struct BuiltinNotify: Processor {
    var spec: ProcessorSpec { .notify }
    func run(_ step: StepContext) async throws -> [String: ExpressionValue] { ["http_status": .number(200)] }
}

struct ExecutorTests {
    @Test func stepsRunInOrderAndOutputsFlowDownstream() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m }
            params: { greeting: { type: string, default: "hello ${{ run.org }}" } }
            steps:
              - { id: first, uses: test_echo, with: { value: "${{ params.greeting }}" } }
              - { id: second, uses: test_echo, with: { value: "${{ steps.first.outputs.echo }} on ${{ run.logical_date }}" } }
            """)
        #expect(run.state == .succeeded)
        #expect(run.reason == "every step succeeded")
        let steps = try await harness.store.steps(of: run.id)
        #expect(steps.map(\.state) == [.succeeded, .succeeded])
        #expect(steps[1].outputs["echo"] == .string("hello acme on 2026-03-01"))
        #expect(try await harness.stepHistory(run) == ["first:running", "first:succeeded", "second:running", "second:succeeded"])
        let runStates = try await harness.store.transitions(of: run.id).filter { $0.stepID == nil }.map(\.state)
        #expect(runStates == [.pending, .running, .succeeded])
        #expect(try await harness.store.run(run.id)?.heartbeatAt != nil)
    }

    @Test func maxParallelBoundsHowManyStepsRunAtOnce() async throws {
        for (limit, expected) in [(1, 1), (3, 3)] {
            let harness = try Harness()
            defer { harness.remove() }
            let run = try await harness.start(
                """
                pipeline: test_run
                defaults: { timeout: 5m, max_parallel: \(limit) }
                steps:
                  - { id: a, uses: test_sleep, with: { for: 150ms } }
                  - { id: b, uses: test_sleep, with: { for: 150ms } }
                  - { id: c, uses: test_sleep, with: { for: 150ms } }
                """)
            #expect(run.state == .succeeded)
            #expect(harness.sleeper.mostAtOnce == expected)
        }
    }

    @Test func aRunPastItsTimeoutFailsItsHandlersRunAndNothingLaterStarts() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let started = ContinuousClock.now
        let run = try await harness.start(
            """
            pipeline: test_run
            timeout: 2s
            defaults: { timeout: 5m }
            steps:
              - { id: quick, uses: test_echo, with: { value: x } }
              - { id: slow, uses: test_sleep, with: { for: 30s } }
              - { id: after, uses: test_echo, needs: [slow], with: { value: y } }
            on_failure:
              - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
            """)
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(run.state == .failed)
        #expect(run.reason == "the run passed its timeout (2s); its running steps were cancelled and nothing was published")
        let steps = Dictionary(uniqueKeysWithValues: try await harness.store.steps(of: run.id).map { ($0.stepID, $0) })
        #expect(steps["quick"]?.state == .succeeded)
        #expect(steps["slow"]?.state == .cancelled)
        #expect(steps["slow"]?.reason == "the run passed its timeout")
        #expect(steps["after"]?.reason == "not run: the run passed its timeout")
        // A timeout is a failure, not a cancellation somebody asked for: the handlers hear of it.
        #expect(steps["alert"]?.state == .succeeded)

        // Without a run-level timeout the same steps are bounded by their own only.
        let unbounded = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m }
            steps:
              - { id: slow, uses: test_sleep, with: { for: 400ms } }
            """)
        #expect(unbounded.state == .succeeded)
    }

    @Test func transientFailuresRetryWithBackoffUntilTheyPass() async throws {
        let harness = try Harness(flakyFailures: 2)
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 3, initial_delay: 20ms, max_delay: 50ms } }
            steps:
              - { id: call, uses: test_flaky }
            """)
        #expect(run.state == .succeeded)
        let steps = try await harness.store.steps(of: run.id)
        #expect(steps[0].attempt == 3)
        #expect(steps[0].outputs["attempts"] == .number(3))
        #expect(
            try await harness.stepHistory(run) == [
                "call:running", "call:retrying", "call:running", "call:retrying", "call:running", "call:succeeded",
            ])
        let retrying = try await harness.store.transitions(of: run.id).first { $0.state == .retrying }
        #expect(retrying?.reason.hasPrefix("the provider said 429; retrying in ") == true)
    }

    @Test func aRetryWaitsAtLeastWhatTheProviderAskedFor() async throws {
        let harness = try Harness(flakyFailures: 1, retryAfter: .milliseconds(400))
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 3, initial_delay: 10ms, max_delay: 2s } }
            steps:
              - { id: call, uses: test_flaky }
            """)
        #expect(run.state == .succeeded)
        let transitions = try await harness.store.transitions(of: run.id).filter { $0.stepID == "call" }
        let retrying = try #require(transitions.first { $0.state == .retrying })
        #expect(retrying.reason == "the provider said 429; retrying in 400ms")
        let second = try #require(transitions.last { $0.state == .running })
        #expect(second.at.timeIntervalSince(retrying.at) >= 0.39)
    }

    @Test func aProviderWaitBeyondMaxDelayFailsTheStepAtOnce() async throws {
        let harness = try Harness(flakyFailures: 1, retryAfter: .seconds(120))
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 3, initial_delay: 10ms, max_delay: 1s } }
            steps:
              - { id: call, uses: test_flaky }
            """)
        #expect(run.state == .failed)
        #expect(try await harness.stepHistory(run) == ["call:running", "call:failed"])
        let steps = try await harness.store.steps(of: run.id)
        #expect(steps[0].reason.contains("asked to wait 2m, more than retry.max_delay (1s)"), "\(steps[0].reason)")
    }

    @Test func exhaustedRetriesDeadLetterSkipDownstreamAndRunHandlers() async throws {
        let harness = try Harness(flakyFailures: 10)
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 2, initial_delay: 10ms } }
            steps:
              - { id: call, uses: test_flaky }
              - { id: after, uses: test_echo, needs: [call], with: { value: x } }
            on_failure:
              - { id: alert, uses: notify, with: { url: "${{ env.HOOK }}" } }
            """)
        #expect(run.state == .failed)
        #expect(run.reason == "step 'call' failed: gave up after 2 attempts: the provider said 429")
        let steps = Dictionary(uniqueKeysWithValues: try await harness.store.steps(of: run.id).map { ($0.stepID, $0) })
        #expect(steps["call"]?.state == .deadLettered)
        #expect(steps["call"]?.errorCode == "rate_limited")
        #expect(steps["after"]?.state == .skipped)
        #expect(steps["after"]?.reason == "not run: step 'call' failed")
        #expect(steps["alert"]?.state == .succeeded)
    }

    @Test func permanentFailuresAreNotRetried() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let run = try await harness.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 5, initial_delay: 10ms } }
            steps:
              - { id: login, uses: test_fail }
            """)
        #expect(run.state == .failed)
        #expect(try await harness.stepHistory(run) == ["login:running", "login:failed"])
        #expect(try await harness.store.steps(of: run.id).first?.errorCode == "credential_invalid")
    }

    @Test func aStepPastItsTimeoutIsCancelledAndRetried() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let started = ContinuousClock.now
        let run = try await harness.start(
            """
            pipeline: test_run
            steps:
              - { id: slow, uses: test_sleep, timeout: 100ms, retry: { attempts: 2, initial_delay: 10ms }, with: { for: 15m } }
            """)
        // Far less than the 15 min the step asked for, however loaded the machine is.
        #expect(ContinuousClock.now - started < TestTime.patience)
        #expect(run.state == .failed)
        #expect(
            try await harness.stepHistory(run) == [
                "slow:running", "slow:timed_out", "slow:retrying", "slow:running", "slow:timed_out", "slow:dead_lettered",
            ])
        let timedOut = try await harness.store.transitions(of: run.id).first { $0.state == .timedOut }
        #expect(timedOut?.reason == "the step ran past its 100ms timeout and was cancelled")
    }

    @Test func aStepThatIgnoresCancellationIsAbandonedAndTheRunEnds() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let started = ContinuousClock.now
        let run = try await harness.start(
            """
            pipeline: test_run
            steps:
              - { id: stuck, uses: test_sleep, timeout: 100ms, with: { for: 15m, stubborn: true } }
            """)
        // Timeout (100ms) plus the grace period (300ms), not the 15 min the step wanted.
        #expect(ContinuousClock.now - started < TestTime.patience)
        #expect(run.state == .failed)
        let steps = try await harness.store.steps(of: run.id)
        #expect(steps[0].state == .deadLettered)
        #expect(steps[0].reason == "the step ran past its 100ms timeout and ignored cancellation; it was abandoned")
    }

    @Test func cancellingTheRunCancelsRunningStepsAndSkipsTheRest() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let plan = try harness.plan(
            """
            pipeline: test_run
            defaults: { timeout: 30s }
            steps:
              - { id: long, uses: test_sleep, with: { for: 300s } }
              - { id: later, uses: test_echo, needs: [long], with: { value: x } }
            """)
        let executor = harness.executor()
        let task = Task { try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01")) }
        // Cancel once the long step is running.
        var running = false
        try await eventually(every: .milliseconds(50)) {
            if let run = try await harness.store.runs(pipeline: "test_run", org: "acme", limit: 1).first {
                running = try await harness.store.steps(of: run.id).first { $0.stepID == "long" }?.state == .running
            }
            return running
        }
        #expect(running)
        task.cancel()
        let run = try await task.value
        #expect(run.state == .cancelled)
        let steps = Dictionary(uniqueKeysWithValues: try await harness.store.steps(of: run.id).map { ($0.stepID, $0.state) })
        #expect(steps["long"] == .cancelled)
        #expect(steps["later"] == .skipped)
    }

    @Test func oneTriggerKeyMakesOneRunEvenWhenStartedConcurrently() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let plan = try harness.plan(
            """
            pipeline: test_run
            defaults: { timeout: 5m }
            steps:
              - { id: only, uses: test_echo, with: { value: x } }
            """)
        let executor = harness.executor()
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", triggerKey: "schedule:2026-03-01")).id
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try await harness.store.runs(pipeline: "test_run", org: "acme", limit: 100).count == 1)
    }

    @Test func paramsAreCheckedBeforeAnyStepRuns() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let yaml = """
            pipeline: test_run
            defaults: { timeout: 5m }
            params:
              day: { type: date, required: true }
              limit: { type: integer, default: 10 }
            steps:
              - { id: only, uses: test_echo, with: { value: "${{ params.day }}/${{ params.limit }}" } }
            """
        let missing = try await harness.start(yaml)
        #expect(missing.state == .failed)
        #expect(missing.reason == "param 'day' is required; give it with --param day=… [invalid_params]")
        #expect(try await harness.store.steps(of: missing.id).first?.state == .skipped)

        let wrong = try await harness.start(yaml, params: ["day": "2026-02-30"])
        #expect(wrong.reason == "param 'day': '2026-02-30' is not a YYYY-MM-DD date [invalid_params]")

        let fine = try await harness.start(yaml, params: ["day": "2026-02-28"])
        #expect(fine.state == .succeeded)
        #expect(try await harness.store.steps(of: fine.id).first?.outputs["echo"] == .string("2026-02-28/10"))
    }
}

struct RunStoreTests {
    @Test func runsWhoseHeartbeatStoppedAreAbandonedWithTheReason() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let old = Date(timeIntervalSinceNow: -600)
        let record = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli, createdAt: old)
        _ = try await harness.store.createRun(record, steps: [StepRunRecord(runID: record.id, stepID: "load", processor: "ingest")])
        try await harness.store.recordRun(record.id, state: .running, reason: "started", at: old)
        try await harness.store.recordStep(record.id, step: "load", state: .running, attempt: 1, reason: "started", errorCode: nil, at: old)
        try await harness.store.heartbeat(record.id, at: old)

        let fresh = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-02", trigger: .cli)
        _ = try await harness.store.createRun(fresh, steps: [])
        try await harness.store.recordRun(fresh.id, state: .running, reason: "started", at: Date())
        try await harness.store.heartbeat(fresh.id, at: Date())

        let abandoned = try await harness.store.abandonRuns(
            heartbeatBefore: Date(timeIntervalSinceNow: -60),
            reason: "no heartbeat for 60s (the process died?)", at: Date())
        #expect(abandoned.map(\.id) == [record.id])
        #expect(try await harness.store.run(record.id)?.reason == "abandoned: no heartbeat for 60s (the process died?)")
        #expect(try await harness.store.steps(of: record.id).first?.errorCode == "abandoned")
        #expect(try await harness.store.run(fresh.id)?.state == .running)
    }

    @Test func reopeningTheStoreKeepsHistoryAndMigratesOnce() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let record = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli, params: ["day": "x"])
        _ = try await harness.store.createRun(record, steps: [])
        let reopened = try SQLiteRunStore(path: harness.folder.appendingPathComponent("runs.sqlite").path)
        #expect(try await reopened.run(record.id)?.params == ["day": "x"])
        #expect(try await reopened.runs(pipeline: nil, org: "acme", limit: 10).map(\.id) == [record.id])
    }
}

struct RetryDelayTests {
    @Test func exponentialDelaysDoubleUpToTheCap() {
        var generator = SystemRandomNumberGenerator()
        let policy = RetryPolicy(attempts: 10, backoff: .exponential, initialDelay: .seconds(1), maxDelay: .seconds(10), jitter: false)
        let delays = (1...6).map { policy.delay(afterFailedAttempts: $0, using: &generator) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
        let fixed = RetryPolicy(attempts: 3, backoff: .fixed, initialDelay: .milliseconds(500), maxDelay: .seconds(10), jitter: false)
        #expect(fixed.delay(afterFailedAttempts: 3, using: &generator) == .milliseconds(500))
    }

    @Test func jitterStaysInTheUpperHalf() {
        var generator = SystemRandomNumberGenerator()
        let policy = RetryPolicy(attempts: 10, backoff: .exponential, initialDelay: .seconds(4), maxDelay: .seconds(60), jitter: true)
        let delays = (0..<200).map { _ in policy.delay(afterFailedAttempts: 1, using: &generator) }
        #expect(delays.allSatisfy { (delay: Duration) in delay >= .seconds(2) && delay <= .seconds(4) })
        #expect(Set(delays).count > 10)
    }
}
