import Foundation

/// Where sealed credentials and their audit log live, per org. It stores and returns sealed
/// blobs and descriptions, never plaintext: sealing and opening happen in `Credentials`
/// (SluiceSecrets does the cryptography). SluiceSQLite implements it in the run store's
/// database; a PostgreSQL implementation can follow without changing the engine.
///
/// Every mutation and its audit record commit in one transaction. Limits and concurrency are
/// the database's job: the per-org limit is enforced by the insert statement itself, and an
/// update or delete names the row version it read, so of two concurrent writers one gets
/// `CredentialStoreError.conflict`.
public protocol CredentialStore: Sendable {
    /// Inserts a credential with `version` 1, unless its name exists (`credential_exists`) or
    /// its org holds `limit` credentials already (`credential_limit`), the count checked by
    /// the database in the same atomic statement as the insert.
    func insertCredential(_ credential: StoredCredential, limit: Int, audit: CredentialAuditRecord) async throws

    /// Replaces the credential at `credential.org`/`credential.name` if its row version is
    /// still `expectedVersion`, and returns it as stored (version + 1). A missing credential
    /// is `credential_not_found`; another version is `conflict`.
    func updateCredential(_ credential: StoredCredential, expectedVersion: Int, audit: CredentialAuditRecord) async throws -> StoredCredential

    /// Deletes a credential (if `expectedVersion` is given, only at that row version).
    func deleteCredential(org: String, name: String, expectedVersion: Int?, audit: CredentialAuditRecord) async throws

    func credential(org: String, name: String) async throws -> StoredCredential?

    /// An org's credentials, by name.
    func credentials(org: String) async throws -> [StoredCredential]

    /// Credentials in every org with a blob (current or previous) wrapped by a key version
    /// other than `keyVersion`: what is left to re-wrap after a key rotation.
    func credentials(notWrappedBy keyVersion: Int) async throws -> [StoredCredential]

    /// How many blobs (current and previous values) each key version wraps.
    func blobsPerKeyVersion() async throws -> [Int: Int]

    func appendAudit(_ record: CredentialAuditRecord) async throws

    /// An org's audit records (of one credential, if given), newest first.
    func auditRecords(org: String, credential: String?, limit: Int) async throws -> [CredentialAuditRecord]
}

/// One credential as stored: the sealed current value, the previous value during its grace
/// period after a rotation, and a description in clear.
public struct StoredCredential: Sendable, Hashable {
    public var org: String
    public var name: String
    /// `openai`, `anthropic`, `gcp` or `generic`.
    public var provider: String
    /// Which value this is: 1 when stored, +1 per rotation (the blob says the same).
    public var generation: Int
    /// The sealed value (docs/encryption.md).
    public var sealed: Data
    /// The key version that wraps `sealed`'s data key (the blob says the same).
    public var keyVersion: Int
    /// The value before the last rotation, still valid until `previousValidUntil`.
    public var previousSealed: Data?
    public var previousKeyVersion: Int?
    public var previousValidUntil: Date?
    /// After this the credential is refused.
    public var expiresAt: Date?
    /// A JSON object (validated per provider); never holds the value.
    public var metadata: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Row version for optimistic concurrency: 1 when inserted, +1 per update.
    public var version: Int

    public init(
        org: String, name: String, provider: String, generation: Int, sealed: Data, keyVersion: Int,
        previousSealed: Data? = nil, previousKeyVersion: Int? = nil, previousValidUntil: Date? = nil,
        expiresAt: Date?, metadata: String, createdAt: Date, updatedAt: Date, version: Int = 1
    ) {
        self.org = org
        self.name = name
        self.provider = provider
        self.generation = generation
        self.sealed = sealed
        self.keyVersion = keyVersion
        self.previousSealed = previousSealed
        self.previousKeyVersion = previousKeyVersion
        self.previousValidUntil = previousValidUntil
        self.expiresAt = expiresAt
        self.metadata = metadata
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }
}

/// Something that happened to a credential: stored, rotated, deleted, decrypted, re-wrapped,
/// or refused. `kms_decrypt` writes one per decrypt with its run and step.
public struct CredentialAuditRecord: Sendable, Hashable {
    public enum Action: String, Sendable, Codable {
        case put, rotate, delete, decrypt, rewrap
    }

    public enum Outcome: String, Sendable, Codable {
        /// Done.
        case ok
        /// Refused on purpose: bad input, a limit, a conflict, an expired credential.
        case refused
        /// Could not be done: a tampered blob, a missing key, a store error.
        case failed
    }

    public var org: String
    public var credential: String
    public var runID: String?
    public var stepID: String?
    public var action: Action
    public var outcome: Outcome
    /// What happened in words, or the error code and message; never a value.
    public var detail: String
    public var at: Date

    public init(
        org: String, credential: String, runID: String? = nil, stepID: String? = nil, action: Action,
        outcome: Outcome, detail: String, at: Date
    ) {
        self.org = org
        self.credential = credential
        self.runID = runID
        self.stepID = stepID
        self.action = action
        self.outcome = outcome
        self.detail = detail
        self.at = at
    }
}
