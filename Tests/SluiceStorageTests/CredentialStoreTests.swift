import Foundation
import SluiceSecrets
import SluiceStorage
import SluiceTestSupport
import Testing

/// What every credential store does, whichever backend keeps it. The blobs here are bytes,
/// not sealed values: the store never opens them.
struct CredentialStoreTests {
    func credential(_ name: String, org: String = "acme", keyVersion: Int = 1) -> StoredCredential {
        StoredCredential(
            org: org, name: name, provider: "generic", generation: 1, sealed: Data("sealed-\(name)".utf8), keyVersion: keyVersion,
            expiresAt: Date(timeIntervalSince1970: 1_800_000_000.5), metadata: #"{"note":"\#(name)"}"#,
            createdAt: Date(timeIntervalSince1970: 1_790_000_000.25), updatedAt: Date(timeIntervalSince1970: 1_790_000_000.25))
    }

    func audit(_ name: String, _ action: CredentialAuditRecord.Action, org: String = "acme", seconds: Double = 0) -> CredentialAuditRecord {
        CredentialAuditRecord(
            org: org, credential: name, action: action, outcome: .ok, detail: "\(action.rawValue) \(name)",
            at: Date(timeIntervalSince1970: 1_790_000_000 + seconds))
    }

    func code(_ body: () async throws -> Void) async -> SecretsError.Code? {
        do {
            try await body()
            return nil
        } catch let error as SecretsError {
            return error.code
        } catch {
            Issue.record("not a SecretsError: \(error)")
            return nil
        }
    }

    @Test(arguments: Backend.all)
    func theOrgLimitHoldsWhenTenInsertAtOnce(_ backend: Backend) async throws {
        try await backend.withStores { stores in
            let store = stores.credentials
            let outcomes = await withTaskGroup(of: SecretsError.Code?.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        await code { try await store.insertCredential(credential("key\(index)"), limit: 3, audit: audit("key\(index)", .put)) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == nil }.count == 3)
            #expect(outcomes.filter { $0 == .credentialLimit }.count == 7)
            #expect(try await store.credentials(org: "acme").count == 3)
            #expect(try await store.auditRecords(org: "acme", credential: nil, limit: 100).count == 3, "a refused insert keeps no audit of its own")
            try await store.insertCredential(credential("key0", org: "globex"), limit: 3, audit: audit("key0", .put, org: "globex"))
        }
    }

    @Test(arguments: Backend.all)
    func updatesAndDeletesNameTheVersionTheyRead(_ backend: Backend) async throws {
        try await backend.withStores { stores in
            let store = stores.credentials
            let stored = credential("openai")
            try await store.insertCredential(stored, limit: 10, audit: audit("openai", .put))
            #expect(await code { try await store.insertCredential(stored, limit: 10, audit: audit("openai", .put)) } == .credentialExists)
            #expect(try await store.credential(org: "acme", name: "openai") == stored)

            var rotated = stored
            rotated.generation = 2
            rotated.sealed = Data("sealed-2".utf8)
            rotated.keyVersion = 2
            rotated.previousSealed = stored.sealed
            rotated.previousKeyVersion = 1
            rotated.previousValidUntil = Date(timeIntervalSince1970: 1_790_086_400.75)
            rotated.updatedAt = Date(timeIntervalSince1970: 1_790_000_100)
            let updated = try await store.updateCredential(rotated, expectedVersion: 1, audit: audit("openai", .rotate, seconds: 1))
            var expected = rotated
            expected.version = 2
            #expect(updated == expected)
            #expect(try await store.credential(org: "acme", name: "openai") == expected)
            #expect(await code { _ = try await store.updateCredential(rotated, expectedVersion: 1, audit: audit("openai", .rotate)) } == .conflict)
            #expect(
                await code { try await store.deleteCredential(org: "acme", name: "openai", expectedVersion: 1, audit: audit("openai", .delete)) }
                    == .conflict)
            #expect(
                await code { _ = try await store.updateCredential(credential("none"), expectedVersion: 1, audit: audit("none", .rotate)) }
                    == .credentialNotFound)

            try await store.insertCredential(credential("gcp", keyVersion: 2), limit: 10, audit: audit("gcp", .put, seconds: 2))
            try await store.insertCredential(
                credential("anthropic", org: "globex", keyVersion: 1), limit: 10, audit: audit("anthropic", .put, org: "globex"))
            #expect(try await store.credentials(org: "acme").map(\.name) == ["gcp", "openai"])
            #expect(try await store.credentials(notWrappedBy: 2).map { "\($0.org)/\($0.name)" } == ["acme/openai", "globex/anthropic"])
            #expect(try await store.blobsPerKeyVersion() == [1: 2, 2: 2])

            try await store.deleteCredential(org: "acme", name: "openai", expectedVersion: nil, audit: audit("openai", .delete, seconds: 3))
            #expect(
                await code { try await store.deleteCredential(org: "acme", name: "openai", expectedVersion: nil, audit: audit("openai", .delete)) }
                    == .credentialNotFound)
            try await store.appendAudit(audit("gcp", .decrypt, seconds: 4))
            #expect(
                try await store.auditRecords(org: "acme", credential: nil, limit: 3).map(\.detail) == ["decrypt gcp", "delete openai", "put gcp"])
            #expect(try await store.auditRecords(org: "acme", credential: "openai", limit: 10).map(\.action) == [.delete, .rotate, .put])
        }
    }
}
