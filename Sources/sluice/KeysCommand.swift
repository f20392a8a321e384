import ArgumentParser
import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceSecrets
import SluiceStorage

extension Sluice {
    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the key-encryption keys that wrap stored credentials.",
            discussion: """
                Keys live in a keyring file readable by its owner only (mode 0600; any other mode \
                is refused): --keyring, else SLUICE_KEYRING, else .sluice/keyring.json in the \
                project. Instead of a keyring, SLUICE_KEY_PASSPHRASE and SLUICE_KEY_SALT (both \
                required) derive one key with PBKDF2; that key can't be rotated in place. \
                See docs/encryption.md.
                """,
            subcommands: [Init.self, Rotate.self, Rewrap.self, List.self])

        struct Init: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a keyring with its first key (version 1).")

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("keys init") {
                    let file = try keyOptions.keyringFile()
                    let keyring = try file.create(at: Date())
                    print("created keyring \(keyOptions.shown(file.path)) (mode 0600) with key version 1, check \(keyring.current.checkHex)")
                    print("Keep a copy somewhere safe: credentials sealed under its keys can't be opened without it.")
                }
            }
        }

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a new active key, retire the current one, and re-wrap every credential of this project under the new key.",
                discussion: """
                    The retired key still decrypts during --grace; after that it is refused \
                    (key_retired). Credentials are re-wrapped without decrypting their values. \
                    Projects that share the keyring need `sluice keys rewrap` each.
                    """)

            @Option(help: "How long the retired key still decrypts (e.g. 7d, 12h).")
            var grace: String = "7d"

            @OptionGroup var keyOptions: KeyOptions

            func validate() throws {
                _ = try parseDuration(grace, "--grace")
            }

            func run() async throws {
                try await reportingSecretsErrors("keys rotate") {
                    let file = try keyOptions.keyringFile()
                    let keyring = try file.rotate(at: Date(), grace: try parseDuration(grace, "--grace"))
                    // The key this rotation retired: the most recently retired one.
                    let retired = keyring.entries.filter { $0.status == .retired }.max { $0.retiredAt! < $1.retiredAt! }!
                    print(
                        "key version \(keyring.current.version) is now active (check \(keyring.current.checkHex)); version \(retired.version) is retired and still decrypts until \(retired.usableUntil!.formatted(.iso8601))"
                    )
                    try await rewrap(with: keyring, options: keyOptions)
                }
            }
        }

        struct Rewrap: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Re-wrap every credential of this project that is not under the active key (after a rotation elsewhere, or one that stopped halfway)."
            )

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("keys rewrap") {
                    try await rewrap(with: try keyOptions.loadKeys(), options: keyOptions)
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "List the keys: version, status, dates, check value, and how many stored values of this project each wraps. Never prints key material."
            )

            @OptionGroup var keyOptions: KeyOptions

            func run() async throws {
                try await reportingSecretsErrors("keys list") {
                    let keyring = try keyOptions.loadKeys()
                    var usage: [Int: Int] = [:]
                    if let store = try await keyOptions.existingStore() { usage = try await store.blobsPerKeyVersion() }
                    let now = Date()
                    switch keyring.origin {
                    case .passphrase:
                        print(
                            "key derived from \(KeySource.Variable.passphrase) and \(KeySource.Variable.salt) (PBKDF2-HMAC-SHA512, \(PassphraseKey.rounds) rounds)"
                        )
                    case .file(let path):
                        print("keyring \(keyOptions.shown(path))")
                    }
                    let rows = keyring.entries.map { entry in
                        [
                            String(entry.version), entry.state(at: now), entry.createdAt.formatted(.iso8601),
                            entry.retiredAt?.formatted(.iso8601) ?? "-", entry.usableUntil?.formatted(.iso8601) ?? "-",
                            entry.key.checkHex, String(usage[Int(entry.version)] ?? 0),
                        ]
                    }
                    print(TextTable.render(header: ["version", "status", "created", "retired", "usable until", "check", "values"], rows: rows))
                    let orphaned = usage.keys.filter { version in !keyring.entries.contains { Int($0.version) == version } }.sorted()
                    if !orphaned.isEmpty {
                        print(
                            "warning: stored values are wrapped by key versions this keyring doesn't have: \(orphaned.map(String.init).joined(separator: ", "))"
                        )
                    }
                }
            }
        }
    }
}

/// Re-wraps the project's credentials under the keyring's active key and reports it.
private func rewrap(with keyring: Keyring, options: KeyOptions) async throws {
    guard let store = try await options.existingStore() else {
        print("no credentials in this project to re-wrap")
        return
    }
    let credentials = Credentials(store: store, keys: keyring, logger: commandLogger("sluice.keys"))
    let report = try await credentials.rewrapAll()
    let version = keyring.current.version
    if report.rewrapped.isEmpty && report.failed.isEmpty {
        print("nothing to re-wrap: every stored value is wrapped by key version \(version)")
    } else if !report.rewrapped.isEmpty {
        print("re-wrapped \(report.rewrapped.count) credential\(report.rewrapped.count == 1 ? "" : "s") to key version \(version)")
    }
    if !report.failed.isEmpty {
        for failure in report.failed { writeError("could not re-wrap \(failure.credential): \(failure.error)") }
        writeError(
            "\(report.failed.count) credential\(report.failed.count == 1 ? "" : "s") could not be re-wrapped; they still open with their old key until its grace period ends"
        )
        throw ExitCode(1)
    }
}

/// `--keyring` and `--project`, shared by `sluice keys` and `sluice secrets`.
struct KeyOptions: ParsableArguments {
    @Option(help: "Keyring file (default: SLUICE_KEYRING, else .sluice/keyring.json in the project).")
    var keyring: String?

    @OptionGroup var project: ProjectOptions

    /// The project's `.sluice` folder.
    var stateFolder: URL { Runtime.stateFolder(projectRoot: project.root) }

    func keySource() throws(SecretsError) -> KeySource {
        try KeySource.resolve(
            keyringPath: keyring, environment: ProcessInfo.processInfo.environment,
            defaultKeyringPath: stateFolder.appendingPathComponent("keyring.json").path)
    }

    /// The keys, read and checked.
    func loadKeys() throws(SecretsError) -> Keyring {
        try keySource().load()
    }

    /// The keyring file, for commands that change it.
    func keyringFile() throws(SecretsError) -> KeyringFile {
        switch try keySource() {
        case .keyringFile(let file):
            return file
        case .passphrase:
            throw SecretsError(
                .keyringRequired,
                "the key comes from \(KeySource.Variable.passphrase); a passphrase-derived key has no keyring to create or rotate (unset the passphrase variables to use a keyring)"
            )
        }
    }

    /// The project's credential store.
    func store() async throws -> any CredentialStore {
        try await openProject("secrets", root: project.root, recover: false).credentialStore
    }

    /// The store if the project has stores already (listing creates nothing).
    func existingStore() async throws -> (any CredentialStore)? {
        try await Runtime.hasStores(projectRoot: project.root) ? try await store() : nil
    }

    /// A path as messages show it: relative to the project when inside it.
    func shown(_ path: String) -> String {
        project.projectPath(path)
    }
}

/// Prints key and credential errors as `sluice <command>: <message> [<code>]` and exits 1.
func reportingSecretsErrors(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as SecretsError {
        writeError("sluice \(command): \(error.message) [\(error.code.rawValue)]")
        throw ExitCode(1)
    }
}

/// A logger for a command that runs no pipeline (keys, secrets): the same redacting handler
/// on standard error as every other command, at warning unless SLUICE_LOG_LEVEL says otherwise.
func commandLogger(_ label: String) -> Logger {
    bootstrapLogging(defaultLevel: .warning)
    return Logger(label: label)
}
