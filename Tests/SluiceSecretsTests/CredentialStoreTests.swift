import Foundation
import GRDB
import Logging
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceSecrets

/// Credentials on a real SQLite run store: storing, rotating, opening with audit, limits and
/// conflicts raced on separate connections.
struct CredentialStoreTests {
    let folder: URL
    let path: String
    let clock = TestClock()
    let logs = LogCapture()
    let keys: Keyring

    init() throws {
        folder = try temporaryFolder()
        path = folder.appendingPathComponent(".sluice/runs.sqlite").path
        keys = Keyring.generate(at: clock.now, origin: .file("keyring.json"))
    }

    func credentials(_ store: (any CredentialStore)? = nil, keys: Keyring? = nil, limit: Int = 100) throws -> Credentials {
        Credentials(
            store: try store ?? SQLiteCredentialStore(path: path), keys: keys ?? self.keys, limitPerOrg: limit,
            logger: logs.logger,
            auditRetry: RetryPolicy(attempts: 3, backoff: .fixed, initialDelay: .milliseconds(1), maxDelay: .milliseconds(1), jitter: false),
            now: clock.function)
    }

    /// The code of the error `body` throws; nil when it succeeds.
    func code(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as SecretsError {
            return error.code.rawValue
        } catch {
            return "\(error)"
        }
    }

    @Test func aStoredCredentialOpensAndEveryStepIsAudited() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        let stored = try await credentials.put(
            org: "acme", name: "openai/admin_key", value: SecretBytes(utf8: openAIKey), provider: "openai",
            expiresAt: nil, metadata: #"{"owner": "finops"}"#)
        #expect(stored.generation == 1 && stored.version == 1 && stored.keyVersion == 1)
        #expect(stored.metadata == #"{"owner":"finops"}"#)

        let opened = try await credentials.open(org: "acme", name: "openai/admin_key", for: .init(runID: "run-1", stepID: "decrypt_key"))
        #expect(opened.value.isEqual(to: SecretBytes(utf8: openAIKey)))
        #expect(opened.provider == .openai)
        opened.value.wipe()

        #expect(await code { _ = try await credentials.open(org: "acme", name: "openai/missing", for: .commandLine) } == "credential_not_found")
        #expect(await code { _ = try await credentials.open(org: "globex", name: "openai/admin_key", for: .commandLine) } == "credential_not_found")

        let audit = try await credentials.store.auditRecords(org: "acme", credential: nil, limit: 10)
        #expect(audit.map(\.action) == [.decrypt, .decrypt, .put])
        #expect(audit.map(\.outcome) == [.refused, .ok, .ok])
        #expect(audit[1].runID == "run-1" && audit[1].stepID == "decrypt_key")
        #expect(audit[0].detail.hasPrefix("credential_not_found"))
    }

    @Test func badInputIsRefusedBeforeAnythingIsStored() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        func put(_ name: String, _ value: String, provider: String = "generic", metadata: String? = nil, expiresAt: Date? = nil) async -> String? {
            await code {
                try await credentials.put(
                    org: "acme", name: name, value: SecretBytes(utf8: value), provider: provider,
                    expiresAt: expiresAt, metadata: metadata)
            }
        }
        #expect(await put("a", "  \n ") == "value_empty")
        #expect(await put("b", "not-a-key", provider: "openai") == "value_format")
        #expect(await put("c", openAIKey, provider: "anthropic") == "value_format")
        #expect(await put("d", "{}", provider: "gcp") == "value_format")
        #expect(await put("e", "v", provider: "vault") == "provider_unknown")
        #expect(await put("f", openAIKey, provider: "openai", metadata: #"{"colour": "red"}"#) == "metadata_invalid")
        #expect(await put("g", "v", metadata: #"{"note": "the key is \#(anthropicKey)"}"#) == "metadata_invalid")
        #expect(await put("h", "v", expiresAt: clock.now.addingTimeInterval(-1)) == "time_invalid")
        #expect(await put("bad name", "v") == "name_invalid")
        #expect(await put("../x", "v") == "name_invalid")
        #expect(
            await code {
                try await credentials.put(org: "1acme", name: "x", value: SecretBytes(utf8: "v"), provider: "generic", expiresAt: nil, metadata: nil)
            } == "name_invalid")
        #expect(try await credentials.list(org: "acme").isEmpty)
        // The refusal of an unknown provider is logged.
        #expect(logs.all.contains { $0.contains("unknown provider 'vault'") })
        let audit = try await credentials.store.auditRecords(org: "acme", credential: nil, limit: 20)
        #expect(audit.count == 8)
        #expect(audit.allSatisfy { $0.outcome == .refused && $0.action == .put })
        #expect(!audit.contains { $0.detail.contains(anthropicKey) || $0.detail.contains(openAIKey) })

        try await credentials.put(org: "acme", name: "x", value: SecretBytes(utf8: "v1"), provider: "generic", expiresAt: nil, metadata: nil)
        #expect(await put("x", "v2") == "credential_exists")
    }

    @Test func anExpiredCredentialIsRefused() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        try await credentials.put(
            org: "acme", name: "temp", value: SecretBytes(utf8: "temporary-token"), provider: "generic",
            expiresAt: clock.now.addingTimeInterval(3600), metadata: nil)
        clock.advance(by: 3599)
        _ = try await credentials.open(org: "acme", name: "temp", for: .commandLine)
        clock.advance(by: 1)
        do {
            _ = try await credentials.open(org: "acme", name: "temp", for: .commandLine)
            Issue.record("an expired credential opened")
        } catch let error as SecretsError {
            #expect(error.code == .credentialExpired)
            #expect(error.message.contains("expired at"))
        }
    }

    @Test func rotationKeepsTheOldValueForItsGracePeriod() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        try await credentials.put(
            org: "acme", name: "anthropic/key", value: SecretBytes(utf8: anthropicKey), provider: "anthropic",
            expiresAt: nil, metadata: nil)
        let newKey = "sk-ant-api03-Rotated0nlyForTests_abcdefghijklmnopqr"
        #expect(
            await code { try await credentials.rotate(org: "acme", name: "anthropic/key", value: SecretBytes(utf8: openAIKey)) } == "value_format")
        #expect(await code { try await credentials.rotate(org: "acme", name: "nope", value: SecretBytes(utf8: newKey)) } == "credential_not_found")
        let rotated = try await credentials.rotate(org: "acme", name: "anthropic/key", value: SecretBytes(utf8: newKey), grace: .seconds(3600))
        #expect(rotated.generation == 2 && rotated.version == 2)
        #expect(try await credentials.open(org: "acme", name: "anthropic/key", for: .commandLine).value.isEqual(to: SecretBytes(utf8: newKey)))
        clock.advance(by: 3599)
        let previous = try await credentials.open(org: "acme", name: "anthropic/key", for: .commandLine, previous: true)
        #expect(previous.value.isEqual(to: SecretBytes(utf8: anthropicKey)))
        #expect(previous.generation == 1 && previous.isPrevious)
        clock.advance(by: 1)
        #expect(
            await code { _ = try await credentials.open(org: "acme", name: "anthropic/key", for: .commandLine, previous: true) }
                == "credential_expired")
        #expect(
            await code { try await credentials.rotate(org: "acme", name: "anthropic/key", value: SecretBytes(utf8: newKey), expectedVersion: 1) }
                == "conflict")

        try await credentials.delete(org: "acme", name: "anthropic/key")
        #expect(await code { try await credentials.delete(org: "acme", name: "anthropic/key") } == "credential_not_found")
    }

    /// The store's copy moved to another org or name, as someone with write access to the
    /// database might try, is refused with the error that says so.
    @Test func aBlobCopiedToAnotherOrgOrNameInTheDatabaseIsRefused() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        try await credentials.put(
            org: "acme", name: "openai/key", value: SecretBytes(utf8: openAIKey), provider: "openai", expiresAt: nil, metadata: nil)
        try await credentials.put(
            org: "globex", name: "openai/key", value: SecretBytes(utf8: "sk-globexglobexglobexglobex01"), provider: "openai",
            expiresAt: nil, metadata: nil)
        try await credentials.put(
            org: "acme", name: "openai/other", value: SecretBytes(utf8: "sk-otherotherotherotherother1"), provider: "openai",
            expiresAt: nil, metadata: nil)
        let database = try DatabaseQueue(path: path)
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE credential SET sealed = (SELECT sealed FROM credential WHERE org = 'acme' AND name = 'openai/key')
                    WHERE org = 'globex'
                    """)
            try db.execute(
                sql: """
                    UPDATE credential SET sealed = (SELECT sealed FROM credential WHERE org = 'acme' AND name = 'openai/key')
                    WHERE org = 'acme' AND name = 'openai/other'
                    """)
        }
        #expect(await code { _ = try await credentials.open(org: "globex", name: "openai/key", for: .commandLine) } == "credential_wrong_org")
        #expect(await code { _ = try await credentials.open(org: "acme", name: "openai/other", for: .commandLine) } == "credential_wrong_name")
        // Tampering with the stored ciphertext.
        try await database.write { db in
            let blob = try Data.fetchOne(db, sql: "SELECT sealed FROM credential WHERE org = 'acme' AND name = 'openai/key'")!
            var damaged = blob
            damaged[damaged.count - 20] ^= 0x80
            try db.execute(sql: "UPDATE credential SET sealed = ? WHERE org = 'acme' AND name = 'openai/key'", arguments: [damaged])
        }
        #expect(await code { _ = try await credentials.open(org: "acme", name: "openai/key", for: .commandLine) } == "credential_tampered")
        let audit = try await credentials.store.auditRecords(org: "acme", credential: "openai/key", limit: 1)
        #expect(audit.first?.outcome == .failed)
        #expect(audit.first?.detail.hasPrefix("credential_tampered") == true)
        #expect(logs.all.contains { $0.contains("credential_tampered") })
    }

    @Test func keyRotationRewrapsStoredCredentialsAndRetiredKeysStopAfterTheirGrace() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let before = try credentials()
        try await before.put(org: "acme", name: "a", value: SecretBytes(utf8: "value-a"), provider: "generic", expiresAt: nil, metadata: nil)
        try await before.put(org: "globex", name: "b", value: SecretBytes(utf8: "value-b"), provider: "generic", expiresAt: nil, metadata: nil)
        try await before.rotate(org: "acme", name: "a", value: SecretBytes(utf8: "value-a2"), grace: .seconds(7200))
        let sealedBefore = try #require(try await before.store.credential(org: "acme", name: "a")).sealed

        let rotatedKeys = try keys.rotated(at: clock.now, grace: .seconds(3600))
        let after = try credentials(keys: rotatedKeys)
        // Not yet re-wrapped: the retired key still opens during its grace period.
        #expect(try await after.open(org: "globex", name: "b", for: .commandLine).value.isEqual(to: SecretBytes(utf8: "value-b")))
        #expect(try await after.store.blobsPerKeyVersion() == [1: 3])

        let report = try await after.rewrapAll()
        #expect(report.rewrapped == ["acme/a", "globex/b"])
        #expect(report.failed.isEmpty)
        #expect(try await after.store.blobsPerKeyVersion() == [2: 3])
        let sealedAfter = try #require(try await after.store.credential(org: "acme", name: "a")).sealed
        #expect(sealedAfter.suffix("value-a2".utf8.count + 32) == sealedBefore.suffix("value-a2".utf8.count + 32))
        #expect(try await after.rewrapAll().rewrapped.isEmpty)

        clock.advance(by: 3601)
        #expect(try await after.open(org: "acme", name: "a", for: .commandLine).value.isEqual(to: SecretBytes(utf8: "value-a2")))
        #expect(try await after.open(org: "acme", name: "a", for: .commandLine, previous: true).value.isEqual(to: SecretBytes(utf8: "value-a")))

        // A credential that missed the re-wrap is refused once the old key's grace is over.
        try await before.put(org: "acme", name: "late", value: SecretBytes(utf8: "value-late"), provider: "generic", expiresAt: nil, metadata: nil)
        #expect(await code { _ = try await after.open(org: "acme", name: "late", for: .commandLine) } == "key_retired")
        let failed = try await after.rewrapAll()
        #expect(failed.failed.map(\.credential) == ["acme/late"])
        #expect(failed.failed.first?.error.hasPrefix("key_retired") == true)
    }

    /// A previous value under a key past its grace can't be opened by anyone: re-wrapping
    /// drops it and still moves the current value to the new key.
    @Test func rewrapDropsAPreviousValueWhoseKeyIsPastItsGrace() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        try await credentials().put(org: "acme", name: "a", value: SecretBytes(utf8: "value-1"), provider: "generic", expiresAt: nil, metadata: nil)
        let second = try keys.rotated(at: clock.now, grace: .seconds(60))
        try await credentials(keys: second).rotate(org: "acme", name: "a", value: SecretBytes(utf8: "value-2"), grace: .seconds(86400))
        clock.advance(by: 120)
        let third = try second.rotated(at: clock.now, grace: .seconds(3600))
        let report = try await credentials(keys: third).rewrapAll()
        #expect(report.rewrapped == ["acme/a"] && report.failed.isEmpty)
        let stored = try #require(try await credentials().store.credential(org: "acme", name: "a"))
        #expect(stored.keyVersion == 3 && stored.previousSealed == nil && stored.previousValidUntil == nil)
        #expect(try await credentials(keys: third).open(org: "acme", name: "a", for: .commandLine).value.isEqual(to: SecretBytes(utf8: "value-2")))
    }

    /// Many writers, each on its own connection, race to add credentials to one org: the
    /// database's insert statement lets exactly `limit` through.
    @Test func concurrentPutsNeverExceedTheOrgLimit() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try SQLiteCredentialStore(path: path)
        let limit = 5
        let writers = 24
        for round in 0..<3 {
            let org = "org\(round)"
            let stores = try (0..<writers).map { _ in try SQLiteCredentialStore(path: path) }
            let barrier = Barrier(count: writers)
            let outcomes = await withTaskGroup(of: String?.self) { group in
                for index in 0..<writers {
                    let credentials = try! credentials(stores[index], limit: limit)
                    group.addTask {
                        let value = SecretBytes(utf8: "value-\(index)")
                        await barrier.arriveAndWait()
                        do {
                            try await credentials.put(org: org, name: "c\(index)", value: value, provider: "generic", expiresAt: nil, metadata: nil)
                            return nil
                        } catch let error as SecretsError {
                            return error.code.rawValue
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == nil }.count == limit, "round \(round): \(outcomes)")
            #expect(outcomes.filter { $0 == "credential_limit" }.count == writers - limit, "round \(round): \(outcomes)")
            #expect(try await SQLiteCredentialStore(path: path).credentials(org: org).count == limit)
        }
    }

    /// Rotations of one credential race on separate connections, all having read version 1:
    /// exactly one wins, the others get `conflict`, and the audit log has one rotation.
    @Test func concurrentRotationsOfOneCredentialHaveOneWinner() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let setup = try credentials()
        try await setup.put(org: "acme", name: "shared", value: SecretBytes(utf8: "value-0"), provider: "generic", expiresAt: nil, metadata: nil)
        let writers = 12
        let stores = try (0..<writers).map { _ in try SQLiteCredentialStore(path: path) }
        let barrier = Barrier(count: writers)
        let outcomes = await withTaskGroup(of: String?.self) { group in
            for index in 0..<writers {
                let credentials = try! credentials(stores[index])
                group.addTask {
                    await barrier.arriveAndWait()
                    do {
                        try await credentials.rotate(org: "acme", name: "shared", value: SecretBytes(utf8: "value-\(index + 1)"), expectedVersion: 1)
                        return nil
                    } catch let error as SecretsError {
                        return error.code.rawValue
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == "conflict" }.count == writers - 1, "\(outcomes)")
        let stored = try #require(try await setup.store.credential(org: "acme", name: "shared"))
        #expect(stored.version == 2 && stored.generation == 2)
        let audit = try await setup.store.auditRecords(org: "acme", credential: "shared", limit: 50)
        #expect(audit.filter { $0.action == .rotate && $0.outcome == .ok }.count == 1)
        #expect(audit.filter { $0.action == .rotate && $0.outcome == .refused }.count == writers - 1)
    }

    /// The update itself is version-checked: writers that all read version 1 before any of
    /// them writes still produce one winner.
    @Test func versionCheckedUpdatesRacedAfterOneReadHaveOneWinner() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let setup = try credentials()
        try await setup.put(org: "acme", name: "shared", value: SecretBytes(utf8: "value-0"), provider: "generic", expiresAt: nil, metadata: nil)
        let read = try #require(try await setup.store.credential(org: "acme", name: "shared"))
        let writers = 12
        let stores = try (0..<writers).map { _ in try SQLiteCredentialStore(path: path) }
        let barrier = Barrier(count: writers)
        let time = clock.now
        let outcomes = await withTaskGroup(of: String?.self) { group in
            for index in 0..<writers {
                let store = stores[index]
                group.addTask {
                    var updated = read
                    updated.metadata = #"{"writer": "\#(index)"}"#
                    await barrier.arriveAndWait()
                    do {
                        _ = try await store.updateCredential(
                            updated, expectedVersion: read.version,
                            audit: CredentialAuditRecord(
                                org: "acme", credential: "shared", action: .rotate, outcome: .ok, detail: "writer \(index)", at: time))
                        return nil
                    } catch let error as SecretsError {
                        return error.code.rawValue
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == "conflict" }.count == writers - 1, "\(outcomes)")
    }

    /// A decrypt whose audit record can't be written hands out nothing.
    @Test func aDecryptThatCantBeAuditedIsRefused() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let real = try SQLiteCredentialStore(path: path)
        try await credentials(real).put(org: "acme", name: "k", value: SecretBytes(utf8: "value"), provider: "generic", expiresAt: nil, metadata: nil)
        let failing = FailingAuditStore(base: real)
        let credentials = try credentials(failing)
        #expect(await code { _ = try await credentials.open(org: "acme", name: "k", for: .commandLine) } == "audit_failed")
        // Every attempt the retry policy allows was made before giving up.
        #expect(failing.attempts == 3)
    }

    /// Values reach neither logs, nor errors, nor the audit log, nor the database file.
    @Test func valuesNeverAppearInLogsErrorsAuditOrTheDatabase() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let credentials = try credentials()
        var errors: [String] = []
        func attempt(_ body: () async throws -> Void) async {
            do { try await body() } catch { errors.append("\(error)") }
        }
        let secret = "sk-proj-NeverShowMe0123456789abcdefghij"
        await attempt {
            try await credentials.put(org: "acme", name: "k", value: SecretBytes(utf8: secret), provider: "openai", expiresAt: nil, metadata: nil)
        }
        await attempt {
            try await credentials.put(
                org: "acme", name: "k2", value: SecretBytes(utf8: secret + " tail"), provider: "openai", expiresAt: nil, metadata: nil)
        }
        await attempt {
            try await credentials.put(org: "acme", name: "k3", value: SecretBytes(utf8: secret), provider: "anthropic", expiresAt: nil, metadata: nil)
        }
        await attempt {
            try await credentials.put(org: "acme", name: "k4", value: SecretBytes(utf8: secret), provider: "nope", expiresAt: nil, metadata: nil)
        }
        await attempt { try await credentials.rotate(org: "acme", name: "k", value: SecretBytes(utf8: secret + "2")) }
        await attempt { _ = try await credentials.open(org: "acme", name: "k", for: .commandLine) }
        await attempt { _ = try await credentials.open(org: "acme", name: "k", for: .commandLine, previous: true) }
        await attempt {
            try await credentials.put(
                org: "acme", name: "k5", value: SecretBytes(utf8: secret), provider: "generic", expiresAt: nil,
                metadata: #"{"note": "\#(secret)"}"#)
        }
        #expect(errors.count == 4)
        let audit = try await credentials.store.auditRecords(org: "acme", credential: nil, limit: 100)
        let texts = logs.all + errors + audit.map(\.detail)
        #expect(!texts.isEmpty)
        for text in texts {
            #expect(!text.contains("NeverShowMe"), "\(text)")
        }
        for file in [path, path + "-wal"] where FileManager.default.fileExists(atPath: file) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            #expect(bytes.range(of: Data("NeverShowMe".utf8)) == nil, "\(file)")
        }
    }
}

/// A store whose audit writes always fail, counting the attempts.
final class FailingAuditStore: CredentialStore, @unchecked Sendable {
    let base: SQLiteCredentialStore
    private let lock = NSLock()
    private var count = 0

    init(base: SQLiteCredentialStore) {
        self.base = base
    }

    var attempts: Int { lock.withLock { count } }

    struct Unavailable: Error {}

    func appendAudit(_ record: CredentialAuditRecord) async throws {
        lock.withLock { count += 1 }
        throw Unavailable()
    }

    func insertCredential(_ credential: StoredCredential, limit: Int, audit: CredentialAuditRecord) async throws {
        try await base.insertCredential(credential, limit: limit, audit: audit)
    }

    func updateCredential(_ credential: StoredCredential, expectedVersion: Int, audit: CredentialAuditRecord) async throws -> StoredCredential {
        try await base.updateCredential(credential, expectedVersion: expectedVersion, audit: audit)
    }

    func deleteCredential(org: String, name: String, expectedVersion: Int?, audit: CredentialAuditRecord) async throws {
        try await base.deleteCredential(org: org, name: name, expectedVersion: expectedVersion, audit: audit)
    }

    func credential(org: String, name: String) async throws -> StoredCredential? {
        try await base.credential(org: org, name: name)
    }

    func credentials(org: String) async throws -> [StoredCredential] {
        try await base.credentials(org: org)
    }

    func credentials(notWrappedBy keyVersion: Int) async throws -> [StoredCredential] {
        try await base.credentials(notWrappedBy: keyVersion)
    }

    func blobsPerKeyVersion() async throws -> [Int: Int] {
        try await base.blobsPerKeyVersion()
    }

    func auditRecords(org: String, credential: String?, limit: Int) async throws -> [CredentialAuditRecord] {
        try await base.auditRecords(org: org, credential: credential, limit: limit)
    }
}
