import Foundation
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// `kms_decrypt`: opens a stored credential of the run's org (through the executor's
/// `Credentials`, which checks its format and expiry and audits the access) and puts the
/// value into the run's vault as `secrets.<as>`, alive for `ttl`, else the pipeline's
/// `secrets.ttl`, else 15 minutes, and never past the credential's own expiry.
public struct KMSDecryptProcessor: Processor {
    public static let defaultTTL: Duration = .seconds(15 * 60)

    public init() {}

    public var spec: ProcessorSpec { .kmsDecrypt }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let config = step.config
        // Which of the org's credentials is opened is the pipeline's choice, never the caller's
        // (lint refuses any expression here; a server may run a pipeline lint never saw).
        if let untrusted = step.untrustedFields["credential"] {
            throw StepFailure(
                .credentialRefused,
                """
                'credential' reads \(untrusted.references.joined(separator: ", ")), which the caller of the run chose; which credential \
                is decrypted must be written in the pipeline, like credential: openai/admin_key
                """, at: config["credential"]?.location)
        }
        let credential = try config.text("credential")
        let name = try config.identifier("as")
        let ttlSetting = try config.optionalDuration("ttl")
        let expect = try config.text("expect")
        guard let secrets = step.services.secrets else {
            throw StepFailure(.noVault, "step '\(step.stepID)' needs the run's secret vault, and this run has none")
        }
        let vault = secrets.vault
        let ttl = ttlSetting ?? secrets.ttl ?? Self.defaultTTL
        guard let credentials = secrets.credentials else {
            throw StepFailure(
                .noKeyring,
                """
                kms_decrypt needs the keyring the credentials were sealed with: run `sluice keys init`, \
                or set SLUICE_KEYRING (or SLUICE_KEY_PASSPHRASE and SLUICE_KEY_SALT)
                """, at: config["credential"]?.location)
        }
        let opened: Credentials.Opened
        do {
            let provider = expect == "any" ? nil : try CredentialProvider(named: expect)
            opened = try await credentials.open(
                org: step.org, name: credential, for: .init(runID: step.runID, stepID: step.stepID),
                expect: provider)
        } catch let error as SecretsError {
            throw StepFailure(
                FailureCode(error.code.rawValue), error.message, transient: error.code == .keyringUnavailable || error.code == .auditFailed,
                at: config["credential"]?.location)
        }
        let now = Date()
        var expiresAt = now.addingTimeInterval(ttl.timeInterval)
        if let own = opened.expiresAt, own < expiresAt { expiresAt = own }
        await vault.put(name, opened.value, expiresAt: expiresAt, credential: credential)
        step.logger.info(
            "decrypted a credential into the vault",
            metadata: ["credential": "\(credential)", "secret": "\(name)", "expires_at": "\(SecretVault.format(expiresAt))"])
        return ["expires_at": .string(SecretVault.format(expiresAt))]
    }
}
