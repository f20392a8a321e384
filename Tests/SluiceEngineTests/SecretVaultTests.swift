import Foundation
import Logging
import SluiceModel
import SluiceSQLite
import SluiceSecrets
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceEngine

/// Puts `value` into the vault as `secrets.<as>` for `ttl`, like kms_decrypt without the
/// keyring, and keeps the buffer so tests can see it wiped.
final class PutSecretProcessor: Processor, Sendable {
    let buffers = Mutex([SecretBytes]())

    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_put_secret", summary: "s", description: "d",
            fields: [
                FieldSpec("as", .identifier, .required, role: .definesSecret, description: "name"),
                FieldSpec("value", .string, .required, description: "the value"),
                FieldSpec("ttl", .duration, .required, description: "lifetime"),
            ],
            outputs: [OutputSpec("expires_at", "timestamp", "x")], example: "", capabilities: [.credentials])
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let ttl = try DurationText.parse(step.config["ttl"]?.scalarText ?? "1s")
        let bytes = SecretBytes(Array((step.config["value"]?.scalarText ?? "").utf8))
        buffers.withLock { $0.append(bytes) }
        let expiresAt = Date().addingTimeInterval(ttl.timeInterval)
        await step.services.secrets?.vault.put(step.config["as"]?.scalarText ?? "", bytes, expiresAt: expiresAt, credential: "test/key")
        return ["expires_at": .string("\(expiresAt)")]
    }
}

/// Uses a secret: says whether it got the expected value, and when told to, fails with the
/// secret inside its error message, its log line and its output, the way careless code would.
struct UseSecretProcessor: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "test_use_secret", summary: "s", description: "d",
            fields: [
                FieldSpec("key", .string, .required, secret: .required, description: "the secret"),
                FieldSpec("expected", .string, description: "what it should be"),
                FieldSpec("leak", .boolean, description: "fail and leak it"),
            ],
            outputs: [OutputSpec("matches", "boolean", "x"), OutputSpec("echo", "string", "x")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let key = step.config["key"]?.scalarText ?? ""
        if step.config["leak"]?.bool == true {
            step.logger.error("calling the provider with \(key)", metadata: ["header": "Authorization: Bearer \(key)"])
            throw StepFailure("provider_refused", "the provider refused key \(key) (sent as Authorization: Bearer \(key))")
        }
        return ["matches": .bool(key == step.config["expected"]?.scalarText), "echo": .string("key=\(key)")]
    }
}

struct SecretVaultTests {
    static let secret = "vault-test-value-7Qm2Xr9Lp4Kd8Zs1"

    struct Setup {
        let folder: URL
        let store: SQLiteRunStore
        let putter = PutSecretProcessor()
        let log = LogCapture()
        let catalog: ProcessorEnvironment

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-vault-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            store = try SQLiteRunStore(path: folder.appendingPathComponent("runs.sqlite").path)
            catalog = ProcessorEnvironment([putter, UseSecretProcessor(), SleepProcessor(), EchoProcessor()])
        }

        func start(_ yaml: String) async throws -> RunRecord {
            let result = PipelineLoader(registry: catalog.registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
            #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
            let plan = try PipelinePlan.build(try #require(result.definition)).get()
            var options = ExecutorOptions()
            options.heartbeatInterval = .milliseconds(100)
            let executor = Executor(processors: catalog, store: store, options: options, logger: log.logger)
            return try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", env: [:]))
        }

        /// Every byte the run store holds on disk.
        func storeBytes() throws -> Data {
            var data = Data()
            for suffix in ["", "-wal"] {
                if let bytes = FileManager.default.contents(atPath: folder.appendingPathComponent("runs.sqlite\(suffix)").path) {
                    data.append(bytes)
                }
            }
            return data
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    @Test func aLiveSecretReachesTheStepThatUsesItAndIsWipedWhenTheRunEnds() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let run = try await setup.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m }
            steps:
              - { id: decrypt, uses: test_put_secret, with: { as: key, value: "\(Self.secret)", ttl: 1m } }
              - { id: use, uses: test_use_secret, with: { key: "${{ secrets.key }}", expected: "\(Self.secret)" } }
            """)
        #expect(run.state == .succeeded, "\(run.reason)")
        let steps = try await setup.store.steps(of: run.id)
        #expect(steps.first { $0.stepID == "use" }?.outputs["matches"] == .bool(true))
        // The output that carried the value was masked before it was stored.
        #expect(steps.first { $0.stepID == "use" }?.outputs["echo"] == .string("key=[redacted]"))
        #expect(setup.putter.buffers.withLock { $0.allSatisfy(\.isWiped) })
    }

    @Test func aSecretThatExpiredIsClearedAndTheStepUsingItFailsNamingItNotItsValue() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let run = try await setup.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m, retry: { attempts: 3, initial_delay: 10ms } }
            steps:
              - { id: decrypt, uses: test_put_secret, with: { as: key, value: "\(Self.secret)", ttl: 150ms } }
              - { id: wait, uses: test_sleep, needs: [decrypt], with: { for: 400ms } }
              - { id: use, uses: test_use_secret, needs: [wait], with: { key: "${{ secrets.key }}" } }
            """)
        #expect(run.state == .failed)
        let use = try #require(try await setup.store.steps(of: run.id).first { $0.stepID == "use" })
        #expect(use.state == .failed)
        // Cleared after the step that outlived it (the wait), so the use finds it gone and
        // says which; a secret still held past its TTL is `secret_expired` (tested below).
        #expect(use.errorCode == "secret_missing")
        #expect(
            use.reason.contains("secret 'key' is not in the vault") && use.reason.contains("it expired and was cleared"),
            "\(use.reason)")
        #expect(use.attempt == 1, "an expired secret is not retried")
        #expect(!use.reason.contains(Self.secret))
        #expect(setup.putter.buffers.withLock { $0.allSatisfy(\.isWiped) })
    }

    @Test func anExpiredSecretIsRefusedBeforeTheStepRuns() async throws {
        let vault = SecretVault(owner: "r_test_expiry")
        defer { Task { await vault.clearAll() } }
        await vault.put("key", SecretBytes(Array(Self.secret.utf8)), expiresAt: Date().addingTimeInterval(-1), credential: "openai/admin")
        await #expect {
            _ = try await vault.values(for: ["key"], step: "fetch")
        } throws: { error in
            let failure = error as? StepFailure
            return failure?.code == "secret_expired" && failure?.message.contains("secret 'key' (credential 'openai/admin') expired at") == true
                && failure?.message.contains("before step 'fetch'") == true && failure?.message.contains(Self.secret) == false
        }
        #expect(await vault.clearExpired() == ["key"])
        #expect(await vault.names.isEmpty)
    }

    @Test func aResumedRunDecryptsAgainInsteadOfReusingAnEmptyVault() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let yaml = """
            pipeline: test_run
            defaults: { timeout: 5m }
            steps:
              - { id: decrypt, uses: test_put_secret, with: { as: key, value: "\(Self.secret)", ttl: 1m } }
              - { id: other, uses: test_echo, with: { value: x } }
              - { id: use, uses: test_use_secret, needs: [other], with: { key: "${{ secrets.key }}", leak: true } }
            """
        let failed = try await setup.start(yaml)
        #expect(failed.state == .failed)
        let result = PipelineLoader(registry: setup.catalog.registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
        let plan = try PipelinePlan.build(try #require(result.definition)).get()
        let executor = Executor(processors: setup.catalog, store: setup.store, logger: setup.log.logger)
        let resumed = try await executor.resume(plan, runID: failed.id, env: [:])
        let steps = Dictionary(uniqueKeysWithValues: try await setup.store.steps(of: resumed.id).map { ($0.stepID, $0) })
        #expect(steps["other"]?.reason == "reused from run \(failed.id)")
        #expect(steps["decrypt"]?.state == .succeeded && steps["decrypt"]?.attempt == 1, "decrypted again, not reused")
        #expect(steps["use"]?.errorCode == "provider_refused", "it had its secret: \(steps["use"]?.reason ?? "")")
    }

    @Test func aRunThatFailsHoldingASecretLeavesItNowhere() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let run = try await setup.start(
            """
            pipeline: test_run
            defaults: { timeout: 5m }
            steps:
              - { id: decrypt, uses: test_put_secret, with: { as: key, value: "\(Self.secret)", ttl: 1m } }
              - { id: use, uses: test_use_secret, with: { key: "${{ secrets.key }}", leak: true } }
            """)
        #expect(run.state == .failed)
        let use = try #require(try await setup.store.steps(of: run.id).first { $0.stepID == "use" })
        #expect(use.reason == "the provider refused key [redacted] (sent as Authorization: [redacted])", "\(use.reason)")
        #expect(run.reason.contains("[redacted]"))
        // Not in the logs, not in the run store's files, not in any transition.
        #expect(setup.log.text.contains("calling the provider with [redacted]"), "\(setup.log.text)")
        #expect(!setup.log.text.contains(Self.secret))
        #expect(try setup.storeBytes().range(of: Data(Self.secret.utf8)) == nil)
        for transition in try await setup.store.transitions(of: run.id) { #expect(!transition.reason.contains(Self.secret)) }
        #expect(setup.putter.buffers.withLock { $0.allSatisfy(\.isWiped) })
    }
}

struct RedactorTests {
    @Test func liveValuesAndTheirEncodingsAreMasked() {
        let redactor = SecretRedactor()
        let value = "p@ss/word+with=odd&chars1234"
        redactor.register(value, owner: "r1")
        let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let basic = Data(value.utf8).base64EncodedString()
        let text = "raw \(value) url ?k=\(encoded) basic \(basic) json {\"k\":\"p@ss\\/word+with=odd&chars1234\"}"
        let redacted = redactor.redact(text)
        #expect(!redacted.contains(value))
        #expect(!redacted.contains(encoded))
        #expect(!redacted.contains(basic))
        #expect(!redacted.contains("p@ss\\/word"))
        redactor.forget(owner: "r1")
        #expect(redactor.redact("raw \(value)") == "raw \(value)")
    }

    @Test(arguments: [
        ("postgres://app:hunter2secret@db.internal:5432/x", "postgres://app:[redacted]@db.internal:5432/x"),
        ("host=db user=app password=hunter2secret dbname=x", "host=db user=app password=[redacted] dbname=x"),
        ("Authorization: Basic YXBwOmh1bnRlcjI=", "Authorization: [redacted]"),
        ("headers: {\"authorization\": \"Token abc\"}", "headers: {\"authorization\": \"[redacted]\"}"),
        ("token Bearer abcdefghij0123456789xyz ok", "token Bearer [redacted] ok"),
        ("key sk-proj-abcdefghijklmnop0123456789 used", "key [redacted] used"),
        ("nothing secret here, just words", "nothing secret here, just words"),
    ])
    func credentialShapesAreMaskedWithoutBeingRegistered(_ text: String, _ expected: String) {
        #expect(SecretRedactor().redact(text) == expected)
    }
}
