import ArgumentParser
import Foundation
import SluiceEngine
import SluiceRuntime
import SluiceServer
import SluiceStorage

extension Sluice {
    struct Tokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list and revoke the API tokens of `sluice serve`.",
            discussion: """
                An org token opens that org's API (its pipelines and runs) and nothing else; a \
                metrics token (--metrics) only reads /metrics. Tokens are stored as SHA-256 \
                hashes in .sluice/runs.sqlite and shown once, when created.
                """,
            subcommands: [Create.self, List.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a token and print it (once) on standard output.")

            @Argument(help: "The org the token opens.")
            var org: String?

            @Flag(help: "A server-wide token for GET /metrics only (no org).")
            var metrics = false

            @Option(help: "A label for people: who or what uses the token.")
            var name = "default"

            @OptionGroup var project: ProjectOptions

            func validate() throws {
                try checkOrgOrMetrics(org, metrics)
            }

            func run() async throws {
                let tokens = try await apiTokens(project)
                do {
                    let (token, record) = try await tokens.create(org: metrics ? nil : org, name: name)
                    print(token.text)
                    writeError(
                        "created \(record.scope.rawValue) token \(record.id)\(record.org.map { " for org \($0)" } ?? "") (name \(record.name)); it is shown only now, so store it"
                    )
                } catch let refusal as APITokens.Refusal {
                    writeError("sluice tokens create: \(refusal)")
                    throw ExitCode(1)
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List an org's tokens (ids and names, never the tokens).")

            @Argument(help: "The org whose tokens to list.")
            var org: String?

            @Flag(help: "List the metrics tokens instead.")
            var metrics = false

            @OptionGroup var project: ProjectOptions

            func validate() throws {
                try checkOrgOrMetrics(org, metrics)
            }

            func run() async throws {
                let records = try await apiTokens(project).store.tokens(org: metrics ? nil : org)
                guard !records.isEmpty else {
                    print(metrics ? "no metrics tokens" : "org \(org!) has no tokens")
                    return
                }
                let nameWidth = max(4, records.map(\.name.count).max() ?? 0)
                print("ID            \("NAME".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  SCOPE    CREATED               REVOKED")
                for record in records {
                    let revoked = record.revokedAt.map(Self.time) ?? "-"
                    print(
                        "\(record.id)  \(record.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  "
                            + "\(record.scope.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0))  \(Self.time(record.createdAt))  \(revoked)"
                    )
                }
            }

            static func time(_ date: Date) -> String {
                date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Revoke a token: ORG TOKEN_ID, or --metrics TOKEN_ID. Requests with it get 401 at once.")

            @Argument(help: "ORG TOKEN_ID (or TOKEN_ID with --metrics); the id is the part after slc_, as `tokens list` shows it.")
            var names: [String] = []

            @Flag(help: "The token is a metrics token.")
            var metrics = false

            @OptionGroup var project: ProjectOptions

            func validate() throws {
                guard names.count == (metrics ? 1 : 2) else {
                    throw ValidationError(
                        metrics
                            ? "give the token id: sluice tokens revoke --metrics TOKEN_ID"
                            : "give the org and the token id: sluice tokens revoke ORG TOKEN_ID")
                }
            }

            func run() async throws {
                let org = metrics ? nil : names[0]
                let id = names.last!
                guard try await apiTokens(project).store.revokeToken(id: id, org: org, at: Date()) else {
                    writeError("sluice tokens revoke: \(org.map { "org \($0)" } ?? "the server") has no active token '\(id)'")
                    throw ExitCode(1)
                }
                print("revoked token \(id)")
            }
        }
    }
}

private func checkOrgOrMetrics(_ org: String?, _ metrics: Bool) throws {
    if metrics, org != nil { throw ValidationError("a metrics token has no org: give an ORG or --metrics, not both") }
    if !metrics, org == nil { throw ValidationError("give the ORG (or --metrics for a metrics token)") }
}

private func apiTokens(_ project: ProjectOptions) async throws -> APITokens {
    APITokens(store: try await openProject("tokens", root: project.root, recover: false).apiTokens)
}
