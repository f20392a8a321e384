import Crypto
import Foundation
import _CryptoExtras

/// Where the key-encryption keys come from: a keyring file, or one key derived from a
/// passphrase and a salt that both come from the environment. Nothing in the code supplies a
/// key or a salt; without one of the two sources Sluice refuses to seal or open credentials.
public enum KeySource: Sendable {
    case keyringFile(KeyringFile)
    case passphrase(PassphraseKey)

    /// The environment variables Sluice reads.
    public enum Variable {
        /// A keyring path (below `--keyring`, above the project's `.sluice/keyring.json`).
        public static let keyring = "SLUICE_KEYRING"
        /// A passphrase to derive the key from, instead of a keyring.
        public static let passphrase = "SLUICE_KEY_PASSPHRASE"
        /// The salt for the passphrase; required with it.
        public static let salt = "SLUICE_KEY_SALT"
        /// Every variable above: key material that no run may see as `env.*`.
        public static let all = [keyring, passphrase, salt]
    }

    /// Picks the source: a passphrase when `SLUICE_KEY_PASSPHRASE` (or `SLUICE_KEY_SALT`) is
    /// set, else the keyring at `keyringPath` (a flag), else at `SLUICE_KEYRING`, else at
    /// `defaultKeyringPath`. A passphrase together with an explicit keyring is refused, as
    /// is half a passphrase configuration.
    public static func resolve(
        keyringPath: String?, environment: [String: String],
        defaultKeyringPath: String
    ) throws(SecretsError) -> KeySource {
        let passphrase = environment[Variable.passphrase]
        let salt = environment[Variable.salt]
        let explicitKeyring = keyringPath ?? environment[Variable.keyring].flatMap { $0.isEmpty ? nil : $0 }
        if passphrase != nil || salt != nil {
            if let explicitKeyring {
                throw SecretsError(
                    .keySourceAmbiguous,
                    "both a keyring (\(explicitKeyring)) and \(passphrase != nil ? Variable.passphrase : Variable.salt) are set; use one: unset the passphrase variables, or drop --keyring / \(Variable.keyring)"
                )
            }
            return .passphrase(try PassphraseKey(passphrase: passphrase, salt: salt))
        }
        return .keyringFile(KeyringFile(path: explicitKeyring ?? defaultKeyringPath))
    }

    /// The keys, read and checked.
    public func load() throws(SecretsError) -> Keyring {
        switch self {
        case .keyringFile(let file): try file.load()
        case .passphrase(let key): try key.keyring()
        }
    }

    public var origin: Keyring.Origin {
        switch self {
        case .keyringFile(let file): .file(file.path)
        case .passphrase: .passphrase
        }
    }
}

/// A key-encryption key derived from `SLUICE_KEY_PASSPHRASE` and `SLUICE_KEY_SALT` with
/// PBKDF2-HMAC-SHA512 (210,000 rounds, 32 bytes). It is key version 1 and never rotates in
/// place: there is no file to record a retired key in.
public struct PassphraseKey: Sendable {
    public static let rounds = 210_000
    public static let minimumPassphraseLength = 12
    public static let minimumSaltBytes = 16
    /// The derived key's version.
    public static let version: UInt32 = 1

    private let passphrase: SecretBytes
    private let salt: [UInt8]

    /// Checks both are present and long enough; derives nothing yet.
    public init(passphrase: String?, salt: String?) throws(SecretsError) {
        guard let passphrase, !passphrase.isEmpty else {
            throw SecretsError(
                .passphraseMissing,
                "\(KeySource.Variable.salt) is set but \(KeySource.Variable.passphrase) is not; set both to derive the key from a passphrase, or neither to use a keyring"
            )
        }
        guard let salt, !salt.isEmpty else {
            throw SecretsError(
                .saltMissing,
                "\(KeySource.Variable.passphrase) is set but \(KeySource.Variable.salt) is not; the salt must come from the environment too (at least \(Self.minimumSaltBytes) random bytes, e.g. `openssl rand -hex 16`)"
            )
        }
        guard passphrase.count >= Self.minimumPassphraseLength else {
            throw SecretsError(.keyMaterialWeak, "\(KeySource.Variable.passphrase) is shorter than \(Self.minimumPassphraseLength) characters")
        }
        guard salt.utf8.count >= Self.minimumSaltBytes else {
            throw SecretsError(.keyMaterialWeak, "\(KeySource.Variable.salt) is shorter than \(Self.minimumSaltBytes) bytes")
        }
        self.passphrase = SecretBytes(utf8: passphrase)
        self.salt = Array(salt.utf8)
    }

    /// Runs the KDF and returns a keyring holding the one derived key.
    public func keyring() throws(SecretsError) -> Keyring {
        let key: SymmetricKey
        do {
            key = try passphrase.withBytes { bytes in
                try KDF.Insecure.PBKDF2.deriveKey(from: bytes, salt: salt, using: .sha512, outputByteCount: 32, rounds: Self.rounds)
            }
        } catch {
            throw SecretsError(.keyringUnavailable, "deriving the key from \(KeySource.Variable.passphrase) failed: \(error)")
        }
        return try Keyring(
            entries: [
                KeyringEntry(
                    key: KeyEncryptionKey(version: Self.version, key: key), status: .active,
                    createdAt: Date(timeIntervalSince1970: 0))
            ],
            origin: .passphrase)
    }
}
