import Foundation
import Testing

@testable import SluiceModel

/// A live secret never survives in part: pieces of 12 bytes or more are masked wherever they
/// appear, and values are masked before a message cuts them short.
struct RedactionTests {
    /// A secret no other test registers, and the owner it is registered for.
    func secret() -> (value: String, owner: String) {
        let random = String((0..<40).map { _ in "abcdefghijkmnopqrstuvwxyz23456789".randomElement()! })
        return ("tok_" + random, "test-\(UUID().uuidString)")
    }

    /// The 8-byte windows of `value` that appear in `text`.
    func pieces(of value: String, in text: String) -> [String] {
        let characters = Array(value)
        return (0...(characters.count - 8)).map { String(characters[$0..<($0 + 8)]) }.filter { text.contains($0) }
    }

    @Test func piecesOfALiveSecretAreMaskedWhereverTheyAppear() {
        let (value, owner) = secret()
        let redactor = SecretRedactor()
        redactor.register(value, owner: owner)
        let head = String(value.prefix(20)), middle = String(Array(value)[10..<30]), tail = String(value.suffix(12))
        let text = "the provider said: \(head)… and later \(middle), type '\(tail)'"
        let masked = redactor.redact(text)
        #expect(pieces(of: value, in: masked).isEmpty, "\(masked)")
        #expect(masked == "the provider said: [redacted]… and later [redacted], type '[redacted]'")
        // Shorter than a piece: ordinary text that happens to share a few letters stays.
        #expect(redactor.redact("#" + String(value.prefix(11)) + "#") == "#" + String(value.prefix(11)) + "#")
        redactor.forget(owner: owner)
        #expect(redactor.redact(text) == text)
    }

    @Test func aMessageThatCutsAValueNeverKeepsAPieceOfASecret() {
        let (value, owner) = secret()
        SecretRedactor.shared.register(value, owner: owner)
        defer { SecretRedactor.shared.forget(owner: owner) }
        // The secret starts where a 60-character cut leaves only its first few characters.
        for offset in [0, 30, 48, 51, 55] {
            let text = String(repeating: "x", count: offset) + value + " more"
            let quoted = shown(text)
            #expect(pieces(of: value, in: quoted).isEmpty, "offset \(offset): \(quoted)")
            #expect(quoted.contains("[reda"), "the mask, if cut itself, shows: offset \(offset): \(quoted)")
        }
    }

    @Test func secretsInDataAreMaskedButOrdinaryValuesAreNot() {
        let (value, owner) = secret()
        let redactor = SecretRedactor()
        #expect(redactor.holdsNoLiveValues)
        redactor.register(value, owner: owner)
        #expect(!redactor.holdsNoLiveValues)
        #expect(redactor.redactLiveValues("note: \(value)") == "note: [redacted]")
        // What only looks like a key (and is data) is left to the detector of messages.
        #expect(redactor.redactLiveValues("sk-proj-0123456789abcdefghijklmnopqrstuv") == "sk-proj-0123456789abcdefghijklmnopqrstuv")
        // Multi-byte text around a piece stays whole.
        let text = "é" + String(value.dropFirst(3).prefix(15)) + "ü"
        #expect(redactor.redactLiveValues(text) == "é[redacted]ü")
    }
}
