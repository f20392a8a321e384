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
                try await connection.execute("SELECT 1", logger: logger)
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
                        return try await body(connection)
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
