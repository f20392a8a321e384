import Foundation

/// Wall-clock time in tests.
///
/// `swift test` starts every test at once and the machine has two cores, so a test's own clock
/// also counts the time the other tests had the CPU: on CI a test whose work takes milliseconds
/// measured 20 s, and the suite's first results arrive after about as long. So:
/// - a test waiting for something to happen polls until `patience` has passed (`eventually`),
///   never for a fixed number of tries;
/// - a bound meant to show that something did *not* wait for X is `patience`, and X is `never`,
///   so the two cases are minutes apart rather than seconds;
/// - a deadline on a path that should succeed (a request timeout against a local server, a step
///   timeout) is generous too: it is there to end a test that hangs, not to measure.
public enum TestTime {
    /// How long something that should not end in a test waits: a server that never answers, a
    /// step that never finishes. Far longer than the whole suite takes.
    public static let never: Duration = .seconds(900)
    /// How long a test waits for what should happen, and the most an action that must not have
    /// waited for `never` may take, however loaded the machine.
    public static let patience: Duration = .seconds(180)
}

/// Checks `condition` every `interval` until it holds or `TestTime.patience` has passed;
/// returns whether it held. The last check comes after the deadline, so a condition that holds
/// by then is seen.
@discardableResult
public func eventually(
    within patience: Duration = TestTime.patience, every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + patience
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try await Task.sleep(for: interval)
    }
}

/// `eventually` for synchronous tests: blocks the calling thread between checks.
@discardableResult
public func eventuallyBlocking(every interval: Duration = .milliseconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + TestTime.patience
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
    }
}

/// Runs blocking work (waiting for a child process, reading a pipe, sleeping a thread) on a
/// thread of its own and awaits its result. Blocking on one of the few threads that run every
/// test's async code stalls the whole suite (and a test waiting on its own live server can
/// deadlock), so tests never block those threads.
public func onItsOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
