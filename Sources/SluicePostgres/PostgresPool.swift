import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The process's connections to one PostgreSQL server: postgres-nio's `PostgresClient` (its
/// pool, at most `settings.maximumConnections` connections) running in a task of its own from
/// `open` to `close`. Every store on the server shares one. Errors come out as
/// `PostgresError`, naming the server and never the password.
public final class PostgresPool: Sendable {
    public let settings: PostgresSettings
    let client: PostgresClient
    let logger: Logger
    private let running: Task<Void, Never>

    private init(settings: PostgresSettings, logger: Logger, started: AsyncStream<Void>.Continuation) {
        self.settings = settings
        self.logger = logger
        client = PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: logger)
        let client = client
        running = Task {
            started.finish()
            await client.run()
        }
    }

    /// Checks that the server answers to these settings (one connection, made and closed, so a
    /// wrong password or a closed port is reported now, clearly, instead of by the pool's
    /// retries later), then starts the pool.
    public static func open(_ settings: PostgresSettings, logger: Logger = Logger(label: "sluice.postgres")) async throws -> PostgresPool {
        try await check(settings, logger: logger)
        // The pool leases connections only once its task runs (and warns about a lease asked
        // for before), so `open` returns when the task has started.
        let (started, signal) = AsyncStream<Void>.makeStream()
        let pool = PostgresPool(settings: settings, logger: logger, started: signal)
        for await _ in started {}
        await Task.yield()
        return pool
    }

    /// Makes one connection, runs `SELECT 1` on it and closes it; throws what went wrong as a
    /// `PostgresError`.
    static func check(_ settings: PostgresSettings, logger: Logger) async throws {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: try settings.connectionConfiguration(), id: 0, logger: logger)
            do {
                try await connection.abandoningOnClose(settings: settings) { try await connection.execute("SELECT 1", logger: logger) }
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            throw PostgresError.from(error, settings: settings)
        }
    }

    /// Closes the connections and ends the pool's task; queries after this fail.
    public func close() async {
        running.cancel()
        await running.value
    }

    /// Runs `body` on a connection of the pool, mapping errors to `PostgresError`.
    ///
    /// While the server is down, postgres-nio's pool keeps a lease request waiting and
    /// retrying for a minute (its circuit breaker) before it fails. So a request that has waited
    /// `connectTimeout` checks the server with a connection of its own: if that fails, so does
    /// the request, with that error; if it works, the pool is only busy and the request waits on
    /// (checking again every `connectTimeout`).
    func withConnection<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        let (client, settings, logger) = (client, settings, logger)
        let leased = Flag()
        do {
            return try await withThrowingTaskGroup(of: Result?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        leased.set()
                        return try await connection.abandoningOnClose(settings: settings) { try await body(connection) }
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: settings.connectTimeout)
                        if leased.isSet { return nil }
                        try await Self.check(settings, logger: logger)
                    }
                }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                preconditionFailure("the query's task ended without a result or an error")
            }
        } catch {
            throw PostgresError.from(error, settings: settings)
        }
    }

    /// Runs `body` in a transaction (READ COMMITTED, PostgreSQL's default): committed if it
    /// returns, rolled back if it throws. A connection whose rollback fails is closed, so the
    /// pool never hands out one left inside a transaction.
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        let logger = logger
        return try await withConnection { connection in
            try await connection.execute("BEGIN", logger: logger)
            let result: Result
            do {
                result = try await body(connection)
            } catch {
                do {
                    try await connection.execute("ROLLBACK", logger: logger)
                } catch {
                    try? await connection.close()
                }
                throw error
            }
            try await connection.execute("COMMIT", logger: logger)
            return result
        }
    }
}

extension PostgresConnection {
    /// Runs `body`, statements on this connection, and gives up on it once the connection has
    /// closed under it (the server restarted or shut the session down, the network failed).
    ///
    /// postgres-nio 1.33 never answers a statement written to a connection that has just
    /// closed: the write fails with nobody to tell, and the statement waits forever (a COPY
    /// waiting for the socket to drain, likewise). A closed connection is noticed within
    /// `check`; a statement under way then fails by itself, so `body` has `grace` to end with
    /// its own error before it is abandoned (cancelled, and left to its wait) and
    /// `connectionLost` thrown instead. Cancelling the caller cancels `body`.
    func abandoningOnClose<Result: Sendable>(
        settings: PostgresSettings, check: Duration = .milliseconds(100), grace: Duration = .seconds(1),
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let race = ClosureRace<Result>()
        let lost = PostgresError(
            .connectionLost("the server closed the connection while a statement was under way (it restarted or shut down, or the network failed)"),
            server: settings.server)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation, body: body) { [self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: check)
                        if self.isClosed {
                            try? await Task.sleep(for: grace)
                            return lost
                        }
                    }
                    return nil
                }
            }
        } onCancel: {
            race.cancel()
        }
    }
}

/// `abandoningOnClose`'s two tasks, the work and its watch, and the caller waiting for the
/// first of them to end it: the work's outcome, or the watch's error.
private final class ClosureRace<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var ended = false
        var cancelled = false
        var work: Task<Void, Never>?
        var watch: Task<Void, Never>?
    }
    private let state = Mutex(State())

    func start(
        _ continuation: CheckedContinuation<Result, any Error>, body: @escaping @Sendable () async throws -> Result,
        watch: @escaping @Sendable () async -> (any Error)?
    ) {
        state.withLock { $0.continuation = continuation }
        let work = Task {
            do {
                self.end(.success(try await body()))
            } catch {
                self.end(.failure(error))
            }
        }
        let watching = Task {
            guard let error = await watch() else { return }
            self.end(.failure(error))
            self.state.withLock { $0.work }?.cancel()
        }
        let (ended, cancelled) = state.withLock { state in
            state.work = work
            state.watch = watching
            return (state.ended, state.cancelled)
        }
        if ended { watching.cancel() }
        if cancelled { work.cancel() }
    }

    /// The caller was cancelled: so is the work (which then ends the race as it ends).
    func cancel() {
        state.withLock { state in
            state.cancelled = true
            return state.work
        }?.cancel()
    }

    /// Ends the race with `outcome`, unless it has ended already.
    private func end(_ outcome: Swift.Result<Result, any Error>) {
        let (continuation, watch) = state.withLock { state in
            defer {
                state.continuation = nil
                state.ended = true
            }
            return (state.continuation, state.watch)
        }
        guard let continuation else { return }
        watch?.cancel()
        continuation.resume(with: outcome)
    }
}

/// A flag that one task sets and another reads.
private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

extension PostgresConnection {
    /// Runs a statement and reads its whole result, so an error raised while it executes is
    /// thrown here and not lost with an unread result (postgres-nio reports those only as
    /// rows are read).
    func execute(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }

    /// Runs a query and returns all its rows.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }
}
