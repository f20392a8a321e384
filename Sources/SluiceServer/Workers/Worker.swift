import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `sluice worker`: claims the runs left for workers (`RunStore.claimRun`), oldest first, up
/// to `concurrency` at once, and executes each under a lease it renews. A run whose worker
/// stopped (its lease expired, or it released the run) is claimed like a pending one and
/// continued from its staging.
///
/// A service: on graceful shutdown (SIGTERM, Ctrl-C) it stops claiming, gives the runs it
/// executes `grace` to finish, then cancels the rest and releases them, their staging kept,
/// so that another worker continues them at once instead of waiting for the lease to expire.
public actor Worker: Service {
    public struct Options: Sendable {
        /// Names this worker in the run history; unique among the workers of a store.
        public var id: String
        /// The most runs it executes at once.
        public var concurrency: Int
        /// Only runs of these orgs; nil for every org.
        public var orgs: Set<String>?
        /// How long a claim lasts unless renewed (every third of it): after that another
        /// worker may take the run over.
        public var lease: Duration
        /// How long to wait before looking again when there was nothing to claim.
        public var poll: Duration
        /// At shutdown, how long the runs executing may go on before they are released.
        public var grace: Duration

        public init(
            id: String = Worker.newID(), concurrency: Int = 1, orgs: Set<String>? = nil, lease: Duration = .seconds(30),
            poll: Duration = .seconds(1), grace: Duration = .seconds(30)
        ) {
            self.id = id
            self.concurrency = max(1, concurrency)
            self.orgs = orgs
            self.lease = lease
            self.poll = poll
            self.grace = grace
        }
    }

    /// A run executing here, and what stopping it takes.
    private struct Executing {
        var run: RunRecord
        var task: Task<Void, Never>
        var lease: RunLease
    }

    public nonisolated let options: Options
    private let runner: Runner
    private let logger: Logger
    private var executing: [String: Executing] = [:]
    /// Told when a run ends and a slot frees, so the claim loop need not wait out its poll.
    private var slotFreed: CheckedContinuation<Void, Never>?

    public init(runner: Runner, options: Options, logger: Logger) {
        self.runner = runner
        self.options = options
        var logger = logger
        logger[metadataKey: "worker"] = "\(options.id)"
        self.logger = logger
    }

    /// A worker id that is stable for the process and unique across machines: the host name,
    /// the process id and a random suffix (a pid is reused after a restart, and in containers
    /// every worker may be pid 1).
    public static func newID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        return "\(host.isEmpty ? "host" : host)-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)"
    }

    /// The ids of the runs executing here.
    public var executingRuns: Set<String> { Set(executing.keys) }

    public func run() async throws {
        let orgs = options.orgs.map { $0.sorted().joined(separator: ", ") } ?? "every org"
        logger.notice(
            "worker started: up to \(options.concurrency) run(s) at once, \(orgs), lease \(DurationText.format(options.lease))")
        let claiming = Task { await self.claimUntilCancelled() }
        await withGracefulShutdownHandler {
            await claiming.value
        } onGracefulShutdown: {
            claiming.cancel()
        }
        await stop()
        logger.notice("worker stopped")
    }

    /// Claims runs while slots are free, and waits (up to the poll) when none are or nothing
    /// was left to claim; until the task is cancelled.
    private func claimUntilCancelled() async {
        while !Task.isCancelled {
            while executing.count < options.concurrency, !Task.isCancelled {
                let claim: RunClaim?
                do {
                    claim = try await runner.store.claimRun(worker: options.id, lease: options.lease, orgs: options.orgs, at: Date())
                } catch {
                    logger.error("could not claim a run: \(SecretRedactor.shared.redact(String(describing: error)))")
                    break
                }
                guard let claim else { break }
                await start(claim)
            }
            await waitForSlotOrPoll()
        }
    }

    /// Returns after the poll, or as soon as a run ends, or when the task is cancelled.
    private func waitForSlotOrPoll() async {
        let poll = options.poll
        let timer = Task { [weak self] in
            try? await Task.sleep(for: poll)
            await self?.wake()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume()
                } else {
                    slotFreed = continuation
                }
            }
        } onCancel: {
            Task { await self.wake() }
        }
        timer.cancel()
    }

    private func wake() {
        slotFreed?.resume()
        slotFreed = nil
    }

    /// Starts executing a claimed run in a task of its own; a run that can't execute here
    /// (its pipeline is gone or no longer lints, or it needs keys this worker lacks) fails
    /// with the reason.
    private func start(_ claim: RunClaim) async {
        let run = claim.run
        let metadata: Logger.Metadata = ["run_id": "\(run.id)", "pipeline": "\(run.pipeline)", "org": "\(run.org)"]
        if claim.isTakeover {
            logger.notice("took over a run from worker \(claim.previousWorker ?? "?")", metadata: metadata)
        } else {
            logger.info("claimed a run", metadata: metadata)
        }
        let entry = await runner.catalog.entry(run.pipeline)
        guard let entry, let plan = entry.plan else {
            let why = entry == nil ? "is not in this worker's project" : "does not lint in this worker's project"
            await failUnstartable(run, reason: "pipeline '\(run.pipeline)' \(why); worker \(options.id) could not execute the run")
            return
        }
        // The runner's keys, loaded when the worker started: a pipeline that decrypts
        // credentials needs them here, wherever the run was created.
        do {
            _ = try runner.starter.keys(for: plan)
        } catch {
            await failUnstartable(run, reason: "worker \(options.id) can't execute the run: \(error)")
            return
        }
        let executor = runner.executor(for: entry, plan: plan)
        let lease = RunLease(worker: options.id, duration: options.lease)
        let env = runner.configuration.environment
        let logger = self.logger
        let task = Task {
            do {
                try await executor.execute(claimed: claim, plan: plan, env: env, lease: lease)
            } catch {
                logger.error(
                    "run stopped with an error: \(SecretRedactor.shared.redact(String(describing: error)))", metadata: metadata)
            }
            await self.finished(run.id)
        }
        executing[run.id] = Executing(run: run, task: task, lease: lease)
    }

    private func failUnstartable(_ run: RunRecord, reason: String) async {
        logger.error("\(reason)", metadata: ["run_id": "\(run.id)"])
        do {
            let now = Date()
            for step in try await runner.store.steps(of: run.id) where !step.state.isFinal {
                try await runner.store.recordStep(
                    run.id, step: step.stepID, state: .skipped, attempt: step.attempt, reason: "not run: \(reason)", errorCode: nil, at: now)
            }
            try await runner.store.recordRun(run.id, state: .failed, reason: reason, at: now)
        } catch {
            logger.error(
                "could not record the run failed: \(SecretRedactor.shared.redact(String(describing: error)))", metadata: ["run_id": "\(run.id)"])
        }
    }

    private func finished(_ runID: String) async {
        executing[runID] = nil
        wake()
        let run = try? await runner.store.run(runID)
        logger.info(
            "run ended here: \(run.map { "\($0.state.rawValue)" } ?? "unknown")",
            metadata: ["run_id": "\(runID)", "pipeline": "\(run?.pipeline ?? "?")"])
    }

    /// Gives the runs executing the grace to finish, then releases the rest (cancelled, their
    /// staging kept) and waits for them to stop.
    private func stop() async {
        let running = executing.values.map(\.task)
        guard !running.isEmpty else { return }
        let grace = options.grace
        logger.notice("stopping: waiting up to \(DurationText.format(grace)) for \(running.count) run(s) to finish")
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for task in running { await task.value } }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
            // Awaiting a task's value can't be cancelled: the runs are, so the wait ends.
            self.releaseAll(
                "the worker was stopped and the run did not finish within its \(DurationText.format(grace)) grace; another worker continues it")
        }
    }

    /// Cancels the runs executing here, each to be released with `reason` rather than ended.
    private func releaseAll(_ reason: String) {
        guard !executing.isEmpty else { return }
        logger.notice("stopping: releasing \(executing.count) run(s) for another worker to continue")
        for entry in executing.values {
            entry.lease.requestRelease(reason)
            entry.task.cancel()
        }
    }
}
