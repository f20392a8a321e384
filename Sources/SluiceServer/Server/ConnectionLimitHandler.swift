import NIOCore

/// The first handler of every connection: admits it against the server's `ConnectionLimits`
/// when it becomes active, and otherwise closes it at once, before a byte is read or a TLS
/// handshake begins. A connection over a limit is not held open waiting for a request that an
/// idle or half-open client never sends: that is what would let such clients take every
/// connection, `/healthz` included.
final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let limits: ConnectionLimits
    private let onRefusal: @Sendable (ConnectionLimits.Refusal) -> Void
    /// Whether the connection was looked at, and the client address it was counted under
    /// if it was admitted.
    private var checked = false
    private var admitted: String?

    init(limits: ConnectionLimits, onRefusal: @escaping @Sendable (ConnectionLimits.Refusal) -> Void) {
        self.limits = limits
        self.onRefusal = onRefusal
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a connection that is active already, it sees no channelActive.
        if context.channel.isActive { _ = admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if admit(context) { context.fireChannelActive() }
    }

    /// Counts the connection, or closes it; false when it was closed.
    private func admit(_ context: ChannelHandlerContext) -> Bool {
        guard !checked else { return admitted != nil }
        checked = true
        // Connections over a Unix socket have no address: they count as one client.
        let client = context.channel.remoteAddress?.ipAddress ?? "local"
        if let refusal = limits.admit(client) {
            onRefusal(refusal)
            context.close(promise: nil)
            return false
        }
        admitted = client
        return true
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func release() {
        if let client = admitted {
            limits.release(client)
            admitted = nil
        }
    }
}
