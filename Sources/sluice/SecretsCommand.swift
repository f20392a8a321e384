import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceStorage

extension Sluice {
    struct Secrets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store credentials per org, sealed under the keyring; values are read from stdin or a file and never printed.",
            discussion: """
                Values never come from the command line (it ends up in shell history and process \
                lists). One final newline of the input is dropped. An org holds at most \
                credential_limit (SLUICE_CREDENTIAL_LIMIT) credentials (default \(Credentials.defaultLimitPerOrg)). \
                See docs/encryption.md.
                """,
            subcommands: [Put.self, List.self, Rotate.self, Delete.self, Verify.self, Audit.self])

        struct Put: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Store a new credential.",
                discussion: """
                    Refused before anything is stored: an empty value, one that doesn't have its \
                    provider's format (openai: sk-…, anthropic: sk-ant-…, gcp: a service-account \
                    JSON), metadata that breaks the provider's schema, an unknown provider, a name \
                    that exists, an org at its limit.
                    """)

            @Argument(help: "The org (letters, digits, _).")
            var org: String

            @Argument(help: "The credential name, like openai/admin_key.")
            var name: String

            @OptionGroup var input: ValueInput

            @Option(help: "openai, anthropic, gcp or generic.")
            var provider: String = CredentialProvider.generic.rawValue

            @Option(help: "When the credential stops opening: 2026-12-31 or 2026-12-31T18:00:00Z.")
            var expiresAt: String?

            @Option(help: "A JSON object describing the credential (owner, description, …); stored in clear.")
            var metadata: String?

            @OptionGroup var keyOptions: KeyOptions

            func validate() throws {
                try input.validate()
                if let expiresAt { _ = try parseTime(expiresAt) }
            }

            func run() async throws {
                try await reportingSecretsErrors("secrets put") {
                    let credentials = try await openCredentials(keyOptions)
                    let value = try input.read()
                    defer { value.wipe() }
                    let stored = try await credentials.put(
                        org: org, name: name, value: value, provider: provider,
                        expiresAt: try expiresAt.map(parseTime), metadata: metadata)
                    print("stored credential \(org)/\(name) (\(stored.provider), value 1, key version \(stored.keyVersion))")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List an org's credentials: name, provider, value and row versions, key, dates, metadata field names. Never values.")

            @Argument(help: "The org.")
            var org: String

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("secrets list") {
                    _ = try keyOptions.keySource()
                    guard Identifier.isValid(org) else { throw ValidationError("org: \(Identifier.problem(with: org)!)") }
                    var stored: [StoredCredential] = []
                    if let store = try await keyOptions.existingStore() { stored = try await store.credentials(org: org) }
                    if stored.isEmpty {
                        print("no credentials in org \(org)")
                        return
                    }
                    let rows = stored.map { credential -> [String] in
                        let previous = credential.previousValidUntil.map { $0.formatted(.iso8601) } ?? "-"
                        return [
                            credential.name, credential.provider, String(credential.generation), String(credential.version),
                            String(credential.keyVersion), credential.expiresAt?.formatted(.iso8601) ?? "-", previous,
                            credential.createdAt.formatted(.iso8601), credential.updatedAt.formatted(.iso8601),
                            CredentialMetadata.fieldNames(of: credential.metadata).joined(separator: ","),
                        ]
                    }
                    print(
                        TextTable.render(
                            header: [
                                "name", "provider", "value", "version", "key", "expires", "previous valid until",
                                "created", "updated", "metadata",
                            ], rows: rows))
                }
            }
        }

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Give a credential a new value; the old one stays valid for --grace.",
                discussion: """
                    With --expect-version N the rotation happens only if the credential is still at \
                    row version N (see `secrets list`); otherwise, and when another rotation wins \
                    a race, it fails with `conflict`.
                    """)

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "The credential name.")
            var name: String

            @OptionGroup var input: ValueInput

            @Option(help: "How long the old value stays valid.")
            var grace: String = "24h"

            @Option(help: "Rotate only if the credential is at this row version.")
            var expectVersion: Int?

            @Option(help: "A new expiry (else the old one stays).")
            var expiresAt: String?

            @Option(help: "New metadata (else the old one stays).")
            var metadata: String?

            @OptionGroup var keyOptions: KeyOptions

            func validate() throws {
                try input.validate()
                _ = try parseDuration(grace, "--grace")
                if let expiresAt { _ = try parseTime(expiresAt) }
            }

            func run() async throws {
                try await reportingSecretsErrors("secrets rotate") {
                    let credentials = try await openCredentials(keyOptions)
                    let value = try input.read()
                    defer { value.wipe() }
                    let stored = try await credentials.rotate(
                        org: org, name: name, value: value, grace: try parseDuration(grace, "--grace"),
                        expiresAt: try expiresAt.map(parseTime), metadata: metadata,
                        expectedVersion: expectVersion)
                    print(
                        "rotated credential \(org)/\(name) to value \(stored.generation); value \(stored.generation - 1) stays valid until \(stored.previousValidUntil!.formatted(.iso8601))"
                    )
                }
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a credential (both its current and previous values).")

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "The credential name.")
            var name: String

            @Option(help: "Delete only if the credential is at this row version.")
            var expectVersion: Int?

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("secrets delete") {
                    // Deleting opens nothing, so the keys aren't loaded; a half-configured key
                    // source is still refused, as everywhere.
                    _ = try keyOptions.keySource()
                    let credentials = Credentials(store: try await keyOptions.store(), keys: nil, logger: commandLogger("sluice.secrets"))
                    try await credentials.delete(org: org, name: name, expectedVersion: expectVersion)
                    print("deleted credential \(org)/\(name)")
                }
            }
        }

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Open a credential and check its provider's format, without printing it (audited like a decrypt).")

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "The credential name.")
            var name: String

            @Flag(help: "Open the previous value (during its grace period after a rotation).")
            var previous = false

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("secrets verify") {
                    let credentials = try await openCredentials(keyOptions)
                    let opened = try await credentials.open(org: org, name: name, for: .commandLine, previous: previous)
                    defer { opened.value.wipe() }
                    try opened.provider.check(opened.value)
                    print(
                        "credential \(org)/\(name) opens: \(opened.provider.rawValue), value \(opened.generation)\(previous ? " (previous)" : ""), key version \(opened.keyVersion), \(opened.value.count) bytes, format ok"
                    )
                }
            }
        }

        struct Audit: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show an org's credential audit log, newest first.")

            @Argument(help: "The org.")
            var org: String

            @Argument(help: "Only this credential.")
            var name: String?

            @Option(help: "How many records.")
            var limit: Int = 20

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("secrets audit") {
                    _ = try keyOptions.keySource()
                    var records: [CredentialAuditRecord] = []
                    if let store = try await keyOptions.existingStore() {
                        records = try await store.auditRecords(org: org, credential: name, limit: max(1, limit))
                    }
                    if records.isEmpty {
                        print("no audit records for org \(org)")
                        return
                    }
                    let rows = records.map { record in
                        [
                            record.at.formatted(.iso8601), record.credential, record.action.rawValue, record.outcome.rawValue,
                            record.runID ?? "-", record.stepID ?? "-", record.detail,
                        ]
                    }
                    print(TextTable.render(header: ["at", "credential", "action", "outcome", "run", "step", "detail"], rows: rows))
                }
            }
        }
    }
}

/// Where a value comes from: standard input or a file, never a command-line argument.
struct ValueInput: ParsableArguments {
    @Flag(help: "Read the value from standard input (on a terminal: typed without echo).")
    var fromStdin = false

    @Option(help: "Read the value from this file.")
    var fromFile: String?

    func validate() throws {
        guard fromStdin != (fromFile != nil) else {
            throw ValidationError("give the value with --from-stdin or --from-file FILE (exactly one); values are never taken from arguments")
        }
    }

    /// The value, without one final newline.
    func read() throws -> SecretBytes {
        var data: Data
        if let fromFile {
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: fromFile))
            } catch {
                throw ValidationError("can't read --from-file \(fromFile): \((error as NSError).localizedDescription)")
            }
        } else if isatty(STDIN_FILENO) == 1 {
            data = try Self.readWithoutEcho()
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        defer { data.resetBytes(in: 0..<data.count) }
        let raw = SecretBytes(data)
        defer { raw.wipe() }
        return raw.droppingFinalNewline()
    }

    /// One line from the terminal with echo off, so the value never shows on screen.
    private static func readWithoutEcho() throws -> Data {
        FileHandle.standardError.write(Data("value (not shown): ".utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        var line = Data()
        var byte: UInt8 = 0
        while Glibc.read(STDIN_FILENO, &byte, 1) == 1, byte != 0x0A {
            line.append(byte)
        }
        byte = 0
        return line
    }
}

/// Keys, store and limit for commands that seal or open.
func openCredentials(_ options: KeyOptions) async throws -> Credentials {
    let keys = try options.loadKeys()
    let services = try await openProject("secrets", root: options.project.root, recover: false)
    return Credentials(
        store: services.credentialStore, keys: keys, limitPerOrg: services.settings.credentialLimit,
        logger: commandLogger("sluice.secrets"))
}

/// `2026-12-31` (midnight UTC) or an ISO 8601 time with a zone.
private func parseTime(_ text: String) throws -> Date {
    let iso = text.count == 10 ? text + "T00:00:00Z" : text
    if let date = try? Date(iso, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
    if let date = try? Date(iso, strategy: .iso8601) { return date }
    throw ValidationError("--expires-at takes a date like 2026-12-31 or a time like 2026-12-31T18:00:00Z, not '\(text)'")
}
