import SluiceModel
import Synchronization

/// A run's own `timeout`: when it passes, whatever the run is doing that can be stopped is
/// cancelled (its steps, its wait for tables other runs hold), and the run fails with
/// `run_timed_out`. The publish transaction itself is never interrupted. Without a timeout it
/// does nothing.
final class RunDeadline: Sendable {
    let timeout: Duration?
    private let state = Mutex(State())

    private struct State {
        var passed = false
        var onPass: [@Sendable () -> Void] = []
    }

    init(_ timeout: Duration?) {
        self.timeout = timeout
    }

    /// Whether the timeout has passed.
    var passed: Bool { state.withLock { $0.passed } }

    /// The failure of a run that passed its timeout.
    var failure: StepFailure {
        StepFailure(
            .runTimedOut,
            "the run passed its timeout (\(timeout.map(DurationText.format) ?? "none")); its running steps were cancelled and nothing was published")
    }

    /// Starts the clock; `expire` is called once when the timeout passes. Returns the clock's
    /// task (cancel it when the run ends), or nil without a timeout.
    func start(expire: @escaping @Sendable () -> Void) -> Task<Void, Never>? {
        guard let timeout else { return nil }
        return Task { [self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            let waiting = state.withLock { state in
                state.passed = true
                defer { state.onPass = [] }
                return state.onPass
            }
            expire()
            for cancel in waiting { cancel() }
        }
    }

    /// Runs `work`, cancelled if the timeout passes meanwhile.
    func bound<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        guard timeout != nil else { return try await work() }
        let task = Task { try await work() }
        let alreadyPassed = state.withLock { state in
            if !state.passed { state.onPass.append { task.cancel() } }
            return state.passed
        }
        if alreadyPassed { task.cancel() }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
