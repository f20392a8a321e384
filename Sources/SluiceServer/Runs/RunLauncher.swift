import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel

/// Executes the runs the API and the scheduler start, each in a task of its own, registered by
/// run id so a cancel request can reach it. A service of the server: on graceful shutdown it
/// stops taking runs, gives the ones executing the shutdown grace to finish, cancels the rest
/// (the executor records them cancelled, publishing nothing) and waits for them to end.
actor RunLauncher: Service {
    private var tasks: [String: Task<Void, Never>] = [:]
    private var notes: [String: CancellationNote] = [:]
    private var accepting = true
    private let logger: Logger
    private let shutdownGrace: Duration
    private var finishObservers: [@Sendable () async -> Void] = []
    private let metrics: ServerMetrics?

    init(logger: Logger, shutdownGrace: Duration = .zero, metrics: ServerMetrics? = nil) {
        self.logger = logger
        self.shutdownGrace = shutdownGrace
        self.metrics = metrics
    }

    /// Whether new runs are taken (false once shutdown began).
    var isAccepting: Bool { accepting }

    /// The ids of the runs executing here.
    var executing: Set<String> { Set(tasks.keys) }

    /// Starts executing `run` (created in the store, pending). Returns false, having recorded
    /// the run cancelled, when the server is shutting down.
    @discardableResult
    func launch(_ run: RunRecord, plan: PipelinePlan, executor: Executor, env: [String: String]) async -> Bool {
        guard accepting else {
            try? await executor.store.recordRun(run.id, state: .cancelled, reason: "the server was shutting down; the run did not start",
                                                at: Date())
            // Recorded here, not by the executor, so its metrics observer does not see it.
            metrics?.runEnded(.cancelled)
            return false
        }
        let logger = self.logger
        let note = CancellationNote()
        notes[run.id] = note
        tasks[run.id] = Task {
            do {
                try await executor.execute(plan, run: run, env: env, cancellation: note)
            } catch {
                logger.error("run \(run.id) stopped with an error: \(SecretRedactor.shared.redact(String(describing: error)))",
                             metadata: ["run_id": "\(run.id)"])
            }
            self.finished(run.id)
        }
        return true
    }

    /// Cancels the run if it executes here, recording `reason`; false if it does not (it
    /// finished, or another process runs it).
    func cancel(_ runID: String, reason: String) -> Bool {
        guard let task = tasks[runID] else { return false }
        notes[runID]?.set(reason)
        task.cancel()
        return true
    }

    private func finished(_ runID: String) {
        tasks[runID] = nil
        notes[runID] = nil
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

    /// Returns when no run is executing here (runs launched meanwhile are waited for too).
    func waitUntilIdle() async {
        // A task removes itself from `tasks` before its value is ready.
        while !tasks.isEmpty {
            for task in Array(tasks.values) { await task.value }
        }
    }

    /// Stops taking runs, waits up to the shutdown grace for those executing, cancels the
    /// rest and waits for them.
    func stop() async {
        accepting = false
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
                self.cancelAll(reason: "cancelled at shutdown: the process was stopping and the run did not end within the \(DurationText.format(self.shutdownGrace)) shutdown grace; nothing was published, resume it with sluice run --resume")
            }
        } else {
            cancelAll(reason: "cancelled at shutdown: the process was stopping (no shutdown grace); nothing was published, resume it with sluice run --resume")
        }
        for task in running { await task.value }
    }

    private func cancelAll(reason: String) {
        if !tasks.isEmpty { logger.notice("shutting down: cancelling \(tasks.count) run(s)") }
        for (runID, task) in tasks {
            notes[runID]?.set(reason)
            task.cancel()
        }
    }
}
