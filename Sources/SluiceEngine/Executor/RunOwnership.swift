import Synchronization

/// Whether this process still owns the run it executes.
///
/// Another process's watchdog marks a run abandoned when its heartbeat has stopped for a lease:
/// usually the process died, but it may only have been suspended (a laptop asleep, a paused
/// VM). If such a process wakes, the run is no longer its own: someone may have resumed it from
/// the same staging. It then stops without touching the run again: it does not publish, does
/// not discard the staging, and records no state over the one the watchdog recorded.
final class RunOwnership: Sendable {
    private struct State {
        var lost = false
        var onLoss: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    var isLost: Bool { state.withLock { $0.lost } }

    /// The run was found marked by another process: calls the loss actions, once.
    func lose() {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.lost else { return [] }
            state.lost = true
            defer { state.onLoss = [] }
            return state.onLoss
        }
        for action in actions { action() }
    }

    /// `action` runs when the run is lost (at once if it is already).
    func onLoss(_ action: @escaping @Sendable () -> Void) {
        let lostAlready = state.withLock { state -> Bool in
            if !state.lost { state.onLoss.append(action) }
            return state.lost
        }
        if lostAlready { action() }
    }
}

/// Why a run is being cancelled, said by whoever cancels its task (an API request, a shutdown)
/// before cancelling, and recorded as the cancelled run's reason. The first reason given stays.
public final class CancellationNote: Sendable {
    private let text = Mutex<String?>(nil)

    public init() {}

    public var reason: String? { text.withLock { $0 } }

    public func set(_ reason: String) {
        text.withLock { if $0 == nil { $0 = reason } }
    }
}
