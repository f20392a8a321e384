import Foundation
import Logging
import PostgresNIO
import SluiceModel
import SluiceStorage

/// A run workspace's own connection, outside the pool, that holds its advisory locks: shared
/// on the run's staging while the workspace is open (so retention never removes a staging in
/// use), exclusive on each target table from the first hold until the run ends. Session-level
/// locks go with the connection: a process killed, or a network lost, holds nothing, exactly
/// like the SQLite warehouse's `flock`s. The locks are 64-bit keys (`PostgresLockKey`) taken
/// with `pg_try_advisory_lock` and a short sleep between tries, so a waiting run can be
/// cancelled.
actor PostgresRunSession {
    private let connection: PostgresConnection
    private let logger: Logger
    private let settings: PostgresSettings
    /// The server process of the connection, to check in `pg_locks` that a publish still holds
    /// its tables.
    let backendPID: Int32

    private init(connection: PostgresConnection, logger: Logger, settings: PostgresSettings, backendPID: Int32) {
        self.connection = connection
        self.logger = logger
        self.settings = settings
        self.backendPID = backendPID
    }

    static func open(_ pool: PostgresPool) async throws -> PostgresRunSession {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try pool.settings.connectionConfiguration(), id: Int.random(in: 1..<Int(Int32.max)), logger: pool.logger)
        } catch {
            throw PostgresError.from(error, settings: pool.settings)
        }
        do {
            let pid = try await connection.rows("SELECT pg_backend_pid()", logger: pool.logger)[0].decode(Int32.self)
            return PostgresRunSession(connection: connection, logger: pool.logger, settings: pool.settings, backendPID: pid)
        } catch {
            try? await connection.close()
            throw PostgresError.from(error, settings: pool.settings)
        }
    }

    /// A workspace dropped without `close()` (a caller that threw past it) still lets its
    /// locks go: the connection closes, and is kept until it has.
    deinit {
        let connection = connection
        connection.close().whenComplete { _ in _ = connection }
    }

    /// Takes `key` shared, waiting while another session holds it exclusively (retention
    /// removing the staging, which takes as long as dropping it).
    func lockShared(_ key: Int64) async throws {
        try await run("SELECT pg_advisory_lock_shared(\(key))")
    }

    /// Takes `key` exclusively if no other session holds it.
    func tryLock(_ key: Int64) async throws -> Bool {
        try requireOpen()
        let (connection, logger) = (connection, logger)
        do {
            return try await connection.abandoningOnClose(settings: settings) {
                try await connection.rows("SELECT pg_try_advisory_lock(\(key))", logger: logger)[0].decode(Bool.self)
            }
        } catch {
            throw PostgresError.from(error, settings: settings)
        }
    }

    /// Lets `key` go (one level of it: a key taken twice is held until let go twice).
    func unlock(_ key: Int64) async {
        try? await run("SELECT pg_advisory_unlock(\(key))")
    }

    /// Whether the connection still answers (a server restart or a lost network ends it, and
    /// every lock with it).
    func isAlive() async -> Bool {
        (try? await run("SELECT 1")) != nil
    }

    /// Fails once the connection has closed (the server restarted or shut it, the network
    /// failed): the locks went with it. Checked before each statement, so that the run's
    /// reason says so (a statement the connection closes under is given up on by
    /// `abandoningOnClose`, with a reason of its own).
    private func requireOpen() throws {
        guard connection.isClosed else { return }
        throw PostgresError(
            .connectionLost(
                "the run's locks went with it (the server restarted or closed the connection, or the network failed); sluice run --resume continues the run"
            ),
            server: settings.server)
    }

    /// Closes the connection, which lets every lock go.
    func close() async {
        try? await connection.close()
    }

    private func run(_ query: PostgresQuery) async throws {
        try requireOpen()
        let (connection, logger) = (connection, logger)
        do {
            try await connection.abandoningOnClose(settings: settings) { try await connection.execute(query, logger: logger) }
        } catch {
            throw PostgresError.from(error, settings: settings)
        }
    }
}

/// Advisory lock keys: 64-bit FNV-1a of a kind, the warehouse's prefix, the org and a name, so
/// that every process computes the same key and runs of other warehouses on the server (or
/// other programs, which mostly use small keys) don't collide in practice. A collision only
/// makes a run wait for a table it does not need.
enum PostgresLockKey {
    static func table(prefix: String, org: String, table: String) -> Int64 {
        hash(["sluice.table", prefix, org, table.lowercased()])
    }

    static func staging(prefix: String, org: String, runID: String) -> Int64 {
        hash(["sluice.staging", prefix, org, runID])
    }

    static func hash(_ parts: [String]) -> Int64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for (index, part) in parts.enumerated() {
            if index > 0 { value = (value ^ 0) &* 0x0000_0100_0000_01B3 }
            for byte in part.utf8 { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        return Int64(bitPattern: value)
    }
}

/// A run's hold on its target tables (see `RunWorkspace.holdTargets()`): exclusive advisory
/// locks on the session's connection, taken all at once in the order of their keys, so two
/// runs never wait on each other, and kept until the run publishes, discards or closes.
actor PostgresTargetHold {
    private let session: PostgresRunSession
    /// The tables, lowercased (names compare without case, as in the SQLite warehouse).
    let tables: [String]
    /// Their keys, in the order they are taken.
    let keys: [Int64]
    private var acquiring: Task<Void, any Error>?
    private(set) var held = false

    init(session: PostgresRunSession, prefix: String, org: String, tables: [String]) {
        self.session = session
        self.tables = Array(Set(tables.map { $0.lowercased() })).sorted()
        self.keys = Array(Set(self.tables.map { PostgresLockKey.table(prefix: prefix, org: org, table: $0) })).sorted()
    }

    var isHeld: Bool { held || keys.isEmpty }

    /// Waits until every table is held by this run (at once if it is already). Steps of one
    /// run that ask together share one wait; cancelling the task stops waiting.
    func hold() async throws {
        if isHeld { return }
        let task: Task<Void, any Error>
        if let acquiring {
            task = acquiring
        } else {
            let (session, keys) = (session, keys)
            task = Task { try await Self.acquire(keys, session: session) }
            acquiring = task
        }
        do {
            try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
            held = true
        } catch {
            acquiring = nil
            throw error
        }
    }

    /// Lets every table go.
    func release() async {
        if let acquiring {
            acquiring.cancel()
            _ = try? await acquiring.value
        }
        acquiring = nil
        if held {
            for key in keys { await session.unlock(key) }
        }
        held = false
    }

    /// Takes each key in order, trying again after a pause (5 ms, doubling to 200 ms) while
    /// another run holds it; on cancellation or failure lets go of what it took.
    private static func acquire(_ keys: [Int64], session: PostgresRunSession) async throws {
        var taken: [Int64] = []
        do {
            for key in keys {
                var pause = Duration.milliseconds(5)
                while try await !session.tryLock(key) {
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .milliseconds(200))
                }
                taken.append(key)
                try Task.checkCancellation()
            }
        } catch {
            for key in taken { await session.unlock(key) }
            throw error
        }
    }
}
