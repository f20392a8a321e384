import Synchronization

/// How one attempt of a step ended.
enum AttemptOutcome<Value: Sendable>: Sendable {
    case finished(Result<Value, any Error>)
    /// The timeout passed. `abandoned` when the work ignored cancellation for the grace period.
    case timedOut(abandoned: Bool)
    /// The run was cancelled while the attempt ran.
    case cancelled(abandoned: Bool)
}

/// Runs an attempt with a time limit. The work runs in its own task so that a step which
/// ignores cancellation can be left behind (abandoned) instead of hanging the run: at the
/// limit the task is cancelled, given `grace` to stop, and then abandoned if it has not.
/// Cancelling the caller's task does the same with `.cancelled`.
enum AttemptRunner {
    static func run<Value: Sendable>(
        limit: Duration?, grace: Duration,
        _ work: @escaping @Sendable () async throws -> Value
    ) async -> AttemptOutcome<Value> {
        let race = Race<Value>()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AttemptOutcome<Value>, Never>) in
                race.start(continuation)
                let task = Task {
                    let result: Result<Value, any Error>
                    do { result = .success(try await work()) } catch { result = .failure(error) }
                    race.workFinished(result)
                }
                race.attach(task)
                if let limit {
                    // Cancelled once the work ends: a worker runs many steps, and each step's
                    // timer would otherwise sleep on for as long as its timeout.
                    race.attachTimer(
                        Task {
                            guard (try? await Task.sleep(for: limit)) != nil else { return }
                            await race.interrupt(as: .timeout, grace: grace)
                        })
                }
            }
        } onCancel: {
            Task { await race.interrupt(as: .cancellation, grace: grace) }
        }
    }

    /// The shared state of one attempt: who finishes first decides the outcome, once.
    final class Race<Value: Sendable>: Sendable {
        enum Interruption: Sendable { case timeout, cancellation }

        private struct State {
            var continuation: CheckedContinuation<AttemptOutcome<Value>, Never>?
            var task: Task<Void, Never>?
            var timer: Task<Void, Never>?
            var workDone = false
            var interrupted = false
            var graceWaiter: CheckedContinuation<Bool, Never>?
            var cancelledBeforeStart = false
        }

        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<AttemptOutcome<Value>, Never>) {
            state.withLock { $0.continuation = continuation }
        }

        func attach(_ task: Task<Void, Never>) {
            let cancelNow = state.withLock { state -> Bool in
                state.task = task
                return state.cancelledBeforeStart
            }
            if cancelNow { task.cancel() }
        }

        func attachTimer(_ timer: Task<Void, Never>) {
            let done = state.withLock { state -> Bool in
                state.timer = timer
                return state.workDone
            }
            if done { timer.cancel() }
        }

        func workFinished(_ result: Result<Value, any Error>) {
            let (continuation, waiter, timer) = state.withLock {
                state -> (CheckedContinuation<AttemptOutcome<Value>, Never>?, CheckedContinuation<Bool, Never>?, Task<Void, Never>?) in
                state.workDone = true
                let timer = state.timer
                if state.interrupted {
                    let waiter = state.graceWaiter
                    state.graceWaiter = nil
                    return (nil, waiter, timer)
                }
                let continuation = state.continuation
                state.continuation = nil
                return (continuation, nil, timer)
            }
            timer?.cancel()
            continuation?.resume(returning: .finished(result))
            waiter?.resume(returning: true)
        }

        func interrupt(as kind: Interruption, grace: Duration) async {
            let task = state.withLock { state -> Task<Void, Never>?? in
                guard !state.workDone, !state.interrupted, state.continuation != nil else {
                    if state.continuation == nil && !state.workDone { state.cancelledBeforeStart = true }
                    return .none
                }
                state.interrupted = true
                return .some(state.task)
            }
            guard let task else { return }
            task?.cancel()
            // Wait for the work to stop, or for the grace period to pass, whichever is first.
            let stopped = await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
                let alreadyDone = state.withLock { state -> Bool in
                    if state.workDone { return true }
                    state.graceWaiter = waiter
                    return false
                }
                if alreadyDone {
                    waiter.resume(returning: true)
                    return
                }
                Task {
                    try? await Task.sleep(for: grace)
                    let pending = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                        let pending = state.graceWaiter
                        state.graceWaiter = nil
                        return pending
                    }
                    pending?.resume(returning: false)
                }
            }
            let continuation = state.withLock { state -> CheckedContinuation<AttemptOutcome<Value>, Never>? in
                let continuation = state.continuation
                state.continuation = nil
                return continuation
            }
            switch kind {
            case .timeout: continuation?.resume(returning: .timedOut(abandoned: !stopped))
            case .cancellation: continuation?.resume(returning: .cancelled(abandoned: !stopped))
            }
        }
    }
}
