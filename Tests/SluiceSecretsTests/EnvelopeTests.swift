import Foundation
import Testing

@testable import SluiceSecrets

/// The blob format of docs/encryption.md: what opens, and what every kind of damage gives.
struct EnvelopeTests {
    let start = Date(timeIntervalSince1970: 1_780_000_000)

    func keyring() -> Keyring {
        Keyring.generate(at: start, origin: .file("test-keyring.json"))
    }

    @Test func sealedValueOpensForItsOrgAndName() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: openAIKey), org: "acme", name: "openai/admin_key", generation: 1,
            with: keys.current)
        let value = try CredentialEnvelope.open(blob, org: "acme", name: "openai/admin_key", generation: 1, keys: keys, at: start)
        #expect(value.isEqual(to: SecretBytes(utf8: openAIKey)))
        // The plaintext is nowhere in the blob; the names are, in clear, by design.
        #expect(blob.range(of: Data(openAIKey.utf8)) == nil)
        let header = try CredentialEnvelope.header(of: blob)
        #expect(
            header
                == CredentialEnvelope.Header(
                    formatVersion: 1, org: "acme", name: "openai/admin_key", generation: 1,
                    keyVersion: 1, keyCheck: keys.current.check))
        // Two seals of one value differ (fresh data key and nonces).
        let again = try CredentialEnvelope.seal(
            SecretBytes(utf8: openAIKey), org: "acme", name: "openai/admin_key", generation: 1,
            with: keys.current)
        #expect(again != blob)
        #expect(blob.count == 4 + 1 + 2 + 4 + 2 + 16 + 4 + 4 + 8 + 60 + 12 + 4 + openAIKey.utf8.count + 16)
    }

    /// The fields of a blob by byte range, following docs/encryption.md.
    func regions(of blob: Data, org: String, name: String) -> [(name: String, range: Range<Int>, allowed: Set<SecretsError.Code>)] {
        let o = org.utf8.count, n = name.utf8.count
        var offset = 0
        func next(_ count: Int) -> Range<Int> {
            defer { offset += count }
            return offset..<(offset + count)
        }
        let tampered: Set<SecretsError.Code> = [.credentialTampered]
        // A length that changes makes every later field move: the blob no longer parses, or
        // (rarely) parses into other names.
        let lengths: Set<SecretsError.Code> = [.credentialTampered, .credentialWrongOrg, .credentialWrongName]
        var result: [(String, Range<Int>, Set<SecretsError.Code>)] = [
            ("magic", next(4), tampered),
            ("format version", next(1), [.credentialFormatUnsupported]),
            ("org length", next(2), lengths),
            ("org", next(o), [.credentialWrongOrg, .credentialTampered]),
            ("name length", next(2), lengths),
            ("name", next(n), [.credentialWrongName, .credentialTampered]),
            ("generation", next(4), tampered),
            ("key version", next(4), [.keyUnknown]),
            ("key check", next(8), [.keyMismatch]),
            ("wrap nonce", next(12), tampered),
            ("wrapped data key", next(32), tampered),
            ("wrap tag", next(16), tampered),
            ("value nonce", next(12), tampered),
            ("value length", next(4), tampered),
        ]
        let ciphertextLength = blob.count - offset - 16
        result.append(("value ciphertext", next(ciphertextLength), tampered))
        result.append(("value tag", next(16), tampered))
        #expect(offset == blob.count)
        return result
    }

    @Test func flippingAnyBitOfTheBlobIsRefusedWithTheErrorOfItsRegion() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: anthropicKey), org: "acme", name: "anthropic/key", generation: 3,
            with: keys.current)
        var opened = 0
        for region in regions(of: blob, org: "acme", name: "anthropic/key") {
            for index in region.range {
                for bit in 0..<8 {
                    var damaged = blob
                    damaged[index] ^= UInt8(1 << bit)
                    let code = secretsErrorCode {
                        _ = try CredentialEnvelope.open(damaged, org: "acme", name: "anthropic/key", generation: 3, keys: keys, at: start)
                    }
                    if code == nil { opened += 1 }
                    #expect(
                        code.map { region.allowed.contains($0) } == true,
                        "\(region.name) byte \(index) bit \(bit): \(code.map(\.rawValue) ?? "opened")")
                }
            }
        }
        #expect(opened == 0)
    }

    @Test func truncatedOrExtendedBlobsAreTampered() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: "hunter2-but-longer"), org: "acme", name: "db/password",
            generation: 1, with: keys.current)
        for length in 0..<blob.count {
            let code = secretsErrorCode {
                _ = try CredentialEnvelope.open(blob.prefix(length), org: "acme", name: "db/password", keys: keys, at: start)
            }
            #expect(code == .credentialTampered, "truncated to \(length): \(code.map(\.rawValue) ?? "opened")")
        }
        let extended = blob + Data([0])
        #expect(
            secretsErrorCode { _ = try CredentialEnvelope.open(extended, org: "acme", name: "db/password", keys: keys, at: start) }
                == .credentialTampered)
        #expect(
            secretsErrorCode { _ = try CredentialEnvelope.open(Data(), org: "acme", name: "db/password", keys: keys, at: start) }
                == .credentialTampered)
    }

    @Test func aBlobCopiedToAnotherOrgOrNameIsRefusedByName() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: openAIKey), org: "acme", name: "openai/key", generation: 1,
            with: keys.current)
        let wrongOrg = secretsErrorCode { _ = try CredentialEnvelope.open(blob, org: "globex", name: "openai/key", keys: keys, at: start) }
        #expect(wrongOrg == .credentialWrongOrg)
        let wrongName = secretsErrorCode { _ = try CredentialEnvelope.open(blob, org: "acme", name: "openai/other", keys: keys, at: start) }
        #expect(wrongName == .credentialWrongName)
        let wrongGeneration = secretsErrorCode {
            _ = try CredentialEnvelope.open(blob, org: "acme", name: "openai/key", generation: 2, keys: keys, at: start)
        }
        #expect(wrongGeneration == .credentialTampered)
    }

    /// Someone who rewrites the clear names to match where they copied the blob still fails:
    /// the names are bound as associated data, not only compared.
    @Test func rewritingTheClearNamesDoesNotMoveABlob() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: openAIKey), org: "acme", name: "openai/key", generation: 1,
            with: keys.current)
        var moved = [UInt8](blob)
        let orgStart = 7
        moved.replaceSubrange(orgStart..<(orgStart + 4), with: Array("acmf".utf8))
        #expect(
            secretsErrorCode { _ = try CredentialEnvelope.open(Data(moved), org: "acmf", name: "openai/key", keys: keys, at: start) }
                == .credentialTampered)

        // Another key version with its check value: the wrap's associated data still differs.
        let rotated = try keys.rotated(at: start, grace: .seconds(3600))
        var relabelled = [UInt8](blob)
        let keyStart = 4 + 1 + 2 + 4 + 2 + "openai/key".utf8.count + 4
        relabelled.replaceSubrange(keyStart..<(keyStart + 4), with: UInt32(2).bigEndianBytes)
        relabelled.replaceSubrange((keyStart + 4)..<(keyStart + 12), with: rotated.current.check)
        #expect(
            secretsErrorCode { _ = try CredentialEnvelope.open(Data(relabelled), org: "acme", name: "openai/key", keys: rotated, at: start) }
                == .credentialTampered)
    }

    @Test func rewrapMovesTheDataKeyToTheNewKeyWithoutTouchingTheValue() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: openAIKey), org: "acme", name: "openai/key", generation: 4,
            with: keys.current)
        let rotated = try keys.rotated(at: start.addingTimeInterval(60), grace: .seconds(3600))
        let rewrapped = try CredentialEnvelope.rewrap(blob, org: "acme", name: "openai/key", keys: rotated, at: start.addingTimeInterval(60))
        #expect(try CredentialEnvelope.header(of: rewrapped).keyVersion == 2)
        #expect(try CredentialEnvelope.header(of: rewrapped).generation == 4)
        // The value part (nonce, length, ciphertext, tag) is byte for byte the same.
        let valuePart = openAIKey.utf8.count + 32
        #expect(rewrapped.suffix(valuePart) == blob.suffix(valuePart))
        #expect(rewrapped.count == blob.count)
        // Rewrapping again is a no-op.
        #expect(try CredentialEnvelope.rewrap(rewrapped, org: "acme", name: "openai/key", keys: rotated, at: start) == rewrapped)

        let afterGrace = start.addingTimeInterval(60 + 3601)
        let value = try CredentialEnvelope.open(rewrapped, org: "acme", name: "openai/key", keys: rotated, at: afterGrace)
        #expect(value.isEqual(to: SecretBytes(utf8: openAIKey)))
    }

    @Test func aRetiredKeyDecryptsDuringItsGracePeriodThenIsRefused() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(
            SecretBytes(utf8: "s3cret-value"), org: "acme", name: "db/password", generation: 1,
            with: keys.current)
        let rotatedAt = start.addingTimeInterval(10)
        let rotated = try keys.rotated(at: rotatedAt, grace: .seconds(3600))
        let within = try CredentialEnvelope.open(blob, org: "acme", name: "db/password", keys: rotated, at: rotatedAt.addingTimeInterval(3599))
        #expect(within.isEqual(to: SecretBytes(utf8: "s3cret-value")))
        do {
            _ = try CredentialEnvelope.open(blob, org: "acme", name: "db/password", keys: rotated, at: rotatedAt.addingTimeInterval(3600))
            Issue.record("a key past its grace period opened a credential")
        } catch {
            #expect(error.code == .keyRetired)
            #expect(error.message.contains("key version 1 was retired"))
            #expect(error.message.contains("grace period ended"))
        }
        // Nor can a retired key past its grace re-wrap.
        #expect(
            secretsErrorCode {
                _ = try CredentialEnvelope.rewrap(blob, org: "acme", name: "db/password", keys: rotated, at: rotatedAt.addingTimeInterval(7200))
            } == .keyRetired)
    }

    @Test func aKeyTheKeyringDoesNotHaveOrADifferentKeyringIsNamedAsSuch() throws {
        let keys = keyring()
        let blob = try CredentialEnvelope.seal(SecretBytes(utf8: "value-1"), org: "acme", name: "x", generation: 1, with: keys.current)
        // Another keyring, also at version 1: same version, other key.
        let other = keyring()
        #expect(secretsErrorCode { _ = try CredentialEnvelope.open(blob, org: "acme", name: "x", keys: other, at: start) } == .keyMismatch)
        // A blob from a newer keyring than the one at hand.
        let newer = try keys.rotated(at: start, grace: .seconds(60))
        let newBlob = try CredentialEnvelope.seal(SecretBytes(utf8: "value-2"), org: "acme", name: "x", generation: 2, with: newer.current)
        #expect(secretsErrorCode { _ = try CredentialEnvelope.open(newBlob, org: "acme", name: "x", keys: keys, at: start) } == .keyUnknown)
    }

    @Test func sealingRefusesOversizedValues() throws {
        let keys = keyring()
        let big = SecretBytes([UInt8](repeating: 0x41, count: CredentialEnvelope.maximumValueSize + 1))
        #expect(
            secretsErrorCode { _ = try CredentialEnvelope.seal(big, org: "acme", name: "x", generation: 1, with: keys.current) }
                == .valueTooLarge)
    }

    @Test func secretBytesWipeAndNeverPrintThemselves() {
        let value = SecretBytes(utf8: openAIKey)
        #expect("\(value)" == "<secret, \(openAIKey.utf8.count) bytes>")
        var dumped = ""
        dump(value, to: &dumped)
        #expect(!dumped.contains("sk-proj"))
        #expect(!String(reflecting: value).contains("sk-proj"))
        value.wipe()
        #expect(value.isWiped)
        #expect(value.count == 0)
        value.wipe()
        #expect(SecretBytes(utf8: "a\n").droppingFinalNewline().isEqual(to: SecretBytes(utf8: "a")))
        #expect(SecretBytes(utf8: "a\r\n").droppingFinalNewline().isEqual(to: SecretBytes(utf8: "a")))
        #expect(SecretBytes(utf8: "a\n\n").droppingFinalNewline().isEqual(to: SecretBytes(utf8: "a\n")))
    }
}
