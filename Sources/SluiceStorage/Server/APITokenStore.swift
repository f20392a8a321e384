import Foundation

/// What an API token may do.
public enum APITokenScope: String, Sendable, Codable, CaseIterable {
    /// The API of one org: its pipelines and runs.
    case api
    /// `GET /metrics` of the whole server (no org's runs), for a Prometheus scraper.
    case metrics
}

/// An API token as stored: its public id, owner and a SHA-256 hash of the token. The token
/// itself is shown once when it is created and never stored.
public struct APITokenRecord: Sendable, Hashable {
    /// The public part of the token (`slc_<id>_…`), shown in listings and used to revoke it.
    public var id: String
    /// The org whose API the token opens; nil for a server-wide `metrics` token.
    public var org: String?
    public var scope: APITokenScope
    /// A label for people (`ci`, `airflow`).
    public var name: String
    /// SHA-256 of the whole token.
    public var hash: Data
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, org: String?, scope: APITokenScope, name: String, hash: Data, createdAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.org = org
        self.scope = scope
        self.name = name
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// Where API tokens are kept (hashed). SluiceSQLite implements it in the run store database.
public protocol APITokenStore: Sendable {
    /// Stores a new token; its id must be new.
    func insertToken(_ token: APITokenRecord) async throws

    func token(id: String) async throws -> APITokenRecord?

    /// The tokens of `org`, or with nil the server-wide (`metrics`) ones, oldest first,
    /// revoked ones included.
    func tokens(org: String?) async throws -> [APITokenRecord]

    /// Marks the token of `org` (nil: a server-wide one) with `id` revoked. False when there
    /// is no such token or it was revoked already.
    func revokeToken(id: String, org: String?, at: Date) async throws -> Bool
}
