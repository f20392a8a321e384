import Foundation
import PostgresNIO

/// A PostgreSQL failure for a person: the server (`host:port`) and what went wrong there, in
/// words that say what to do. Made from postgres-nio's errors (whose own description hides
/// everything, for fear of leaking values) by `init(_:server:)`; never holds the password.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Problem: Sendable, Equatable {
        /// The database URL can't be used: why.
        case invalidURL(String)
        /// A schema name that is not an `Identifier`: why.
        case invalidName(String)
        /// Nothing answered at host:port (refused, timed out, no such host): the network's words.
        case unreachable(String)
        /// The server refused the user's password (or has none for it, or its pg_hba.conf refuses the user).
        case authenticationFailed(user: String)
        /// The server answered, but the database does not exist.
        case missingDatabase(String)
        /// The user may not do this (SQLSTATE 42501): the server's words.
        case permissionDenied(String)
        /// TLS could not be set up as sslmode asks: why.
        case tls(String)
        /// The connection broke or the server shut down while in use.
        case connectionLost(String)
        /// Any other error the server reported: its SQLSTATE and message.
        case server(sqlState: String, message: String)
    }

    public var problem: Problem
    /// `host:port`.
    public var server: String

    public init(_ problem: Problem, server: String) {
        self.problem = problem
        self.server = server
    }

    public var description: String {
        switch problem {
        case .invalidURL(let why):
            "the PostgreSQL database URL for \(server) can't be used: \(why)"
        case .invalidName(let why):
            "the schema for PostgreSQL at \(server) can't be used: \(why)"
        case .unreachable(let why):
            "PostgreSQL at \(server) can't be reached: \(why)"
        case .authenticationFailed(let user):
            "PostgreSQL at \(server) refused the password of the user \(user) (set SLUICE_DATABASE_PASSWORD or "
                + "SLUICE_DATABASE_PASSWORD_FILE, and check the server's pg_hba.conf)"
        case .missingDatabase(let database):
            "PostgreSQL at \(server) has no database \(database)"
        case .permissionDenied(let message):
            "PostgreSQL at \(server) refused: \(message) (the user lacks a permission)"
        case .tls(let why):
            "TLS with PostgreSQL at \(server) failed: \(why) (sslmode in the database URL)"
        case .connectionLost(let why):
            "the connection to PostgreSQL at \(server) was lost: \(why)"
        case .server(let sqlState, let message):
            "PostgreSQL at \(server) reported \(sqlState): \(message)"
        }
    }

    /// The SQLSTATE of a server error, if `error` is one (e.g. `40001`, a serialization failure).
    static func sqlState(of error: any Error) -> String? {
        if let error = error as? PostgresError, case .server(let state, _) = error.problem { return state }
        return (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// `error` as a `PostgresError` naming `settings`' server, if it came from postgres-nio or
    /// the network; other errors (cancellation, decoding our own JSON) are returned as they are.
    static func from(_ error: any Error, settings: PostgresSettings) -> any Error {
        if error is PostgresError || error is CancellationError { return error }
        let server = settings.server
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let state = info[.sqlState] ?? "?????"
                let message = info[.message] ?? "no message"
                switch state {
                case "28P01", "28000": return PostgresError(.authenticationFailed(user: settings.user), server: server)
                case "3D000": return PostgresError(.missingDatabase(settings.database), server: server)
                case "42501": return PostgresError(.permissionDenied(message), server: server)
                case "57P01", "57P02", "57P03":
                    return PostgresError(.connectionLost("the server is shutting down or starting (\(message))"), server: server)
                default: return PostgresError(.server(sqlState: state, message: message), server: server)
                }
            }
            switch error.code {
            case .connectionError:
                if let underlying = error.underlying as? NIOSSLError {
                    return PostgresError(.tls(describeTLS(underlying)), server: server)
                }
                return PostgresError(.unreachable(describe(error.underlying)), server: server)
            case .sslUnsupported:
                return PostgresError(.tls("the server does not offer TLS, and sslmode requires it"), server: server)
            case .failedToAddSSLHandler:
                return PostgresError(.tls(error.underlying.map(describeTLS) ?? "TLS could not be set up"), server: server)
            case .authMechanismRequiresPassword:
                return PostgresError(.authenticationFailed(user: settings.user), server: server)
            case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
                return PostgresError(.connectionLost(describe(error.underlying)), server: server)
            case .poolClosed:
                return PostgresError(.connectionLost("the connection pool is closed"), server: server)
            case .queryCancelled:
                return CancellationError()
            default:
                return PostgresError(.connectionLost("\(error.code)"), server: server)
            }
        }
        if let error = error as? NIOSSLError {
            return PostgresError(.tls(describeTLS(error)), server: server)
        }
        if error is IOError || error is NIOConnectionError || error is ChannelError {
            return PostgresError(.unreachable(describe(error)), server: server)
        }
        // The pool's own errors (its module is underscored, so matched by name): no connection
        // could be made for as long as the connect timeout.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return PostgresError(.unreachable("no connection could be made (\(error))"), server: server)
        }
        return error
    }

    /// TLS's words for a failed handshake: a certificate that did not verify said plainly.
    private static func describeTLS(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate could not be verified (no trusted root signed it, or it is not for this host)"
        }
        return text
    }

    /// The network's words for an underlying error, without postgres-nio's generic wrapper.
    private static func describe(_ error: (any Error)?) -> String {
        guard let error else { return "the connection failed" }
        if let error = error as? NIOConnectionError {
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "the host name could not be resolved (\(dns))" }
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "the connection failed"
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused (is the server running, and listening on that port?)"
            case ETIMEDOUT: return "connection timed out"
            case EHOSTUNREACH, ENETUNREACH: return "no route to the host"
            default: return String(cString: strerror(error.errnoCode))
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return "connection timed out"
        }
        return "\(error)"
    }
}

extension PostgresError {
    /// Two sessions changed the same shared catalog row at once (a role created or granted by
    /// two databases' set-ups together): `duplicate_object`, `unique_violation`, or the
    /// internal "tuple concurrently updated". Trying again finds the other's change made.
    var isCatalogRace: Bool {
        guard case .server(let sqlState, let message) = problem else { return false }
        return sqlState == "42710" || sqlState == "23505" || (sqlState == "XX000" && message.contains("concurrently"))
    }
}
