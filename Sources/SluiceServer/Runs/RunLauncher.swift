import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Executes the runs the API and the scheduler start, each in a task of its own, registered by
/// run id so a cancel request can reach it. At most `maxExecuting` execute at once; the rest
/// wait, pending, and start in the order they were created as slots free up. A waiting run is
/// kept alive in the run store (heartbeats), so no watchdog takes it for one whose process
/// died. A service of the server: on graceful shutdown it stops taking runs, gives the ones
/// executing the shutdown grace to finish, cancels the rest (the executor records them
/// cancelled, publishing nothing) and waits for them to end; runs still waiting stay pending.
actor RunLauncher: Service {
    /// A run created and handed over, not executing yet.
    private struct Waiting {
        var run: RunRecord
        var plan: PipelinePlan
        var executor: Executor
        var env: [String: String]
    }

    private var tasks: [String: Task<Void, Never>] = [:]
    private var notes: [String: CancellationNote] = [:]
    /// Oldest first (by creation time, then id).
    private var waiting: [Waiting] = []
    private var heartbeats: Task<Void, Never>?
    private var accepting = true
    private let logger: Logger
    private let shutdownGrace: Duration
    private let maxExecuting: Int
    private var finishObservers: [@Sendable () async -> Void] = []
    private let metrics: ServerMetrics?

    init(
        logger: Logger, shutdownGrace: Duration = .zero, maxExecuting: Int = ServerConfiguration.defaultMaxExecutingRuns,
        metrics: ServerMetrics? = nil
    ) {
        self.logger = logger
        self.shutdownGrace = shutdownGrace
        self.maxExecuting = max(1, maxExecuting)
        self.metrics = metrics
    }

    /// Whether new runs are taken (false once shutdown began).
    var isAccepting: Bool { accepting }

    /// The ids of the runs executing here.
    var executing: Set<String> { Set(tasks.keys) }

    /// The ids of the runs waiting for a slot, in the order they will start.
    var waitingRuns: [String] { waiting.map(\.run.id) }

    /// Executes `run` (created in the store, pending) now, or once a slot is free. Returns
    /// false, having recorded the run cancelled, when the server is shutting down.
    @discardableResult
    func launch(_ run: RunRecord, plan: PipelinePlan, executor: Executor, env: [String: String]) async -> Bool {
        guard accepting else {
            try? await executor.store.recordRun(
                run.id, state: .cancelled, reason: "the server was shutting down; the run did not start",
                at: Date())
            // Recorded here, not by the executor, so its metrics observer does not see it.
            metrics?.runEnded(.cancelled)
            return false
        }
        if tasks.count >= maxExecuting {
            // Said before the run is queued, so it can't land after the run has started.
            try? await executor.store.recordRun(
                run.id, state: .pending, reason: "waiting for a slot: \(maxExecuting) runs are executing in this server (--max-executing-runs)",
                at: Date())
        }
        // Requests that created runs at nearly the same time may get here in another order.
        let position = waiting.firstIndex { ($0.run.createdAt, $0.run.id) > (run.createdAt, run.id) } ?? waiting.endIndex
        waiting.insert(Waiting(run: run, plan: plan, executor: executor, env: env), at: position)
        startWaiting()
        return true
    }

    /// Starts waiting runs, oldest first, while slots are free; keeps the rest alive.
    private func startWaiting() {
        while accepting, tasks.count < maxExecuting, !waiting.isEmpty {
            start(waiting.removeFirst())
        }
        if !waiting.isEmpty, heartbeats == nil {
            heartbeats = Task { await self.keepWaitingAlive() }
        }
        metrics?.recordLauncher(executing: tasks.count, waiting: waiting.count)
    }

    private func start(_ next: Waiting) {
        let (run, plan, executor, env) = (next.run, next.plan, next.executor, next.env)
        let logger = self.logger
        let note = CancellationNote()
        notes[run.id] = note
        tasks[run.id] = Task {
            do {
                try await executor.execute(plan, run: run, env: env, cancellation: note)
            } catch {
                logger.error(
                    "run \(run.id) stopped with an error: \(SecretRedactor.shared.redact(String(describing: error)))",
                    metadata: ["run_id": "\(run.id)"])
            }
            self.finished(run.id)
        }
    }

    /// Heartbeats the waiting runs, as the executor does for the runs it executes, until none
    /// waits. A run whose heartbeat is refused is no longer pending (another process's
    /// watchdog marked it abandoned while this one was stalled): it is dropped, not started.
    private func keepWaitingAlive() async {
        while !waiting.isEmpty, !Task.isCancelled {
            let interval = waiting.map(\.executor.options.heartbeatInterval).min() ?? .seconds(5)
            try? await Task.sleep(for: interval)
            for entry in waiting where (try? await entry.executor.store.heartbeat(entry.run.id, at: Date())) == false {
                waiting.removeAll { $0.run.id == entry.run.id }
                logger.warning(
                    "a run waiting for a slot is no longer pending (another process marked it abandoned): it is not started",
                    metadata: ["run_id": "\(entry.run.id)"])
            }
        }
        heartbeats = nil
    }

    /// Cancels the run if it executes or waits here, recording `reason`; false if it does not
    /// (it finished, or another process runs it). A waiting run is recorded cancelled at once.
    func cancel(_ runID: String, reason: String) async -> Bool {
        if let task = tasks[runID] {
            notes[runID]?.set(reason)
            task.cancel()
            return true
        }
        guard let index = waiting.firstIndex(where: { $0.run.id == runID }) else { return false }
        let entry = waiting.remove(at: index)
        metrics?.recordLauncher(executing: tasks.count, waiting: waiting.count)
        do {
            try await entry.executor.cancelUnstarted(entry.plan, run: entry.run, reason: reason)
        } catch {
            logger.error(
                "could not record run \(runID) cancelled: \(SecretRedactor.shared.redact(String(describing: error)))",
                metadata: ["run_id": "\(runID)"])
        }
        return true
    }

    private func finished(_ runID: String) {
        tasks[runID] = nil
        notes[runID] = nil
        startWaiting()
        // The last run ended: what the runs freed goes back to the system, not only to malloc.
        if tasks.isEmpty { FreedMemory.release() }
        for observer in finishObservers { Task { await observer() } }
    }

    /// `observer` is called each time a run launched here ends (the scheduler looks again
    /// then, so a run waiting for `max_active_runs` starts without waiting for the poll).
    func onRunFinished(_ observer: @escaping @Sendable () async -> Void) {
        finishObservers.append(observer)
    }

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    /// Returns when no run is executing or waiting here (runs launched meanwhile are waited
    /// for too).
    func waitUntilIdle() async {
        // A task removes itself from `tasks` before its value is ready, and starts the next
        // waiting run as it does.
        while !tasks.isEmpty {
            for task in Array(tasks.values) { await task.value }
        }
    }

    /// Stops taking runs, waits up to the shutdown grace for those executing, cancels the
    /// rest and waits for them. Runs waiting for a slot are not started: they stay pending in
    /// the run store, with a transition that says why, and without heartbeats the watchdog
    /// marks them abandoned after the lease (`sluice run --resume` runs one then).
    func stop() async {
        accepting = false
        await leaveWaiting()
        let running = Array(tasks.values)
        guard !running.isEmpty else { return }
        if shutdownGrace > .zero {
            logger.notice("shutting down: waiting up to \(DurationText.format(shutdownGrace)) for \(running.count) run(s) to finish")
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for task in running { await task.value } }
                group.addTask { [shutdownGrace] in try? await Task.sleep(for: shutdownGrace) }
                await group.next()
                group.cancelAll()
                // Awaiting a task's value can't be cancelled: the runs are, so the wait ends.
                self.cancelAll(
                    reason:
                        "cancelled at shutdown: the process was stopping and the run did not end within the \(DurationText.format(self.shutdownGrace)) shutdown grace; nothing was published, resume it with sluice run --resume"
                )
            }
        } else {
            cancelAll(
                reason:
                    "cancelled at shutdown: the process was stopping (no shutdown grace); nothing was published, resume it with sluice run --resume")
        }
        for task in running { await task.value }
    }

    /// At shutdown: the waiting runs are let go, still pending.
    private func leaveWaiting() async {
        let left = waiting
        waiting = []
        heartbeats?.cancel()
        heartbeats = nil
        metrics?.recordLauncher(executing: tasks.count, waiting: 0)
        guard !left.isEmpty else { return }
        logger.notice("shutting down: \(left.count) run(s) waiting for a slot were not started; they stay pending")
        let reason =
            "not started: the server stopped while the run waited for a slot (--max-executing-runs); without a heartbeat it is marked abandoned after the lease, then sluice run --resume runs it"
        for entry in left {
            try? await entry.executor.store.recordRun(entry.run.id, state: .pending, reason: reason, at: Date())
        }
    }

    private func cancelAll(reason: String) {
        if !tasks.isEmpty { logger.notice("shutting down: cancelling \(tasks.count) run(s)") }
        for (runID, task) in tasks {
            notes[runID]?.set(reason)
            task.cancel()
        }
    }
}
