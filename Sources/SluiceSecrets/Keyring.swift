import Crypto
import Foundation

/// One key-encryption key: 256 bits that wrap (AES-GCM) the data keys of credentials, and
/// its version, which every blob it wraps names.
public struct KeyEncryptionKey: Sendable {
    public let version: UInt32
    let key: SymmetricKey
    /// 8 bytes that identify the key without revealing it (HMAC-SHA256 of a fixed label under
    /// the key, truncated). Blobs carry it, so a wrong passphrase or a different keyring with
    /// the same version numbers is told apart from a tampered blob.
    public let check: [UInt8]

    init(version: UInt32, key: SymmetricKey) {
        self.version = version
        self.key = key
        check = Self.checkValue(of: key)
    }

    static let checkLabel = Array("sluice/key-check/v1".utf8)

    static func checkValue(of key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: checkLabel, using: key).prefix(8))
    }

    /// The check value in hex, as `keys list` shows it.
    public var checkHex: String { check.hexString }
}

/// A key in a keyring, with its life cycle: the one `active` key wraps new data keys;
/// `retired` keys still unwrap until their grace period ends, then are refused.
public struct KeyringEntry: Sendable {
    public enum Status: String, Sendable, Codable {
        case active, retired
    }

    public let key: KeyEncryptionKey
    public var status: Status
    public var createdAt: Date
    public var retiredAt: Date?
    /// The end of a retired key's grace period.
    public var usableUntil: Date?

    public var version: UInt32 { key.version }

    /// Whether the key may still unwrap at `now`.
    public func isUsable(at now: Date) -> Bool {
        switch status {
        case .active: return true
        case .retired: return usableUntil.map { now < $0 } ?? false
        }
    }

    /// `active`, `retired` (in its grace period) or `expired` (past it), for listings.
    public func state(at now: Date) -> String {
        status == .active ? "active" : (isUsable(at: now) ? "retired" : "expired")
    }
}

/// The key-encryption keys Sluice holds, from a keyring file or a passphrase. Exactly one is
/// active; versions are unique.
public struct Keyring: Sendable {
    /// Where the keys come from, for messages.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        case file(String)
        case passphrase

        public var description: String {
            switch self {
            case .file(let path): "keyring \(path)"
            case .passphrase: "the key derived from SLUICE_KEY_PASSPHRASE"
            }
        }
    }

    /// Sorted by version.
    public let entries: [KeyringEntry]
    public let origin: Origin

    /// Checks the invariants; a violation is `keyring_corrupt`.
    public init(entries: [KeyringEntry], origin: Origin) throws(SecretsError) {
        let sorted = entries.sorted { $0.version < $1.version }
        guard !sorted.isEmpty else { throw SecretsError(.keyringCorrupt, "\(origin) holds no keys") }
        for (earlier, later) in zip(sorted, sorted.dropFirst()) where earlier.version == later.version {
            throw SecretsError(.keyringCorrupt, "\(origin) holds key version \(later.version) twice")
        }
        if let zero = sorted.first(where: { $0.version == 0 }) {
            throw SecretsError(.keyringCorrupt, "\(origin) holds key version \(zero.version); versions start at 1")
        }
        let active = sorted.filter { $0.status == .active }
        guard active.count == 1 else {
            throw SecretsError(
                .keyringCorrupt,
                "\(origin) has \(active.count) active keys (versions \(active.map { String($0.version) }.joined(separator: ", "))); exactly one must be active"
            )
        }
        if let retired = sorted.first(where: { $0.status == .retired && ($0.usableUntil == nil || $0.retiredAt == nil) }) {
            throw SecretsError(.keyringCorrupt, "\(origin): retired key version \(retired.version) lacks retired_at or usable_until")
        }
        self.entries = sorted
        self.origin = origin
    }

    /// The key that wraps new data keys.
    public var current: KeyEncryptionKey { entries.first { $0.status == .active }!.key }

    /// The key of `version`, if it may unwrap at `now`: an unknown version is `key_unknown`,
    /// a retired key past its grace period `key_retired`.
    public func key(version: UInt32, at now: Date) throws(SecretsError) -> KeyEncryptionKey {
        guard let entry = entries.first(where: { $0.version == version }) else {
            let known = entries.map { String($0.version) }.joined(separator: ", ")
            throw SecretsError(.keyUnknown, "key version \(version) is not in \(origin) (it has versions \(known))")
        }
        guard entry.isUsable(at: now) else {
            let retired = entry.retiredAt.map { " on \(Timestamp.text($0))" } ?? ""
            let ended = entry.usableUntil.map { Timestamp.text($0) } ?? "?"
            throw SecretsError(
                .keyRetired,
                "key version \(version) was retired\(retired) and its grace period ended at \(ended); it no longer decrypts (store the credential again with `sluice secrets rotate`)"
            )
        }
        return entry.key
    }

    /// A keyring with a new active key (the next version) and the current one retired,
    /// usable for `grace` more.
    public func rotated(at now: Date, grace: Duration) throws(SecretsError) -> Keyring {
        guard grace > .zero else { throw SecretsError(.timeInvalid, "a key's grace period must be positive") }
        let next = (entries.map(\.version).max() ?? 0) + 1
        var updated = entries.map { entry -> KeyringEntry in
            guard entry.status == .active else { return entry }
            var retired = entry
            retired.status = .retired
            retired.retiredAt = now
            retired.usableUntil = now.addingTimeInterval(grace.timeInterval)
            return retired
        }
        updated.append(
            KeyringEntry(
                key: KeyEncryptionKey(version: next, key: SymmetricKey(size: .bits256)),
                status: .active, createdAt: now))
        return try Keyring(entries: updated, origin: origin)
    }

    /// A keyring with one fresh active key, version 1.
    public static func generate(at now: Date, origin: Origin) -> Keyring {
        // One active key with a fresh version can't break an invariant.
        try! Keyring(
            entries: [
                KeyringEntry(
                    key: KeyEncryptionKey(version: 1, key: SymmetricKey(size: .bits256)),
                    status: .active, createdAt: now)
            ], origin: origin)
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension Sequence<UInt8> {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// Times in messages (ISO 8601, UTC, whole seconds) and in files (with milliseconds, so a
/// grace period that ends within the second is kept exactly).
enum Timestamp {
    static func text(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    static func precise(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: .iso8601)
    }
}
