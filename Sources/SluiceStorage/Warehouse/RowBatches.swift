import Foundation

/// Batches of rows handed from the task that reads and types them (the sender) to the task
/// that writes them into the warehouse (the receiver, `RunWorkspace.insert(into:columns:
/// batches:)`), in order, with at most `capacity` waiting: a sender that gets ahead of the
/// warehouse waits rather than holding the whole input in memory. The receiver ends by reading
/// past `finish()`. Either side may stop the other early: the sender with `fail(_:)`, the
/// receiver with `stop()`.
public actor RowBatches {
    private let capacity: Int
    private var waiting: [[[WarehouseValue]]] = []
    private var finished = false
    private var failure: (any Error)?
    private var stopped = false
    private var receiver: CheckedContinuation<Void, Never>?
    private var sender: CheckedContinuation<Void, Never>?

    public init(capacity: Int = 2) {
        self.capacity = max(1, capacity)
    }

    /// Hands over the next batch, waiting while `capacity` batches wait already. Throws
    /// `Stopped` once the receiver stopped (it failed, or was cancelled): its own error is the
    /// one to report.
    public func send(_ rows: [[WarehouseValue]]) async throws {
        while waiting.count >= capacity && !stopped {
            await withCheckedContinuation { sender = $0 }
        }
        if stopped { throw Stopped() }
        waiting.append(rows)
        wakeReceiver()
    }

    /// No more batches: the receiver ends once it took those waiting.
    public func finish() {
        finished = true
        wakeReceiver()
    }

    /// The sender failed: the receiver gets `error` from `next()` instead of more batches.
    public func fail(_ error: any Error) {
        failure = error
        wakeReceiver()
    }

    /// The receiver takes nothing more: a sender waiting for room, or sending later, is told.
    public func stop() {
        stopped = true
        wakeSender()
    }

    /// The next batch; nil once finished and every batch was taken. Throws the sender's error.
    public func next() async throws -> [[WarehouseValue]]? {
        while true {
            switch try nextIfReady() {
            case .rows(let rows): return rows
            case .finished: return nil
            case .none: await withCheckedContinuation { receiver = $0 }
            }
        }
    }

    /// What `nextIfReady()` finds.
    public enum Ready: Sendable {
        case rows([[WarehouseValue]])
        /// Nothing waiting yet: the sender is still reading.
        case none
        case finished
    }

    /// The next batch if one is waiting, without waiting for one. Throws the sender's error.
    public func nextIfReady() throws -> Ready {
        if let failure { throw failure }
        if !waiting.isEmpty {
            let rows = waiting.removeFirst()
            wakeSender()
            return .rows(rows)
        }
        return finished ? .finished : .none
    }

    private func wakeReceiver() {
        receiver?.resume()
        receiver = nil
    }

    private func wakeSender() {
        sender?.resume()
        sender = nil
    }

    /// What `send` throws once the receiver stopped.
    public struct Stopped: Error {}
}
