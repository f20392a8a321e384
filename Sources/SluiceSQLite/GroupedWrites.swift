import GRDB
import Synchronization

/// Small writes to one SQLite database committed together: a write asked for while another
/// transaction is being written waits for it and then goes into the next one, with every other
/// write that arrived meanwhile (group commit). Each write runs in a savepoint of its own, so
/// one that fails is rolled back alone and only its caller gets the error; a caller returns
/// once its write is committed, as with a transaction of its own.
///
/// The executor records two transitions and the outputs of every step: with a hundred steps
/// running at once, that is a transaction per write without this, and a few with it.
final class GroupedWrites: Sendable {
    private typealias Write = @Sendable (Database) throws -> Void

    private struct Waiting {
        var write: Write
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var writing = false
    }

    private let database: DatabasePool
    private let state = Mutex(State())

    init(_ database: DatabasePool) {
        self.database = database
    }

    /// Runs `write` in the next transaction, and returns once it is committed.
    func write(_ write: @escaping @Sendable (Database) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let starts = state.withLock { state in
                state.waiting.append(Waiting(write: write, continuation: continuation))
                if state.writing { return false }
                state.writing = true
                return true
            }
            if starts { Task { await self.writeWhileWaiting() } }
        }
    }

    /// Commits what is waiting, a transaction at a time, until nothing is.
    private func writeWhileWaiting() async {
        while true {
            let batch = state.withLock { state in
                let batch = state.waiting
                state.waiting = []
                if batch.isEmpty { state.writing = false }
                return batch
            }
            if batch.isEmpty { return }
            let writes = batch.map(\.write)
            do {
                let failures = try await database.write { db in
                    writes.map { write -> (any Error)? in
                        do {
                            try db.inSavepoint {
                                try write(db)
                                return .commit
                            }
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                for (waiting, failure) in zip(batch, failures) {
                    if let failure {
                        waiting.continuation.resume(throwing: failure)
                    } else {
                        waiting.continuation.resume()
                    }
                }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
