import Foundation
import PostgresNIO

/// Where a project's PostgreSQL server is and how to reach it: read from the database URL of
/// `sluice.yml` (`postgres://user@host:port/dbname?sslmode=require`), with the password from
/// the environment or a file, never from the URL, since sluice.yml is committed and shown.
///
/// The password is kept out of `description` and every error; `description` is what a person
/// is shown: `user@host:port/dbname`.
public struct PostgresSettings: Sendable, CustomStringConvertible {
    /// How the connection is encrypted, as libpq's `sslmode` names it.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS if the server offers it, plain otherwise; the certificate is not checked (libpq's default).
        case prefer
        /// TLS or no connection; the certificate is not checked.
        case require
        /// TLS or no connection, and the certificate must be valid for the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    /// The most connections this process keeps open to the server at once (postgres-nio's pool).
    public var maximumConnections: Int
    /// How long a connection attempt may take before the server counts as unreachable.
    public var connectTimeout: Duration
    /// Kept out of `description`, `dump` and errors (its own description is a placeholder).
    var password: Password?

    /// The password, with a description that never shows it.
    struct Password: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        let text: String
        var description: String { "<redacted>" }
        var debugDescription: String { "<redacted>" }
        var customMirror: Mirror { Mirror(self, children: []) }
    }

    /// The environment variables that may hold the password (the first set one is used), and
    /// the one that names a file holding it.
    public static let passwordVariables = ["SLUICE_DATABASE_PASSWORD", "PGPASSWORD"]
    public static let passwordFileVariable = "SLUICE_DATABASE_PASSWORD_FILE"

    public init(
        host: String, port: Int = 5432, user: String, database: String, sslMode: SSLMode = .prefer,
        password: String? = nil, maximumConnections: Int = 10, connectTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.sslMode = sslMode
        self.password = password.map(Password.init(text:))
        self.maximumConnections = maximumConnections
        self.connectTimeout = connectTimeout
    }

    /// Settings from a database URL (`postgres://` or `postgresql://`), the password from
    /// `environment` (`SLUICE_DATABASE_PASSWORD`, then `PGPASSWORD`) or the file
    /// `SLUICE_DATABASE_PASSWORD_FILE` names. A URL that carries a password is refused,
    /// without repeating it.
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else {
            throw PostgresError(.invalidURL("it should read postgres://user@host:port/dbname"), server: Self.redacted(text))
        }
        let host = components.host ?? ""
        let port = components.port ?? 5432
        let endpoint = "\(host):\(port)"
        if components.password != nil {
            throw PostgresError(
                .invalidURL(
                    "it carries a password, which must not be kept in sluice.yml: remove it from the URL and set "
                        + "SLUICE_DATABASE_PASSWORD or SLUICE_DATABASE_PASSWORD_FILE"),
                server: endpoint)
        }
        guard !host.isEmpty else { throw PostgresError(.invalidURL("it names no host"), server: endpoint) }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresError(.invalidURL("it names no user (postgres://user@\(endpoint)/dbname)"), server: endpoint)
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresError(.invalidURL("it names no database (postgres://\(user)@\(endpoint)/dbname)"), server: endpoint)
        }
        var sslMode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    let modes = SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw PostgresError(.invalidURL("sslmode \(item.value ?? "") is not one of \(modes)"), server: endpoint)
                }
                sslMode = mode
            default:
                throw PostgresError(.invalidURL("the parameter \(item.name) is not known (only sslmode is)"), server: endpoint)
            }
        }
        self.init(host: host, port: port, user: user, database: database, sslMode: sslMode)
        self.password = try Self.password(from: environment, server: endpoint).map(Password.init(text:))
    }

    /// The password from the first of `passwordVariables` that is set, or from the file
    /// `passwordFileVariable` names (its trailing newline dropped); nil when none is given.
    static func password(from environment: [String: String], server: String) throws -> String? {
        let file = environment[passwordFileVariable].flatMap { $0.isEmpty ? nil : $0 }
        let variable = passwordVariables.first { environment[$0].map { !$0.isEmpty } ?? false }
        if let file {
            if let variable, variable != "PGPASSWORD" {
                throw PostgresError(
                    .invalidURL("both \(variable) and \(passwordFileVariable) are set: set one of them"), server: server)
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw PostgresError(.invalidURL("the password file \(file) (\(passwordFileVariable)) can't be read"), server: server)
            }
            var text = String(decoding: data, as: UTF8.self)
            while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
            return text
        }
        return variable.flatMap { environment[$0] }
    }

    /// `user@host:port/dbname`: who connects to what, for people; never the password.
    public var description: String {
        "\(user)@\(server)/\(database)"
    }

    /// `host:port`, the place errors name.
    public var server: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// A URL as text with anything between `://` and `@` taken out, for an error about a URL
    /// that could not be parsed (and so could carry a password where it can't be found).
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else {
            return text.contains("@") ? "(a URL that could not be read)" : text
        }
        return String(text[..<scheme.upperBound]) + "…" + String(text[at...])
    }

    /// postgres-nio's client configuration for these settings.
    func clientConfiguration() -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password?.text, database: database, tls: clientTLS())
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = connectTimeout
        return configuration
    }

    /// The same for one connection (the check that the server answers before the pool starts).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS =
            switch sslMode {
            case .disable: .disable
            case .prefer: .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
            case .require, .verifyFull: .require(try NIOSSLContext(configuration: tlsConfiguration()))
            }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password?.text, database: database, tls: tls)
        configuration.options.connectTimeout = TimeAmount.nanoseconds(
            connectTimeout.components.seconds * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000)
        return configuration
    }

    private func clientTLS() -> PostgresClient.Configuration.TLS {
        switch sslMode {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration())
        case .require, .verifyFull: .require(tlsConfiguration())
        }
    }

    /// libpq's meaning of the modes: `prefer` and `require` encrypt without checking who
    /// answers; `verify-full` checks the chain against the system's roots and the host name
    /// (postgres-nio sends a host name, not an IP address, as the TLS server name).
    private func tlsConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if sslMode != .verifyFull { configuration.certificateVerification = .none }
        return configuration
    }
}
