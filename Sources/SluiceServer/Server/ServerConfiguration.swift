import Foundation
import SluiceEngine
import SluiceStorage

/// How `sluice serve` listens and what it accepts.
public struct ServerConfiguration: Sendable {
    /// The body limit: 1 MiB (docs/api.md#limits).
    public static let defaultMaxBodyBytes = 1 << 20

    public var host: String = "127.0.0.1"
    /// HTTPS with this certificate and key; nil for plain HTTP (loopback, or behind a proxy
    /// that terminates TLS).
    public var tls: ServerTLS?
    /// 0 picks a free port (tests); the port is reported once the server listens.
    public var port: Int = 8080
    /// Larger request bodies are refused with 413 before they are read in full.
    public var maxBodyBytes: Int = ServerConfiguration.defaultMaxBodyBytes
    /// The environment runs see as `env.*` (and where keys are looked up).
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// The keyring file, when not the default (`SLUICE_KEYRING`, else `.sluice/keyring.json`).
    public var keyringPath: String?
    /// On graceful shutdown, how long runs executing may go on before they are cancelled
    /// (`sluice serve`: none; `sluice scheduler`: 30 s by default).
    public var shutdownGrace: Duration = .zero
    /// A connection that sends nothing and is sent nothing for this long is closed, so idle
    /// or abandoned clients can't hold connections open for good (docs/api.md#limits).
    public var idleTimeout: Duration = .seconds(60)
    /// The most runs of one org that may be pending or running at once for the API and
    /// webhooks to start another (counted in the run store, so runs of other processes count
    /// too); nil for no limit. One tenant can't fill the server with runs.
    public var maxActiveRunsPerOrg: Int? = ServerConfiguration.defaultMaxActiveRunsPerOrg
    public static let defaultMaxActiveRunsPerOrg = 20
    /// How long a request's body may take to arrive in full before the request is answered
    /// 408 (docs/api.md#limits).
    public var bodyReadTimeout: Duration = .seconds(30)
    /// How long after its headers a request must have arrived in full before its connection
    /// is closed, whether or not a handler reads the body; nil: twice `bodyReadTimeout`, so a
    /// handler that reads the body answers its 408 first.
    public var requestReadTimeout: Duration?
    /// The clock webhook timestamps are checked against: the wall clock, unless a test sets one.
    public var now: @Sendable () -> Date = { Date() }

    /// The most connections open at once, from all clients together; a connection beyond it is
    /// closed as soon as it is accepted (docs/api.md#limits). nil for no limit.
    public var maxConnections: Int? = ServerConfiguration.defaultMaxConnections
    public static let defaultMaxConnections = 512

    /// `defaultMaxConnections`, or half of `openFileLimit` (the process's file descriptors)
    /// if that is fewer: connections must leave descriptors for the run store, the runs'
    /// warehouses and the next accept. A process out of them accepts no one, `/healthz`
    /// included, until idle connections time out.
    public static func defaultMaxConnections(openFileLimit: Int) -> Int {
        min(defaultMaxConnections, max(1, openFileLimit / 2))
    }
    /// The most connections open at once from one client address, so that one client can't
    /// take every connection (and starve `/healthz` for the rest). nil for no limit.
    public var maxConnectionsPerClient: Int? = ServerConfiguration.defaultMaxConnectionsPerClient
    public static let defaultMaxConnectionsPerClient = 64

    /// The most runs executing at once in this process, whoever started them (the API,
    /// webhooks, the scheduler); the rest wait, pending, and start in the order they were
    /// created as runs end.
    public var maxExecutingRuns: Int = ServerConfiguration.defaultMaxExecutingRuns
    public static let defaultMaxExecutingRuns = 4
    /// The SQLite page cache the executing runs share: each run's connection gets this divided
    /// by `maxExecutingRuns`, so memory stays bounded however many runs are started.
    public var runCacheBytes: Int = ServerConfiguration.defaultRunCacheBytes
    public static let defaultRunCacheBytes = 192 << 20

    /// The page cache of one executing run: its share of `runCacheBytes`.
    public var runCacheBytesPerRun: Int { runCacheBytes / max(1, maxExecutingRuns) }

    public init() {}
}

/// A configuration shows its settings, never `environment`: it holds every variable of the
/// process, key material (`SLUICE_KEY_PASSPHRASE`, `SLUICE_KEY_SALT`) and whatever secrets
/// runs read as `env.*`, and a value printed inside another (a service a service group logs,
/// `dump`) would print it.
extension ServerConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Each setting, as shown: the environment only by its size.
    private var shownSettings: [(label: String, value: String)] {
        func limit(_ value: Int?) -> String { value.map(String.init) ?? "none" }
        return [
            ("host", host), ("port", String(port)), ("tls", tls.map { "\($0.certificatePath), key \($0.keyPath)" } ?? "none"),
            ("maxBodyBytes", String(maxBodyBytes)), ("environment", "\(environment.count) variables, not shown"),
            ("keyringPath", keyringPath ?? "default"), ("shutdownGrace", "\(shutdownGrace)"), ("idleTimeout", "\(idleTimeout)"),
            ("maxActiveRunsPerOrg", limit(maxActiveRunsPerOrg)), ("maxConnections", limit(maxConnections)),
            ("maxConnectionsPerClient", limit(maxConnectionsPerClient)), ("maxExecutingRuns", String(maxExecutingRuns)),
            ("runCacheBytes", String(runCacheBytes)),
        ]
    }

    public var description: String {
        "ServerConfiguration(\(shownSettings.map { "\($0.label): \($0.value)" }.joined(separator: ", ")))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: shownSettings.map { (label: Optional($0.label), value: $0.value as Any) }, displayStyle: .struct)
    }
}
