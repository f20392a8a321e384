import HummingbirdCore
import Logging
import NIOCore

/// A server child channel (HTTP, or TLS around HTTP) with a `ConnectionLimitHandler` in front
/// of everything else, so connections over the limits are closed before any of the base
/// channel's work (a TLS handshake, HTTP parsing) is done for them.
struct ConnectionLimitChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let limits: ConnectionLimits
    let onRefusal: @Sendable (ConnectionLimits.Refusal) -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(limits: limits, onRefusal: onRefusal))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
