import Foundation
import Logging
import Synchronization

/// Every line a test's logger wrote — level, message and metadata (sorted `key=value`)
/// together — so a test can search them for a message, a key, or a secret that must not be
/// there. Shared by the test targets.
public final class LogCapture: Sendable {
    private let lines = Mutex([String]())

    public init() {}

    public var all: [String] { lines.withLock { $0 } }
    public var text: String { all.joined(separator: "\n") }

    /// A logger at trace level that writes here.
    public var logger: Logger {
        var logger = Logger(label: "sluice.test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.append("\(event.level) \(event.message) \(fields)")
        }
    }
}
