import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Marks runs whose process stopped heartbeating abandoned, every half lease, for a
/// long-running process without a scheduler (`sluice serve`): a `sluice run` killed while the
/// server is up is noticed without waiting for the next command. The scheduler runs the same
/// check as part of its looks instead.
struct RunWatchdog: Service, CustomStringConvertible {
    let runner: Runner
    let lease: Duration
    let logger: Logger

    /// What a service group logs the service as (its default would be every stored property).
    var description: String { "RunWatchdog(lease: \(DurationText.format(lease)))" }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await runner.recoverDeadRuns(lease: lease, logger: logger)
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("the watchdog could not look for abandoned runs: \(SecretRedactor.shared.redact("\(error)"))")
                }
                try await Task.sleep(for: lease / 2)
            }
        }
    }
}
