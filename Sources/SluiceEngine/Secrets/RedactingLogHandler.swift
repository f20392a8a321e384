import Logging
import SluiceModel

/// A log handler that masks secrets (`SecretRedactor`) in the message and every metadata
/// value before handing the line to the handler it wraps. `sluice` installs it around every
/// handler it bootstraps, so no log line leaves the process unredacted.
public struct RedactingLogHandler: LogHandler {
    public var wrapped: any LogHandler
    public let redactor: SecretRedactor

    public init(wrapping handler: any LogHandler, redactor: SecretRedactor = .shared) {
        wrapped = handler
        self.redactor = redactor
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(redactor.redact(event.message.description))"
        event.metadata = event.metadata.map { $0.mapValues(redact) }
        if let error = event.error { event.error = RedactedError(description: redactor.redact(String(describing: error))) }
        // Metadata set on the logger (run id, step id) passes through the wrapped handler's
        // own storage; it is redacted too, in case a value was put there.
        var handler = wrapped
        handler.metadata = handler.metadata.mapValues(redact)
        handler.log(event: event)
    }

    private func redact(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(redactor.redact(text))
        case .stringConvertible(let convertible): .string(redactor.redact(convertible.description))
        case .array(let values): .array(values.map(redact))
        case .dictionary(let values): .dictionary(values.mapValues(redact))
        }
    }
}

/// An error whose text has been through the redactor.
struct RedactedError: Error, CustomStringConvertible {
    var description: String
}
