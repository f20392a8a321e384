/// Why a key or a credential was refused, by the keys or by the credential store. `code` is stable (scripts, tests and the audit log
/// match on it); `message` is written for a person and never contains a secret value.
public struct SecretsError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        // Where the key-encryption keys come from.
        /// No keyring file at the configured path.
        case keyringMissing = "keyring_missing"
        /// The keyring file can be read or written by others than its owner (not 0600).
        case keyringPermissions = "keyring_permissions"
        /// The keyring file is not a keyring: bad JSON, missing fields, a key that fails its check value.
        case keyringCorrupt = "keyring_corrupt"
        /// `keys init` on a path that already holds a keyring.
        case keyringExists = "keyring_exists"
        /// The keyring file can't be read or written (I/O).
        case keyringUnavailable = "keyring_unavailable"
        /// SLUICE_KEY_SALT is set without SLUICE_KEY_PASSPHRASE, or the passphrase is empty.
        case passphraseMissing = "passphrase_missing"
        /// SLUICE_KEY_PASSPHRASE is set without SLUICE_KEY_SALT.
        case saltMissing = "salt_missing"
        /// A passphrase or salt too short to be safe.
        case keyMaterialWeak = "key_material_weak"
        /// Both a keyring and a passphrase were configured; Sluice won't guess which one is meant.
        case keySourceAmbiguous = "key_source_ambiguous"
        /// An operation that needs a keyring file (init, rotate) with a passphrase-derived key.
        case keyringRequired = "keyring_required"

        // Keys, when opening a credential.
        /// The credential is wrapped by a key version the keyring doesn't have.
        case keyUnknown = "key_unknown"
        /// The credential is wrapped by a retired key whose grace period has ended.
        case keyRetired = "key_retired"
        /// The configured key for that version is not the one that wrapped the credential:
        /// a wrong passphrase, or a different keyring.
        case keyMismatch = "key_mismatch"

        // Credentials.
        /// The blob fails authentication or can't be parsed: it was altered or truncated.
        case credentialTampered = "credential_tampered"
        /// The blob was sealed for another org.
        case credentialWrongOrg = "credential_wrong_org"
        /// The blob was sealed for another credential name (or another generation of it).
        case credentialWrongName = "credential_wrong_name"
        /// The blob's format version is newer than this Sluice understands.
        case credentialFormatUnsupported = "credential_format_unsupported"
        /// The credential passed its `expires_at`, or its previous value passed its grace period.
        case credentialExpired = "credential_expired"
        /// After sealing, opening the blob did not give back the value: nothing was stored.
        case sealVerifyFailed = "seal_verify_failed"

        // Values and their descriptions, before anything is stored.
        /// An empty or whitespace-only value.
        case valueEmpty = "value_empty"
        /// A value larger than a credential may be.
        case valueTooLarge = "value_too_large"
        /// A value that doesn't have its provider's format.
        case valueFormat = "value_format"
        /// A provider Sluice doesn't know.
        case providerUnknown = "provider_unknown"
        /// Metadata that is not a JSON object of the provider's fields.
        case metadataInvalid = "metadata_invalid"
        /// Metadata over the size limit.
        case metadataTooLarge = "metadata_too_large"
        /// An org or credential name that doesn't follow the naming rule.
        case nameInvalid = "name_invalid"
        /// An `expires_at` in the past, or a grace period that isn't positive.
        case timeInvalid = "time_invalid"

        // The credential store.
        /// Another writer changed the credential since it was read.
        case conflict
        /// `put` of a name the org already holds.
        case credentialExists = "credential_exists"
        /// No credential of that name in the org.
        case credentialNotFound = "credential_not_found"
        /// The org holds as many credentials as it may.
        case credentialLimit = "credential_limit"
        /// The audit record of a decrypt could not be written, so the value was not handed out.
        case auditFailed = "audit_failed"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code.rawValue)]" }

    /// `put` of a name the org already holds: every store says it the same way.
    public static func credentialExists(org: String, name: String) -> SecretsError {
        SecretsError(.credentialExists, "credential \(org)/\(name) exists already; give it a new value with `sluice secrets rotate`")
    }

    /// `put` into an org that holds `limit` credentials.
    public static func credentialLimitReached(org: String, limit: Int) -> SecretsError {
        SecretsError(
            .credentialLimit,
            "org \(org) holds \(limit) credentials, its limit; delete one first (the limit is credential_limit in sluice.yml, or SLUICE_CREDENTIAL_LIMIT)"
        )
    }
}
