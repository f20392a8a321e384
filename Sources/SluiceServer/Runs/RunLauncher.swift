import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel

/// Executes the runs the API starts, each in a task of its own, registered by run id so a
/// cancel request can reach it. A service of the server: on graceful shutdown it stops taking
/// runs, cancels the ones executing (the executor records them cancelled, publishing
/// nothing) and waits for them to finish.
actor RunLauncher: Service {
    private var tasks: [String: Task<Void, Never>] = [:]
    private var accepting = true
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
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
            return false
        }
        let logger = self.logger
        tasks[run.id] = Task {
            do {
                try await executor.execute(plan, run: run, env: env)
            } catch {
                logger.error("run \(run.id) stopped with an error: \(SecretRedactor.shared.redact(String(describing: error)))",
                             metadata: ["run_id": "\(run.id)"])
            }
            await self.finished(run.id)
        }
        return true
    }

    /// Cancels the run if it executes here; false if it does not (it finished, or another
    /// process runs it).
    func cancel(_ runID: String) -> Bool {
        guard let task = tasks[runID] else { return false }
        task.cancel()
        return true
    }

    private func finished(_ runID: String) {
        tasks[runID] = nil
    }

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    /// Stops taking runs, cancels those executing and waits for them.
    func stop() async {
        accepting = false
        let running = tasks
        if !running.isEmpty { logger.notice("shutting down: cancelling \(running.count) run(s)") }
        for task in running.values { task.cancel() }
        for task in running.values { await task.value }
    }
}
