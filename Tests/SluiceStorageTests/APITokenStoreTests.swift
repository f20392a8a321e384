import Foundation
import SluiceStorage
import SluiceTestSupport
import Testing

/// What every API token store does, whichever backend keeps it.
struct APITokenStoreTests {
    func token(_ id: String, org: String?, at seconds: Double) -> APITokenRecord {
        APITokenRecord(
            id: id, org: org, scope: org == nil ? .metrics : .api, name: "ci-\(id)", hash: Data((0..<32).map { UInt8($0) ^ UInt8(id.count) }),
            createdAt: Date(timeIntervalSince1970: 1_790_000_000 + seconds))
    }

    @Test(arguments: Backend.all)
    func tokensAreListedPerOrgOldestFirstAndRevokedOnce(_ backend: Backend) async throws {
        try await backend.withStores { stores in
            let tokens = stores.tokens
            let b = token("b2", org: "acme", at: 2)
            let a = token("a1", org: "acme", at: 1)
            let other = token("c3", org: "globex", at: 3)
            let metrics = token("m4", org: nil, at: 4)
            for record in [b, a, other, metrics] { try await tokens.insertToken(record) }
            await #expect(throws: (any Error).self, "an id is used once") { try await tokens.insertToken(a) }

            #expect(try await tokens.token(id: "a1") == a)
            #expect(try await tokens.token(id: "zz") == nil)
            #expect(try await tokens.tokens(org: "acme").map(\.id) == ["a1", "b2"])
            #expect(try await tokens.tokens(org: nil) == [metrics])

            let at = Date(timeIntervalSince1970: 1_790_000_100.25)
            #expect(try await tokens.revokeToken(id: "a1", org: "globex", at: at) == false, "another org's token")
            #expect(try await tokens.revokeToken(id: "a1", org: "acme", at: at))
            #expect(try await tokens.revokeToken(id: "a1", org: "acme", at: at) == false, "revoked already")
            #expect(try await tokens.revokeToken(id: "m4", org: "acme", at: at) == false)
            #expect(try await tokens.revokeToken(id: "m4", org: nil, at: at))
            #expect(try await tokens.token(id: "a1")?.revokedAt == at)
            #expect(try await tokens.tokens(org: "acme").map(\.id) == ["a1", "b2"], "revoked ones are listed")
        }
    }
}
