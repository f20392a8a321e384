import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Creating, listing, revoking and checking API tokens (`sluice tokens`, the server's token
/// check). Tokens are stored hashed; an org token opens one org's API, a metrics token only
/// `/metrics`.
public struct APITokens: Sendable {
    public let store: any APITokenStore
    public var now: @Sendable () -> Date

    public init(store: any APITokenStore, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.now = now
    }

    /// Why a token request is refused, for the command line.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Creates a token for `org` (an `api` token) or, with org nil, a server-wide `metrics`
    /// token. Returns the token, whose text is shown once and never again.
    public func create(org: String?, name: String) async throws -> (token: APIToken, record: APITokenRecord) {
        if let org, let problem = Identifier.problem(with: org) { throw Refusal(description: "org: \(problem)") }
        guard (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            })
        else {
            throw Refusal(description: "a token name is 1 to 64 letters, digits, '-', '_' or '.', not \(shown(name))")
        }
        let token = APIToken.generate()
        let record = APITokenRecord(
            id: token.id, org: org, scope: org == nil ? .metrics : .api, name: name, hash: token.hash,
            createdAt: now())
        try await store.insertToken(record)
        return (token, record)
    }

    /// The record of a valid, unrevoked token; nil for anything else (malformed, unknown,
    /// wrong secret, revoked), so a caller can't tell which.
    public func authenticate(_ text: String) async throws -> APITokenRecord? {
        guard let token = APIToken(parsing: text), let record = try await store.token(id: token.id) else { return nil }
        guard APIToken.constantTimeEqual(token.hash, record.hash), record.revokedAt == nil else { return nil }
        return record
    }
}
