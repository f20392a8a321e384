import Foundation
import SluiceModel
import SluiceSecrets

extension SecretBytes {
    /// The value as text (UTF-8), for a step's config: a copy the vault cannot wipe, which
    /// lives as long as that step's attempt.
    func text() -> String {
        withBytes { String(decoding: $0, as: UTF8.self) }
    }
}

/// A run's decrypted secrets, under `secrets.<name>`, each with the instant it expires.
/// `kms_decrypt` puts values in; the executor reads the ones a step uses just before the step
/// (refusing expired ones), clears expired ones after each step and all of them when the
/// run ends, overwriting their buffers. Every value is masked by the redactor while held.
public actor SecretVault {
    struct Entry {
        var value: SecretBytes
        var expiresAt: Date
        var credential: String
    }

    public let owner: String
    private let redactor: SecretRedactor
    private var entries: [String: Entry] = [:]

    public init(owner: String, redactor: SecretRedactor = .shared) {
        self.owner = owner
        self.redactor = redactor
    }

    /// Stores `value` under `name` until `expiresAt`; a value already under that name is
    /// wiped first.
    public func put(_ name: String, _ value: SecretBytes, expiresAt: Date, credential: String) {
        entries[name]?.value.wipe()
        redactor.register(value.text(), owner: owner)
        entries[name] = Entry(value: value, expiresAt: expiresAt, credential: credential)
    }

    /// The values of `names` for a step, or a failure naming the first secret that expired
    /// or is not there. Never says anything of a value.
    public func values(for names: Set<String>, step: String, at now: Date = Date()) throws(StepFailure) -> [String: String] {
        var values: [String: String] = [:]
        for name in names.sorted() {
            guard let entry = entries[name], !entry.value.isWiped else {
                throw StepFailure(
                    .secretMissing, "secret '\(name)' is not in the vault: no step of this run decrypted it, or it expired and was cleared")
            }
            guard entry.expiresAt > now else {
                throw StepFailure(
                    .secretExpired,
                    """
                    secret '\(name)' (credential '\(entry.credential)') expired at \(Self.format(entry.expiresAt)), \
                    before step '\(step)' could use it; give its kms_decrypt step a ttl that covers the steps using it
                    """)
            }
            values[name] = entry.value.text()
        }
        return values
    }

    /// When `name` expires, if it is in the vault.
    public func expiry(of name: String) -> Date? { entries[name]?.expiresAt }

    /// The names in the vault (never the values).
    public var names: [String] { entries.keys.sorted() }

    /// Wipes and removes the secrets that expired; returns their names.
    @discardableResult
    public func clearExpired(at now: Date = Date()) -> [String] {
        let expired = entries.filter { $0.value.expiresAt <= now }.map(\.key).sorted()
        for name in expired {
            entries[name]?.value.wipe()
            entries[name] = nil
        }
        return expired
    }

    /// Wipes and removes every secret, and stops masking them: the run is over.
    public func clearAll() {
        for entry in entries.values { entry.value.wipe() }
        entries.removeAll()
        redactor.forget(owner: owner)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
