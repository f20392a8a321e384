import Synchronization

/// The connections open at once, in total and per client address, against the server's
/// limits (`ServerConfiguration.maxConnections`, `maxConnectionsPerClient`). Shared by every
/// connection's `ConnectionLimitHandler`, on whichever event loop it runs.
final class ConnectionLimits: Sendable {
    /// Why a connection was not admitted: the limit it would have passed.
    enum Refusal: String, Sendable {
        case total
        case perClient = "per_client"
    }

    let maxTotal: Int?
    let maxPerClient: Int?
    private let open = Mutex<(total: Int, byClient: [String: Int])>((0, [:]))

    init(maxTotal: Int?, maxPerClient: Int?) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    /// Counts a new connection from `client` (its address) if both limits allow it; nil when
    /// admitted, else the limit it would pass. An admitted connection must be `release`d.
    func admit(_ client: String) -> Refusal? {
        open.withLock { open in
            if let maxTotal, open.total >= maxTotal { return .total }
            let fromClient = open.byClient[client, default: 0]
            if let maxPerClient, fromClient >= maxPerClient { return .perClient }
            open.total += 1
            open.byClient[client] = fromClient + 1
            return nil
        }
    }

    /// An admitted connection from `client` closed.
    func release(_ client: String) {
        open.withLock { open in
            open.total -= 1
            let left = open.byClient[client, default: 1] - 1
            open.byClient[client] = left > 0 ? left : nil
        }
    }

    /// The connections open now (for tests and metrics).
    var total: Int { open.withLock { $0.total } }
}
