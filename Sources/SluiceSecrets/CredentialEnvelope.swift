import Crypto
import Foundation

/// Envelope encryption of one credential value, format version 1 (docs/encryption.md):
/// the value is sealed with AES-256-GCM under a fresh random data key; the data key is sealed
/// (wrapped) with AES-256-GCM under the keyring's current key-encryption key. The blob names,
/// in clear, the org, the credential name, its generation, the key version and the key's
/// check value, and every one of them is authenticated:
///
/// ```
/// "SLCR" | format 1 | org len (u16) | org | name len (u16) | name | generation (u32)   ← identity
///        | key version (u32) | key check (8)                                          ← wrap header
///        | wrap nonce (12) | wrapped data key (32) | wrap tag (16)
///        | value nonce (12) | value len (u32) | value ciphertext | value tag (16)
/// ```
/// Associated data: the value's seal authenticates the identity; the data key's wrap
/// authenticates the identity and the wrap header. Re-wrapping for key rotation therefore
/// replaces only the wrap header and the wrapped key; the value ciphertext stays as it was and
/// the plaintext is never decrypted.
public enum CredentialEnvelope {
    public static let formatVersion: UInt8 = 1
    static let magic: [UInt8] = Array("SLCR".utf8)
    /// The largest value a credential may hold (a GCP service-account file is ~2.4 KB).
    public static let maximumValueSize = 64 * 1024
    /// Org and name are bounded so the length fields and a blob's size stay sane.
    static let maximumLabelSize = 1024

    /// What a blob says about itself, in clear. Parsing checks only the structure; nothing
    /// here is authenticated until the blob is opened.
    public struct Header: Sendable, Equatable {
        public var formatVersion: UInt8
        public var org: String
        public var name: String
        /// Which value of the credential this is: 1 when stored, +1 per rotation.
        public var generation: UInt32
        public var keyVersion: UInt32
        public var keyCheck: [UInt8]
    }

    // MARK: Sealing

    /// Seals `value` for `org`/`name` (generation `generation`) under `key`.
    public static func seal(
        _ value: SecretBytes, org: String, name: String, generation: UInt32,
        with key: KeyEncryptionKey
    ) throws(SecretsError) -> Data {
        guard value.count <= maximumValueSize else {
            throw SecretsError(.valueTooLarge, "the value of \(org)/\(name) is \(value.count) bytes; a credential holds at most \(maximumValueSize)")
        }
        try checkLabel(org, "org")
        try checkLabel(name, "credential name")
        let identity = identityBytes(org: org, name: name, generation: generation)
        let dataKey = SymmetricKey(size: .bits256)
        do {
            let valueBox = try value.withBytes { try AES.GCM.seal($0, using: dataKey, nonce: AES.GCM.Nonce(), authenticating: identity) }
            var blob = try wrapped(dataKey, identity: identity, under: key)
            blob.append(contentsOf: valueBox.nonce)
            blob.append(contentsOf: UInt32(valueBox.ciphertext.count).bigEndianBytes)
            blob.append(contentsOf: valueBox.ciphertext)
            blob.append(contentsOf: valueBox.tag)
            return Data(blob)
        } catch let error as SecretsError {
            throw error
        } catch {
            throw SecretsError(.sealVerifyFailed, "sealing \(org)/\(name) failed: \(error)")
        }
    }

    /// identity | wrap header | wrap nonce | wrapped key | wrap tag.
    private static func wrapped(_ dataKey: SymmetricKey, identity: [UInt8], under key: KeyEncryptionKey) throws -> [UInt8] {
        var blob = identity
        blob.append(contentsOf: key.version.bigEndianBytes)
        blob.append(contentsOf: key.check)
        let wrapBox = try dataKey.withUnsafeBytes { try AES.GCM.seal($0, using: key.key, nonce: AES.GCM.Nonce(), authenticating: blob) }
        blob.append(contentsOf: wrapBox.nonce)
        blob.append(contentsOf: wrapBox.ciphertext)
        blob.append(contentsOf: wrapBox.tag)
        return blob
    }

    // MARK: Opening

    /// Opens a blob stored as `org`/`name` (and, when given, as generation `generation`):
    /// checks the names in the blob first, so a blob copied to another org or name gets its
    /// own error, then the key (unknown, retired past grace, or not the one that wrapped it),
    /// then authenticates and decrypts the data key and the value.
    public static func open(
        _ blob: Data, org: String, name: String, generation: UInt32? = nil,
        keys: Keyring, at now: Date
    ) throws(SecretsError) -> SecretBytes {
        let parsed = try Parsed(blob)
        try parsed.check(org: org, name: name, generation: generation)
        // SymmetricKey zeroes its bytes when released.
        let dataKey = try unwrapDataKey(parsed, keys: keys, at: now)
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: parsed.valueNonce), ciphertext: parsed.valueCiphertext,
                tag: parsed.valueTag)
            var plaintext = try AES.GCM.open(box, using: dataKey, authenticating: parsed.identity)
            defer { plaintext.resetBytes(in: 0..<plaintext.count) }
            return SecretBytes(plaintext)
        } catch {
            throw SecretsError(.credentialTampered, "credential \(org)/\(name) was altered: its value fails authentication")
        }
    }

    /// Reads a blob's clear header (for listings and for deciding what to re-wrap).
    public static func header(of blob: Data) throws(SecretsError) -> Header {
        try Parsed(blob).header
    }

    // MARK: Re-wrapping

    /// The same blob with its data key unwrapped by the key that wrapped it and wrapped again
    /// by `keys.current`. The value ciphertext is carried over byte for byte, so the
    /// credential's plaintext is never decrypted. A blob already under the current key comes
    /// back unchanged.
    public static func rewrap(_ blob: Data, org: String, name: String, keys: Keyring, at now: Date) throws(SecretsError) -> Data {
        let parsed = try Parsed(blob)
        try parsed.check(org: org, name: name, generation: nil)
        let current = keys.current
        if parsed.header.keyVersion == current.version, parsed.header.keyCheck == current.check { return blob }
        let dataKey = try unwrapDataKey(parsed, keys: keys, at: now)
        var rewrapped: [UInt8]
        do {
            rewrapped = try wrapped(dataKey, identity: Array(parsed.identity), under: current)
        } catch {
            throw SecretsError(.sealVerifyFailed, "re-wrapping \(org)/\(name) failed: \(error)")
        }
        rewrapped.append(contentsOf: parsed.bytes[parsed.valueStart...])
        // Unwrap again with the new key and compare before anyone stores it.
        let check = try Parsed(Data(rewrapped))
        let again = try unwrapDataKey(check, keys: keys, at: now)
        let same = dataKey.withUnsafeBytes { first in again.withUnsafeBytes { SecretBytes.constantTimeEqual(first, $0) } }
        guard same, check.valueStart == parsed.identity.count + headerTail + wrapSize,
            check.bytes[check.valueStart...] == parsed.bytes[parsed.valueStart...]
        else {
            throw SecretsError(.sealVerifyFailed, "re-wrapping \(org)/\(name) did not give back the same data key; nothing was changed")
        }
        return Data(rewrapped)
    }

    // MARK: Layout

    /// key version (4) + key check (8).
    static let headerTail = 12
    /// wrap nonce (12) + wrapped key (32) + wrap tag (16).
    static let wrapSize = 60
    /// value nonce (12) + value length (4) + value tag (16), besides the ciphertext.
    static let valueOverhead = 32

    static func identityBytes(org: String, name: String, generation: UInt32) -> [UInt8] {
        var bytes = magic
        bytes.append(formatVersion)
        bytes.append(contentsOf: UInt16(org.utf8.count).bigEndianBytes)
        bytes.append(contentsOf: org.utf8)
        bytes.append(contentsOf: UInt16(name.utf8.count).bigEndianBytes)
        bytes.append(contentsOf: name.utf8)
        bytes.append(contentsOf: generation.bigEndianBytes)
        return bytes
    }

    private static func checkLabel(_ label: String, _ what: String) throws(SecretsError) {
        guard !label.isEmpty, label.utf8.count <= maximumLabelSize else {
            throw SecretsError(.nameInvalid, "a \(what) must have 1 to \(maximumLabelSize) bytes")
        }
    }

    private static func unwrapDataKey(_ parsed: Parsed, keys: Keyring, at now: Date) throws(SecretsError) -> SymmetricKey {
        let header = parsed.header
        let where_ = "\(header.org)/\(header.name)"
        let key = try keys.key(version: header.keyVersion, at: now)
        guard key.check == header.keyCheck else {
            let cause =
                keys.origin == .passphrase
                ? "a wrong passphrase (or salt) in \(KeySource.Variable.passphrase) / \(KeySource.Variable.salt)"
                : "a different keyring than the one it was stored with"
            throw SecretsError(
                .keyMismatch,
                "credential \(where_) was wrapped by key version \(header.keyVersion) with check value \(header.keyCheck.hexString), but \(keys.origin) has check value \(key.checkHex) for that version: \(cause)"
            )
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: parsed.wrapNonce), ciphertext: parsed.wrappedKey, tag: parsed.wrapTag)
            var bytes = try AES.GCM.open(box, using: key.key, authenticating: parsed.wrapAAD)
            defer { bytes.resetBytes(in: 0..<bytes.count) }
            return SymmetricKey(data: bytes)
        } catch {
            throw SecretsError(.credentialTampered, "credential \(where_) was altered: its wrapped data key fails authentication")
        }
    }

    /// A blob split into its fields; every length is checked against the blob's size.
    struct Parsed {
        let bytes: [UInt8]
        let header: Header
        let identity: ArraySlice<UInt8>
        let wrapAAD: ArraySlice<UInt8>
        let wrapNonce: ArraySlice<UInt8>
        let wrappedKey: ArraySlice<UInt8>
        let wrapTag: ArraySlice<UInt8>
        let valueStart: Int
        let valueNonce: ArraySlice<UInt8>
        let valueCiphertext: ArraySlice<UInt8>
        let valueTag: ArraySlice<UInt8>

        init(_ blob: Data) throws(SecretsError) {
            let bytes = [UInt8](blob)
            self.bytes = bytes
            var reader = ByteReader(bytes)
            func truncated() -> SecretsError {
                SecretsError(
                    .credentialTampered,
                    "the stored credential is not a whole Sluice credential blob (\(bytes.count) bytes): it was truncated or altered")
            }
            guard let magicBytes = reader.take(4), Array(magicBytes) == CredentialEnvelope.magic else {
                throw SecretsError(
                    .credentialTampered, "the stored credential does not start with a Sluice credential header: it was altered or is not a credential"
                )
            }
            guard let version = reader.take(1)?.first else { throw truncated() }
            guard version == CredentialEnvelope.formatVersion else {
                throw SecretsError(
                    .credentialFormatUnsupported,
                    "the stored credential has format version \(version); this Sluice reads version \(CredentialEnvelope.formatVersion)")
            }
            guard let orgLength = reader.uint16(), orgLength > 0, let orgBytes = reader.take(Int(orgLength)),
                let org = String(validating: orgBytes, as: UTF8.self),
                let nameLength = reader.uint16(), nameLength > 0, let nameBytes = reader.take(Int(nameLength)),
                let name = String(validating: nameBytes, as: UTF8.self),
                let generation = reader.uint32()
            else { throw truncated() }
            identity = bytes[..<reader.offset]
            guard let keyVersion = reader.uint32(), let keyCheck = reader.take(8) else { throw truncated() }
            wrapAAD = bytes[..<reader.offset]
            guard let wrapNonce = reader.take(12), let wrappedKey = reader.take(32), let wrapTag = reader.take(16) else { throw truncated() }
            self.wrapNonce = wrapNonce
            self.wrappedKey = wrappedKey
            self.wrapTag = wrapTag
            valueStart = reader.offset
            guard let valueNonce = reader.take(12), let valueLength = reader.uint32(), valueLength <= CredentialEnvelope.maximumValueSize,
                let valueCiphertext = reader.take(Int(valueLength)), let valueTag = reader.take(16)
            else { throw truncated() }
            guard reader.offset == bytes.count else {
                throw SecretsError(
                    .credentialTampered, "the stored credential has \(bytes.count - reader.offset) bytes after its end: it was altered")
            }
            self.valueNonce = valueNonce
            self.valueCiphertext = valueCiphertext
            self.valueTag = valueTag
            header = Header(
                formatVersion: version, org: org, name: name, generation: generation, keyVersion: keyVersion,
                keyCheck: Array(keyCheck))
        }

        /// The names in the blob against where it is stored: a copy elsewhere is named as such.
        func check(org: String, name: String, generation: UInt32?) throws(SecretsError) {
            guard header.org == org else {
                throw SecretsError(
                    .credentialWrongOrg,
                    "credential \(org)/\(name) holds a blob sealed for org '\(header.org)'; a credential can't move between orgs (store it again in \(org))"
                )
            }
            guard header.name == name else {
                throw SecretsError(
                    .credentialWrongName,
                    "credential \(org)/\(name) holds a blob sealed as '\(header.name)'; a credential can't be renamed or copied (store it again under \(name))"
                )
            }
            if let generation, header.generation != generation {
                throw SecretsError(
                    .credentialTampered,
                    "credential \(org)/\(name) is stored as value \(generation) but its blob is value \(header.generation): blobs were swapped or altered"
                )
            }
        }
    }
}

/// Reads big-endian fields off a byte array, returning nil past the end.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func uint16() -> UInt16? {
        take(2).map { $0.reduce(0) { $0 << 8 | UInt16($1) } }
    }

    mutating func uint32() -> UInt32? {
        take(4).map { $0.reduce(0) { $0 << 8 | UInt32($1) } }
    }
}

extension FixedWidthInteger {
    var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }
}
