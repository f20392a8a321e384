import Foundation
import Logging
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// An org's stored credentials, sealed with the keyring's current key: what `sluice secrets`
/// and `kms_decrypt` call. It checks values and descriptions before sealing, opens each blob
/// once before storing it, and writes an audit record for everything it does or refuses.
/// Values only ever travel as `SecretBytes`; nothing here logs or prints one.
public struct Credentials: Sendable {
    public let store: any CredentialStore
    /// The keys; nil for a `Credentials` that only lists and deletes.
    public let keys: Keyring?
    /// How many credentials an org may hold (`SLUICE_CREDENTIAL_LIMIT`).
    public var limitPerOrg: Int
    public var logger: Logger
    /// How audit records of decrypts are retried when the store fails to write them.
    public var auditRetry: RetryPolicy
    public var now: @Sendable () -> Date

    public static let defaultLimitPerOrg = ProjectSettings.defaultCredentialLimit
    public static let defaultRotationGrace: Duration = .seconds(24 * 3600)

    public init(
        store: any CredentialStore, keys: Keyring?, limitPerOrg: Int = Credentials.defaultLimitPerOrg,
        logger: Logger = Logger(label: "sluice.credentials"),
        auditRetry: RetryPolicy = RetryPolicy(
            attempts: 4, backoff: .exponential, initialDelay: .milliseconds(100),
            maxDelay: .seconds(2), jitter: true),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.keys = keys
        self.limitPerOrg = limitPerOrg
        self.logger = logger
        self.auditRetry = auditRetry
        self.now = now
    }

    /// Who asks to open a credential, for the audit record.
    public struct Accessor: Sendable, Hashable {
        public var runID: String?
        public var stepID: String?

        public init(runID: String?, stepID: String?) {
            self.runID = runID
            self.stepID = stepID
        }

        /// A person at the command line.
        public static let commandLine = Accessor(runID: nil, stepID: nil)
    }

    /// A credential's value, opened, and what it is.
    public struct Opened: Sendable {
        /// The plaintext. Wipe it as soon as it is no longer needed.
        public let value: SecretBytes
        public let provider: CredentialProvider
        public let generation: Int
        public let keyVersion: Int
        public let expiresAt: Date?
        /// Whether this is the previous value (in its grace period after a rotation).
        public let isPrevious: Bool
    }

    // MARK: Storing

    /// Stores a new credential: checks org, name, value (not empty, the provider's format),
    /// metadata and expiry; seals; opens the blob and compares; then inserts it, refused by
    /// the database when the name exists or the org is at its limit.
    @discardableResult
    public func put(
        org: String, name: String, value: SecretBytes, provider providerName: String, expiresAt: Date?,
        metadata: String?
    ) async throws -> StoredCredential {
        let time = now()
        return try await audited(org: org, name: name, action: .put, at: time) {
            try Self.checkAddress(org: org, name: name)
            let provider = try provider(named: providerName, org: org, name: name)
            try provider.check(value)
            let metadata = try Self.checkMetadata(metadata, provider: provider)
            if let expiresAt, expiresAt <= time {
                throw SecretsError(.timeInvalid, "expires_at \(expiresAt.formatted(.iso8601)) is not in the future")
            }
            let keys = try requireKeys()
            let sealed = try sealAndVerify(value, org: org, name: name, generation: 1, keys: keys)
            let credential = StoredCredential(
                org: org, name: name, provider: provider.rawValue, generation: 1, sealed: sealed,
                keyVersion: Int(keys.current.version), expiresAt: expiresAt, metadata: metadata,
                createdAt: time, updatedAt: time)
            try await store.insertCredential(
                credential, limit: limitPerOrg,
                audit: record(
                    org, name, .put, .ok, "stored (\(provider.rawValue), value 1, key version \(keys.current.version))", time))
            logger.info("stored credential \(org)/\(name)", metadata: ["provider": "\(provider.rawValue)", "key_version": "\(keys.current.version)"])
            return credential
        }
    }

    /// Gives a credential a new value. The old value stays valid for `grace` (it becomes the
    /// previous value); the provider stays; metadata and expiry change only when given. The
    /// update names the row version read (or `expectedVersion`), so of two rotations at once
    /// one wins and the other gets `conflict`.
    @discardableResult
    public func rotate(
        org: String, name: String, value: SecretBytes, grace: Duration = Credentials.defaultRotationGrace,
        expiresAt: Date? = nil, metadata: String? = nil, expectedVersion: Int? = nil
    ) async throws -> StoredCredential {
        let time = now()
        return try await audited(org: org, name: name, action: .rotate, at: time) {
            try Self.checkAddress(org: org, name: name)
            let keys = try requireKeys()
            guard grace > .zero else { throw SecretsError(.timeInvalid, "the grace period of the old value must be positive") }
            guard let existing = try await store.credential(org: org, name: name) else { throw Self.notFound(org, name) }
            let expected = expectedVersion ?? existing.version
            guard existing.version == expected else {
                throw SecretsError(
                    .conflict, "credential \(org)/\(name) is at version \(existing.version), not \(expected): it changed since it was read")
            }
            let provider = try CredentialProvider(named: existing.provider)
            try provider.check(value)
            var updated = existing
            if let metadata { updated.metadata = try Self.checkMetadata(metadata, provider: provider) }
            if let expiresAt {
                guard expiresAt > time else { throw SecretsError(.timeInvalid, "expires_at \(expiresAt.formatted(.iso8601)) is not in the future") }
                updated.expiresAt = expiresAt
            }
            updated.generation = existing.generation + 1
            updated.sealed = try sealAndVerify(value, org: org, name: name, generation: UInt32(updated.generation), keys: keys)
            updated.keyVersion = Int(keys.current.version)
            updated.previousSealed = existing.sealed
            updated.previousKeyVersion = existing.keyVersion
            updated.previousValidUntil = time.addingTimeInterval(grace.timeInterval)
            updated.updatedAt = time
            let stored = try await store.updateCredential(
                updated, expectedVersion: expected,
                audit: record(
                    org, name, .rotate, .ok,
                    "rotated to value \(updated.generation); value \(existing.generation) valid until \(updated.previousValidUntil!.formatted(.iso8601))",
                    time))
            logger.info("rotated credential \(org)/\(name)", metadata: ["generation": "\(stored.generation)"])
            return stored
        }
    }

    /// Deletes a credential, both its values (at `expectedVersion` when given).
    public func delete(org: String, name: String, expectedVersion: Int? = nil) async throws {
        let time = now()
        try await audited(org: org, name: name, action: .delete, at: time) {
            try Self.checkAddress(org: org, name: name)
            try await store.deleteCredential(
                org: org, name: name, expectedVersion: expectedVersion,
                audit: record(org, name, .delete, .ok, "deleted", time))
            logger.info("deleted credential \(org)/\(name)")
        }
    }

    /// An org's credentials, sealed: for listings, which show names, providers, versions and
    /// metadata field names, never values.
    public func list(org: String) async throws -> [StoredCredential] {
        guard Identifier.isValid(org) else { throw SecretsError(.nameInvalid, "org: \(Identifier.problem(with: org)!)") }
        return try await store.credentials(org: org)
    }

    // MARK: Opening

    /// Opens a credential of `org` for `accessor` and writes the audit record of the decrypt
    /// (retried with backoff; if it can't be written the value is wiped and not handed out).
    /// The current value, or with `previous` the value before the last rotation while its
    /// grace period lasts. Refusals (not found, expired, a retired key, a tampered or moved
    /// blob, a wrong passphrase) are audited too, and thrown as `SecretsError`.
    /// With `expect`, the value must have that provider's format (kms_decrypt's `expect:`);
    /// a mismatch is refused, audited, and the value wiped.
    public func open(
        org: String, name: String, for accessor: Accessor, previous: Bool = false,
        expect: CredentialProvider? = nil
    ) async throws -> Opened {
        let time = now()
        let opened: Opened
        do {
            try Self.checkAddress(org: org, name: name)
            let keys = try requireKeys()
            guard let stored = try await store.credential(org: org, name: name) else { throw Self.notFound(org, name) }
            if let expiresAt = stored.expiresAt, expiresAt <= time {
                throw SecretsError(
                    .credentialExpired,
                    "credential \(org)/\(name) expired at \(expiresAt.formatted(.iso8601)); store a new value with `sluice secrets rotate`")
            }
            let blob: Data
            let generation: Int
            if previous {
                guard let previousBlob = stored.previousSealed, let until = stored.previousValidUntil else {
                    throw Self.notFound(org, name, "has no previous value")
                }
                guard time < until else {
                    throw SecretsError(
                        .credentialExpired,
                        "the previous value of credential \(org)/\(name) stopped being valid at \(until.formatted(.iso8601)), the end of its grace period"
                    )
                }
                blob = previousBlob
                generation = stored.generation - 1
            } else {
                blob = stored.sealed
                generation = stored.generation
            }
            let value = try CredentialEnvelope.open(
                blob, org: org, name: name, generation: UInt32(clamping: generation),
                keys: keys, at: time)
            if let expect {
                do {
                    try expect.check(value)
                } catch {
                    value.wipe()
                    throw SecretsError(error.code, "credential \(org)/\(name) is not a valid \(expect.rawValue) value: \(error.message)")
                }
            }
            let header = try CredentialEnvelope.header(of: blob)
            opened = Opened(
                value: value, provider: (try? CredentialProvider(named: stored.provider)) ?? .generic,
                generation: generation, keyVersion: Int(header.keyVersion), expiresAt: stored.expiresAt, isPrevious: previous)
        } catch {
            let failure = Self.auditOutcome(of: error)
            await writeAudit(record(org, name, .decrypt, failure, Self.detail(of: error), time, accessor))
            logger.warning(
                "refused to decrypt credential \(org)/\(name): \(Self.detail(of: error))",
                metadata: accessor.runID.map { ["run_id": "\($0)"] } ?? [:])
            throw error
        }
        do {
            try await writeAuditRetrying(
                record(
                    org, name, .decrypt, .ok,
                    "decrypted value \(opened.generation)\(previous ? " (previous)" : "") with key version \(opened.keyVersion)",
                    time, accessor))
        } catch {
            opened.value.wipe()
            throw SecretsError(.auditFailed, "credential \(org)/\(name) was not handed out: its audit record could not be written (\(error))")
        }
        return opened
    }

    // MARK: Key rotation

    /// What `rewrapAll` did.
    public struct RewrapReport: Sendable {
        public var rewrapped: [String] = []
        public var failed: [(credential: String, error: String)] = []
    }

    /// Re-wraps the data key of every blob not wrapped by the current key, in every org, by
    /// the current key; values are not decrypted. A credential changed concurrently is read
    /// again and retried. A previous value whose grace period ended is dropped.
    public func rewrapAll() async throws -> RewrapReport {
        var report = RewrapReport()
        let keys = try requireKeys()
        let current = Int(keys.current.version)
        for candidate in try await store.credentials(notWrappedBy: current) {
            let label = "\(candidate.org)/\(candidate.name)"
            var stored = candidate
            var attempts = 0
            while true {
                attempts += 1
                let time = now()
                do {
                    var updated = stored
                    updated.sealed = try CredentialEnvelope.rewrap(stored.sealed, org: stored.org, name: stored.name, keys: keys, at: time)
                    updated.keyVersion = current
                    if let previous = stored.previousSealed {
                        // A previous value past its grace period, or under a key past its own,
                        // can't be opened by anyone any more: drop it rather than carry it.
                        var rewrappedPrevious: Data?
                        if let until = stored.previousValidUntil, time < until {
                            rewrappedPrevious = try Self.rewrapUnlessRetired(previous, org: stored.org, name: stored.name, keys: keys, at: time)
                        }
                        updated.previousSealed = rewrappedPrevious
                        updated.previousKeyVersion = rewrappedPrevious == nil ? nil : current
                        updated.previousValidUntil = rewrappedPrevious == nil ? nil : stored.previousValidUntil
                    }
                    updated.updatedAt = time
                    _ = try await store.updateCredential(
                        updated, expectedVersion: stored.version,
                        audit: record(
                            stored.org, stored.name, .rewrap, .ok, "re-wrapped from key version \(stored.keyVersion) to \(current)", time))
                    report.rewrapped.append(label)
                    break
                } catch let error as SecretsError where error.code == .conflict && attempts < 5 {
                    guard let fresh = try await store.credential(org: stored.org, name: stored.name) else { break }
                    stored = fresh
                } catch {
                    await writeAudit(record(stored.org, stored.name, .rewrap, Self.auditOutcome(of: error), Self.detail(of: error), time))
                    logger.error("could not re-wrap credential \(label): \(Self.detail(of: error))")
                    report.failed.append((label, Self.detail(of: error)))
                    break
                }
            }
        }
        return report
    }

    /// The blob re-wrapped, or nil when the key that wraps it is past its grace period.
    private static func rewrapUnlessRetired(_ blob: Data, org: String, name: String, keys: Keyring, at time: Date) throws(SecretsError) -> Data? {
        do {
            return try CredentialEnvelope.rewrap(blob, org: org, name: name, keys: keys, at: time)
        } catch {
            if error.code == .keyRetired { return nil }
            throw error
        }
    }

    // MARK: Checks

    private func requireKeys() throws(SecretsError) -> Keyring {
        guard let keys else {
            throw SecretsError(.keyringMissing, "no key-encryption keys are configured, so credentials can't be sealed or opened")
        }
        return keys
    }

    static func checkAddress(org: String, name: String) throws(SecretsError) {
        if let problem = Identifier.problem(with: org) { throw SecretsError(.nameInvalid, "org: \(problem)") }
        if let problem = CredentialName.problem(with: name) { throw SecretsError(.nameInvalid, problem) }
    }

    private func provider(named name: String, org: String, name credential: String) throws(SecretsError) -> CredentialProvider {
        do {
            return try CredentialProvider(named: name)
        } catch {
            logger.warning("refused credential \(org)/\(credential): unknown provider \(shown(name))")
            throw error
        }
    }

    static func checkMetadata(_ text: String?, provider: CredentialProvider) throws(SecretsError) -> String {
        if let text, let finding = CredentialDetector.scan(text) {
            throw SecretsError(
                .metadataInvalid,
                "metadata looks like it holds a credential (\(finding.kind)); metadata is stored in clear, so put values in the credential itself")
        }
        return try CredentialMetadata.validate(text, provider: provider)
    }

    /// Seals, then opens the blob with the same keyring and compares, before anyone stores it.
    private func sealAndVerify(_ value: SecretBytes, org: String, name: String, generation: UInt32, keys: Keyring) throws(SecretsError) -> Data {
        let sealed = try CredentialEnvelope.seal(value, org: org, name: name, generation: generation, with: keys.current)
        let reopened = try CredentialEnvelope.open(sealed, org: org, name: name, generation: generation, keys: keys, at: now())
        defer { reopened.wipe() }
        guard reopened.isEqual(to: value) else {
            throw SecretsError(.sealVerifyFailed, "credential \(org)/\(name) did not open to the same value after sealing; nothing was stored")
        }
        return sealed
    }

    // MARK: Audit

    /// Runs a mutation; when it throws, records the refusal (best effort) and rethrows.
    private func audited<Value>(
        org: String, name: String, action: CredentialAuditRecord.Action, at time: Date,
        _ body: () async throws -> Value
    ) async throws -> Value {
        do {
            return try await body()
        } catch {
            // Names that break the naming rule are not written to the audit log, only logged.
            if (try? Self.checkAddress(org: org, name: name)) != nil {
                await writeAudit(record(org, name, action, Self.auditOutcome(of: error), Self.detail(of: error), time))
            }
            // Bad input is the audit log's business; a credential that can't be sealed or
            // opened is worth a warning.
            let level: Logger.Level = Self.auditOutcome(of: error) == .failed ? .warning : .notice
            logger.log(level: level, "refused to \(action.rawValue) credential \(org)/\(name): \(Self.detail(of: error))")
            throw error
        }
    }

    private func record(
        _ org: String, _ name: String, _ action: CredentialAuditRecord.Action, _ outcome: CredentialAuditRecord.Outcome,
        _ detail: String, _ time: Date, _ accessor: Accessor = .commandLine
    ) -> CredentialAuditRecord {
        CredentialAuditRecord(
            org: org, credential: name, runID: accessor.runID, stepID: accessor.stepID, action: action,
            outcome: outcome, detail: detail, at: time)
    }

    /// Writes an audit record, retrying with backoff; throws the last error.
    private func writeAuditRetrying(_ record: CredentialAuditRecord) async throws {
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await store.appendAudit(record)
                return
            } catch {
                guard attempt < max(1, auditRetry.attempts) else { throw error }
                logger.warning("writing the audit record of \(record.org)/\(record.credential) failed (attempt \(attempt)): \(error)")
                try await Task.sleep(for: auditRetry.delay(afterFailedAttempts: attempt, using: &generator))
            }
        }
    }

    /// Writes an audit record of a refusal; a failure to write it is logged, not thrown over
    /// the refusal itself.
    private func writeAudit(_ record: CredentialAuditRecord) async {
        do {
            try await writeAuditRetrying(record)
        } catch {
            logger.error("could not write the audit record of \(record.action.rawValue) \(record.org)/\(record.credential): \(error)")
        }
    }

    static func auditOutcome(of error: any Error) -> CredentialAuditRecord.Outcome {
        switch error {
        case let error as SecretsError:
            switch error.code {
            case .credentialTampered, .credentialWrongOrg, .credentialWrongName, .credentialFormatUnsupported, .keyUnknown,
                .keyMismatch, .keyringCorrupt, .keyringMissing, .keyringPermissions, .keyringUnavailable, .sealVerifyFailed:
                return .failed
            default:
                return .refused
            }
        case let error as SecretsError:
            return error.code == .auditFailed ? .failed : .refused
        default:
            return .failed
        }
    }

    /// An error as the audit log and logs show it: code and message, which never hold a value.
    static func detail(of error: any Error) -> String {
        switch error {
        case let error as SecretsError: "\(error.code.rawValue): \(error.message)"
        case let error as SecretsError: "\(error.code.rawValue): \(error.message)"
        default: "\(error)"
        }
    }

    static func notFound(_ org: String, _ name: String, _ what: String = "does not exist") -> SecretsError {
        SecretsError(.credentialNotFound, "credential \(org)/\(name) \(what)")
    }
}
