import Foundation

/// Where `kms_decrypt` gets an org's stored credential: it finds the sealed blob, opens it
/// with the keyring, and writes the audit record of the access (whatever its outcome).
/// SluiceSecrets implements it over a `CredentialStore`.
public protocol CredentialOpener: Sendable {
    /// The credential's value and what is known of it, or a failure with a specific code
    /// (`credential_not_found`, `credential_expired`, `credential_tampered`, `key_retired`,
    /// `credential_format`, …). `expect` (`any`, `openai`, `anthropic`, `gcp`) is the format
    /// the value must have; a credential past its own expiry is refused. Every call is
    /// audited with its outcome.
    func open(org: String, name: String, expect: String, runID: String, stepID: String) async throws -> OpenedCredential
}

/// A decrypted credential, handed to the run's vault.
public struct OpenedCredential: Sendable {
    public var value: SecretBytes
    /// `openai`, `anthropic`, `gcp` or `generic`, as stored.
    public var provider: String
    /// The credential's own end of validity, if it has one.
    public var expiresAt: Date?

    public init(value: SecretBytes, provider: String, expiresAt: Date?) {
        self.value = value
        self.provider = provider
        self.expiresAt = expiresAt
    }
}
