import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceSecrets
import SluiceServer
import SluiceStorage

extension Sluice {
    struct Hooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, rotate, list and audit the webhook triggers of `sluice serve`.",
            discussion: """
                A hook lets a sender start runs of one pipeline of one org with Standard Webhooks \
                deliveries: POST /v1/hooks/ORG/PIPELINE signed with a whsec_ secret. The secret is \
                a credential of the org (webhooks/PIPELINE, sealed like every credential, so the \
                keys are needed); the payload-to-params mapping is its metadata. See docs/api.md.
                """,
            subcommands: [Create.self, Rotate.self, List.self, Audit.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a hook and print its new secret (once) on standard output.")

            @Argument(help: "The org whose runs the hook starts.")
            var org: String

            @Argument(help: "The pipeline it runs.")
            var pipeline: String

            @Option(name: .customLong("param"), help: "A param from the payload, as name=path (data.usage_file; repeatable).")
            var params: [String] = []

            @Option(help: "Where the payload holds the logical date (YYYY-MM-DD, or a timestamp whose day is taken).")
            var logicalDate: String?

            @OptionGroup var keyOptions: KeyOptions

            func validate() throws {
                guard Identifier.isValid(pipeline) else { throw ValidationError("PIPELINE takes a pipeline id, not '\(pipeline)'") }
                _ = try mapping()
            }

            func mapping() throws -> PayloadMapping {
                var mapping = PayloadMapping()
                for param in params {
                    let parts = param.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, !parts[1].isEmpty, parts[0].range(of: "^[a-z][a-z0-9_]{0,57}$", options: .regularExpression) != nil else {
                        throw ValidationError("--param takes name=path with a lowercase param name (letters, digits, _), not '\(param)'")
                    }
                    mapping.params[parts[0]] = parts[1].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                }
                if let logicalDate { mapping.logicalDate = logicalDate.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
                return mapping
            }

            func run() async throws {
                try await reportingSecretsErrors("hooks create") {
                    let credentials = try await openCredentials(keyOptions)
                    let secret = WebhookSignature.newSecret()
                    let value = SecretBytes(Array(secret.utf8))
                    defer { value.wipe() }
                    let metadata = try JSONSerialization.data(withJSONObject: try mapping().metadata, options: [.sortedKeys])
                    try await credentials.put(
                        org: org, name: "webhooks/\(pipeline)", value: value, provider: CredentialProvider.generic.rawValue,
                        expiresAt: nil, metadata: String(decoding: metadata, as: UTF8.self))
                    print(secret)
                    writeError(
                        "created hook for \(org)/\(pipeline): deliveries go to POST /v1/hooks/\(org)/\(pipeline), signed with the secret printed on standard output, which is shown only now: give it to the sender"
                    )
                }
            }
        }

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Give a hook a new secret and print it; the old one keeps verifying for --grace.")

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "The pipeline.")
            var pipeline: String

            @Option(help: "How long the old secret keeps verifying (senders sign with both meanwhile).")
            var grace: String = "24h"

            @OptionGroup var keyOptions: KeyOptions

            func validate() throws {
                _ = try parseDuration(grace, "--grace")
            }

            func run() async throws {
                try await reportingSecretsErrors("hooks rotate") {
                    let credentials = try await openCredentials(keyOptions)
                    let secret = WebhookSignature.newSecret()
                    let value = SecretBytes(Array(secret.utf8))
                    defer { value.wipe() }
                    let stored = try await credentials.rotate(
                        org: org, name: "webhooks/\(pipeline)", value: value,
                        grace: try parseDuration(grace, "--grace"))
                    print(secret)
                    writeError(
                        "rotated the secret of hook \(org)/\(pipeline); the old one verifies until \(stored.previousValidUntil.map { $0.formatted(.iso8601) } ?? "-")"
                    )
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List an org's hooks and their payload mappings (never secrets).")

            @Argument(help: "The org.")
            var org: String

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("hooks list") {
                    guard let store = try await keyOptions.existingStore() else {
                        print("org \(org) has no hooks")
                        return
                    }
                    let hooks = try await Credentials(store: store, keys: nil).list(org: org).filter { $0.name.hasPrefix("webhooks/") }
                    guard !hooks.isEmpty else {
                        print("org \(org) has no hooks")
                        return
                    }
                    for hook in hooks {
                        let pipeline = hook.name.dropFirst("webhooks/".count)
                        let mapping = PayloadMapping(metadata: hook.metadata).metadata.sorted { $0.key < $1.key }
                            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                        let previous = hook.previousValidUntil.map { ", previous secret until \($0.formatted(.iso8601))" } ?? ""
                        print(
                            "POST /v1/hooks/\(org)/\(pipeline)  secret \(hook.generation)\(previous)  \(mapping.isEmpty ? "(no mapping)" : mapping)")
                    }
                }
            }
        }

        struct Audit: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show an org's webhook deliveries, accepted and refused, newest first.")

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "Only this pipeline's hook.")
            var pipeline: String?

            @Option(help: "How many records.")
            var limit = 50

            @OptionGroup var project: ProjectOptions

            func run() async throws {
                guard try await Runtime.hasStores(projectRoot: project.root) else {
                    print("no deliveries")
                    return
                }
                let records = try await openProject("hooks", root: project.root, recover: false).webhookAudit.webhookAudit(
                    org: org, pipeline: pipeline, limit: max(1, limit))
                guard !records.isEmpty else {
                    print("no deliveries")
                    return
                }
                for record in records {
                    print(
                        "\(record.at.formatted(Date.ISO8601FormatStyle(timeZone: .gmt)))  \(record.pipeline)  \(record.status)  "
                            + "\(record.reason)  \(record.messageID ?? "-")  \(record.requestID)  \(record.detail)")
                }
            }
        }
    }
}
