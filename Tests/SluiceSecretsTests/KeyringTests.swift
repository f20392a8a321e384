import Foundation
import Testing

@testable import SluiceSecrets

/// The keyring file and the passphrase-derived key: where keys come from, and every way that
/// can go wrong.
struct KeyringFileTests {
    let start = Date(timeIntervalSince1970: 1_780_000_000)

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func initWritesAKeyringOnlyItsOwnerCanReadAndItLoadsBack() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = KeyringFile(path: folder.appendingPathComponent(".sluice/keyring.json").path)
        let created = try file.create(at: start)
        #expect(try mode(file.path) == 0o600)
        let loaded = try file.load()
        #expect(loaded.current.version == 1)
        #expect(loaded.current.check == created.current.check)
        #expect(loaded.entries.count == 1)
        // No temporary files left beside it.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(".sluice").path).sorted()
        #expect(names == ["keyring.json", "keyring.json.lock"])

        #expect(secretsErrorCode { _ = try file.create(at: start) } == .keyringExists)
        #expect(try file.load().current.check == created.current.check)
    }

    @Test func aKeyringOthersCanReadIsRefused() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = KeyringFile(path: folder.appendingPathComponent("keyring.json").path)
        _ = try file.create(at: start)
        for mode in [0o644, 0o640, 0o604, 0o660, 0o666] {
            chmod(file.path, mode_t(mode))
            do {
                _ = try file.load()
                Issue.record("mode \(String(mode, radix: 8)) was accepted")
            } catch {
                #expect(error.code == .keyringPermissions)
                #expect(error.message.contains("chmod 600"))
                #expect(error.message.contains(String(mode, radix: 8)))
            }
        }
        chmod(file.path, 0o400)
        #expect(try file.load().current.version == 1)
    }

    @Test func aMissingKeyringSaysHowToCreateOne() throws {
        let file = KeyringFile(path: "/nonexistent/sluice/keyring.json")
        do {
            _ = try file.load()
            Issue.record("loaded a keyring that does not exist")
        } catch {
            #expect(error.code == .keyringMissing)
            #expect(error.message.contains("sluice keys init"))
        }
    }

    @Test func corruptKeyringsAreRefusedWithWhatIsWrong() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = KeyringFile(path: folder.appendingPathComponent("keyring.json").path)
        _ = try file.create(at: start)
        _ = try file.rotate(at: start.addingTimeInterval(60), grace: .seconds(3600))
        let good = try String(contentsOfFile: file.path, encoding: .utf8)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(good.utf8)) as? [String: Any])
        let keys = try #require(document["keys"] as? [[String: Any]])

        func variant(_ change: (inout [String: Any]) -> Void) -> String {
            var copy = document
            change(&copy)
            return String(decoding: try! JSONSerialization.data(withJSONObject: copy), as: UTF8.self)
        }
        func alteredKey(_ index: Int, _ change: (inout [String: Any]) -> Void) -> String {
            variant { document in
                var list = keys
                change(&list[index])
                document["keys"] = list
            }
        }
        let material = keys[1]["material"] as! String
        var flipped = [UInt8](Data(base64Encoded: material)!)
        flipped[5] ^= 0x10
        let cases: [(String, String, String)] = [
            ("empty file", "", "empty"),
            ("whitespace", "  \n", "empty"),
            ("not JSON", "sluice keyring v1\n", "not valid JSON"),
            ("truncated", String(good.prefix(good.count / 2)), "not valid JSON"),
            ("a list", "[]", "JSON object"),
            ("another format", variant { $0["format"] = "other" }, "\"format\""),
            ("a newer format", variant { $0["format_version"] = 2 }, "format_version 2"),
            ("no keys", variant { $0["keys"] = [] }, "holds no keys"),
            ("keys not a list", variant { $0["keys"] = "x" }, "\"keys\""),
            ("bad version", alteredKey(0) { $0["version"] = -1 }, "keys[0].version"),
            ("duplicate version", alteredKey(0) { $0["version"] = 2 }, "twice"),
            ("bad status", alteredKey(0) { $0["status"] = "sleeping" }, "keys[0].status"),
            ("two active", alteredKey(0) { $0["status"] = "active" }, "2 active keys"),
            (
                "no active",
                alteredKey(1) {
                    $0["status"] = "retired"; $0["retired_at"] = "2026-01-01T00:00:00Z"; $0["usable_until"] = "2026-01-02T00:00:00Z"
                }, "0 active keys"
            ),
            ("retired without grace", alteredKey(0) { $0["usable_until"] = nil }, "usable_until"),
            ("bad date", alteredKey(0) { $0["created_at"] = "yesterday" }, "created_at"),
            ("bad base64", alteredKey(1) { $0["material"] = "***" }, "material"),
            ("short key", alteredKey(1) { $0["material"] = Data(repeating: 1, count: 16).base64EncodedString() }, "material"),
            ("altered key", alteredKey(1) { $0["material"] = Data(flipped).base64EncodedString() }, "check value"),
            ("no check", alteredKey(1) { $0["check"] = nil }, "check value"),
        ]
        for (label, text, expected) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file.path))
            chmod(file.path, 0o600)
            do {
                _ = try file.load()
                Issue.record("\(label): accepted")
            } catch {
                #expect(error.code == .keyringCorrupt, "\(label): \(error)")
                #expect(error.message.contains(expected), "\(label): \(error.message)")
                #expect(!error.message.contains(material), "\(label): the message shows key material")
            }
            // A failed rotation leaves the corrupt file as it was: nothing is half-written.
            #expect(secretsErrorCode { _ = try file.rotate(at: start, grace: .seconds(60)) } == .keyringCorrupt)
            #expect(try String(contentsOfFile: file.path, encoding: .utf8) == text, "\(label)")
        }
    }

    @Test func rotationRetiresTheActiveKeyWithItsGracePeriod() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = KeyringFile(path: folder.appendingPathComponent("keyring.json").path)
        let first = try file.create(at: start)
        let rotatedAt = start.addingTimeInterval(100)
        let rotated = try file.rotate(at: rotatedAt, grace: .seconds(7 * 86400))
        #expect(rotated.current.version == 2)
        let loaded = try file.load()
        #expect(loaded.entries.map(\.version) == [1, 2])
        let retired = loaded.entries[0]
        #expect(retired.status == .retired)
        #expect(retired.key.check == first.current.check)
        #expect(abs(retired.retiredAt!.timeIntervalSince(rotatedAt)) < 0.01)
        #expect(abs(retired.usableUntil!.timeIntervalSince(rotatedAt.addingTimeInterval(7 * 86400))) < 0.01)
        #expect(retired.state(at: rotatedAt) == "retired")
        #expect(retired.state(at: rotatedAt.addingTimeInterval(8 * 86400)) == "expired")
        #expect(try mode(file.path) == 0o600)
        #expect(secretsErrorCode { _ = try file.rotate(at: start, grace: .zero) } == .timeInvalid)
    }

    /// Rotations from many threads at once each add one key: the lock serializes them and the
    /// rename means no reader ever sees half a file.
    @Test func concurrentRotationsEachAddOneKey() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("keyring.json").path
        _ = try KeyringFile(path: path).create(at: start)
        let rotations = 8
        let start = self.start
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<rotations {
                group.addTask {
                    _ = try KeyringFile(path: path).rotate(at: start.addingTimeInterval(Double(index)), grace: .seconds(3600))
                }
                group.addTask {
                    // Readers in between always find a whole keyring.
                    _ = try KeyringFile(path: path).load()
                }
            }
            try await group.waitForAll()
        }
        let keyring = try KeyringFile(path: path).load()
        #expect(keyring.entries.map(\.version) == Array(1...UInt32(rotations + 1)))
        #expect(keyring.entries.filter { $0.status == .active }.count == 1)
        #expect(keyring.current.version == UInt32(rotations + 1))
    }
}

struct PassphraseKeyTests {
    let passphrase = "correct horse battery staple"
    let salt = "6f1c0b3d5e7a9f2c4b8d0e1f3a5c7e9b"

    @Test func thePassphraseNeedsASaltFromTheEnvironment() {
        func code(_ environment: [String: String], keyring: String? = nil) -> SecretsError.Code? {
            secretsErrorCode { _ = try KeySource.resolve(keyringPath: keyring, environment: environment, defaultKeyringPath: "k.json") }
        }
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase]) == .saltMissing)
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": ""]) == .saltMissing)
        #expect(code(["SLUICE_KEY_SALT": salt]) == .passphraseMissing)
        #expect(code(["SLUICE_KEY_PASSPHRASE": "short", "SLUICE_KEY_SALT": salt]) == .keyMaterialWeak)
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": "tiny"]) == .keyMaterialWeak)
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt], keyring: "mine.json") == .keySourceAmbiguous)
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt, "SLUICE_KEYRING": "k.json"]) == .keySourceAmbiguous)
        #expect(code(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt]) == nil)
    }

    @Test func theKeyringPathComesFromTheFlagThenTheEnvironmentThenTheProject() throws {
        func path(_ flag: String?, _ environment: [String: String]) throws -> String? {
            if case .keyringFile(let file) = try KeySource.resolve(
                keyringPath: flag, environment: environment,
                defaultKeyringPath: ".sluice/keyring.json")
            {
                return file.path
            }
            return nil
        }
        #expect(try path("flag.json", ["SLUICE_KEYRING": "env.json"]) == "flag.json")
        #expect(try path(nil, ["SLUICE_KEYRING": "env.json"]) == "env.json")
        #expect(try path(nil, [:]) == ".sluice/keyring.json")
    }

    @Test func theSamePassphraseOpensAndAWrongOneIsNamed() throws {
        let right = try KeySource.resolve(
            keyringPath: nil, environment: ["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt],
            defaultKeyringPath: "k.json"
        ).load()
        let blob = try CredentialEnvelope.seal(SecretBytes(utf8: openAIKey), org: "acme", name: "openai/key", generation: 1, with: right.current)
        let now = Date()
        let again = try PassphraseKey(passphrase: passphrase, salt: salt).keyring()
        #expect(try CredentialEnvelope.open(blob, org: "acme", name: "openai/key", keys: again, at: now).isEqual(to: SecretBytes(utf8: openAIKey)))

        for (wrongPassphrase, wrongSalt) in [(passphrase + "!", salt), (passphrase, salt + "0")] {
            let wrong = try PassphraseKey(passphrase: wrongPassphrase, salt: wrongSalt).keyring()
            do {
                _ = try CredentialEnvelope.open(blob, org: "acme", name: "openai/key", keys: wrong, at: now)
                Issue.record("a wrong passphrase opened the credential")
            } catch {
                #expect(error.code == .keyMismatch)
                #expect(error.message.contains("wrong passphrase"))
                #expect(!error.message.contains(passphrase))
            }
        }
    }
}
