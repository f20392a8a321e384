import Foundation
import Logging
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Synchronization
import Testing
import _CryptoExtras

@testable import SluiceEngine

/// A step of `processor` with `with:` given as YAML (values as the executor would have
/// evaluated them), run directly, without an executor.
func runStep(_ processor: any Processor, _ yaml: String, logs: LogCapture = LogCapture()) async throws -> [String: ExpressionValue] {
    guard case .success(let node?) = YAMLLoader().load(Data(yaml.utf8), file: "pipelines/validators.yml") else {
        Issue.record("test config is not YAML: \(yaml)")
        return [:]
    }
    let step = StepContext(
        runID: "run-1", pipeline: "validators", org: "acme", stepID: "check", attempt: 1, config: node,
        logger: logs.logger, project: nil)
    return try await processor.run(step)
}

/// Runs a step that must fail, and returns its failure.
func failure(of processor: any Processor, _ yaml: String, logs: LogCapture = LogCapture()) async throws -> StepFailure {
    do {
        let outputs = try await runStep(processor, yaml, logs: logs)
        Issue.record("expected the step to fail; it returned \(outputs)")
        return StepFailure("none", "none")
    } catch let failure as StepFailure {
        return failure
    }
}

/// A YAML double-quoted scalar holding `text` (JSON escaping is valid YAML escaping).
func yamlQuoted(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
    return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
}

/// Fake credentials. They look like the real ones, so a leak would also trip the credential
/// detector, but tests grep for their exact bytes.
enum FakeKeys {
    static let openAI = "sk-proj-FAKEkey0123456789abcdefTESTONLY"
    static let anthropic = "sk-ant-api03-FAKEkey0123456789TESTONLY"
    static let vendor = "vendor-token-FAKE-31415926535"

    /// One 2048-bit key pair per test process: generating one takes a while in a debug build.
    static let serviceAccountKey: _RSA.Signing.PrivateKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    static let clientEmail = "sluice-test@finops-test.iam.gserviceaccount.com"

    /// A service-account key file like the ones Google issues, pointing at `tokenURI`.
    static func serviceAccountJSON(tokenURI: String, dropping field: String? = nil, type: String = "service_account") -> String {
        var object: [String: String] = [
            "type": type,
            "project_id": "finops-test",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": serviceAccountKey.pkcs8PEMRepresentation,
            "client_email": clientEmail,
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": tokenURI,
        ]
        if let field { object[field] = nil }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Pieces of the private key that must never show up anywhere: the base64 lines of its PEM.
    static var privateKeyFragments: [String] {
        serviceAccountKey.pkcs8PEMRepresentation.split(separator: "\n").filter { !$0.hasPrefix("-----") }.map(String.init)
    }
}

/// Checks that `secret` appears nowhere in `texts` (messages, logs, access logs).
func expectNoLeak(of secret: String, in texts: [String], _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    for text in texts {
        #expect(!text.contains(secret), "\(what) contains the secret: \(text)", sourceLocation: sourceLocation)
    }
}
