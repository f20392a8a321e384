import Foundation
import SluiceTestSupport
import Testing

/// `sluice keys` and `sluice secrets` driven through the built binary: outputs, exit codes,
/// each bad input's error code, races between processes, and values that never show. What
/// the stores do runs on each `Backend`: the credentials in the project's SQLite run store, or
/// in a PostgreSQL database the project's `sluice.yml` names.
struct SecretsCommandTests {
    let project: URL
    let value = "sk-proj-CliValue0nlyForTests_abcdefghijklmnopq0123"

    init() throws {
        project = try temporaryFolder()
        try FileManager.default.createDirectory(at: project.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
    }

    /// The test process's environment without any key settings, with every log level shown.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for name in ["SLUICE_KEYRING", "SLUICE_KEY_PASSPHRASE", "SLUICE_KEY_SALT", "SLUICE_CREDENTIAL_LIMIT"] { environment[name] = nil }
        environment["SLUICE_LOG_LEVEL"] = "trace"
        return environment.merging(extra) { $1 }
    }

    /// A started `sluice` process; `finish()` feeds its stdin and waits.
    struct Launched: Sendable {
        let process: Process
        let input: Pipe
        let folder: URL
        let stdin: Data?

        func finish() async throws -> CommandResult {
            try await onItsOwnThread(finishBlocking)
        }

        private func finishBlocking() throws -> CommandResult {
            // A command that refuses early exits without reading its input: writing to it must
            // be an error here (EPIPE), not a signal that kills the whole test process.
            signal(SIGPIPE, SIG_IGN)
            if let stdin { try? input.fileHandleForWriting.write(contentsOf: stdin) }
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            defer { try? FileManager.default.removeItem(at: folder) }
            return CommandResult(
                status: process.terminationStatus,
                stdout: String(decoding: try Data(contentsOf: folder.appendingPathComponent("stdout")), as: UTF8.self),
                stderr: String(decoding: try Data(contentsOf: folder.appendingPathComponent("stderr")), as: UTF8.self))
        }
    }

    func launch(
        _ arguments: [String], stdin: String? = nil, environment: [String: String] = Self.environment(),
        in directory: URL? = nil
    ) throws -> Launched {
        let process = Process()
        process.executableURL = sluiceBinary
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? project
        process.environment = environment
        let folder = try temporaryFolder()
        let out = folder.appendingPathComponent("stdout"), err = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        let input = Pipe()
        process.standardInput = input
        try process.run()
        return Launched(process: process, input: input, folder: folder, stdin: stdin.map { Data($0.utf8) })
    }

    /// Every output of the test, to check that no value ever appears in one.
    final class Transcript: @unchecked Sendable {
        private let lock = NSLock()
        private var texts: [String] = []

        func add(_ result: CommandResult) {
            lock.withLock { texts.append(result.stdout + result.stderr) }
        }

        var all: String { lock.withLock { texts.joined(separator: "\n") } }
    }

    let transcript = Transcript()

    @discardableResult
    func sluice(
        _ arguments: String..., stdin: String? = nil, environment: [String: String] = Self.environment(),
        in directory: URL? = nil
    ) async throws -> CommandResult {
        let result = try await launch(arguments, stdin: stdin, environment: environment, in: directory).finish()
        transcript.add(result)
        return result
    }

    /// Runs `statement` in the project's credential store: `database` (in the stores' schema,
    /// `sluice`), or without one the project's SQLite run store.
    func sql(_ statement: String, on database: PostgresTestDatabase? = nil, in directory: URL? = nil) async throws {
        if let database {
            try database.sql("SET search_path TO sluice; \(statement)")
            return
        }
        let database = (directory ?? project).appendingPathComponent(".sluice/runs.sqlite").path
        let script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()\n"
        let result = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, database, statement], in: project)
        #expect(result.status == 0, "python3 sqlite3: \(result.stderr)")
    }

    func keyringMode() throws -> Int {
        let path = project.appendingPathComponent(".sluice/keyring.json").path
        return (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aRunThatFailsHoldingASecretLeavesItInNoOutputLogOrDatabase() async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        // A provider that refuses the key and repeats it back.
        let provider = Process()
        provider.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        provider.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/SluiceCLITests/Support/fake_openai.py").path]
        let portPipe = Pipe()
        provider.standardOutput = portPipe
        provider.standardError = FileHandle.nullDevice
        try provider.run()
        defer { kill(provider.processIdentifier, SIGKILL) }
        let port = try await onItsOwnThread { String(decoding: portPipe.fileHandleForReading.availableData, as: UTF8.self) }
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(port) != nil, "the fake provider did not start")

        try Data(
            """
            pipeline: check_key
            defaults: { timeout: 30s, retry: { attempts: 2, initial_delay: 10ms } }
            steps:
              - id: decrypt
                uses: kms_decrypt
                with: { credential: openai/admin_key, as: openai_key, ttl: 5m, expect: openai }
              - id: validate
                uses: validate_openai
                with:
                  api_key: "${{ secrets.openai_key }}"
                  base_url: "${{ env.OPENAI_BASE_URL || 'https://api.openai.com' }}"
                  request_timeout: 60s
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/check_key.yml"))
        #expect(try await sluice("keys", "init").status == 0)
        #expect(try await sluice("secrets", "put", "default", "openai/admin_key", "--from-stdin", "--provider", "openai", stdin: value).status == 0)

        // Where the key goes is the operator's to say (the environment), never a run's params.
        let run = try await sluice("run", "check_key", environment: Self.environment(["OPENAI_BASE_URL": "http://127.0.0.1:\(port)"]))
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("credential_invalid") || run.stdout.contains("OpenAI refused the key"), "\(run.stdout)")
        let runID = try #require(run.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        try await sluice("runs", "show", runID)
        try await sluice("runs", "list")
        let audit = try await sluice("secrets", "audit", "default")
        #expect(audit.stdout.contains(runID), "the decrypt is audited with its run: \(audit.stdout)")
        try await sluice("secrets", "list", "default")

        // Every output stream of every command, and every file Sluice wrote.
        #expect(!transcript.all.contains(value))
        #expect(!transcript.all.contains(String(value.suffix(12))), "not even the tail OpenAI would quote")
        let (holding, searched) = filesHolding(value, in: project)
        #expect(holding.isEmpty, "the key is in \(holding)")
        #expect(searched.contains("runs.sqlite") && searched.contains("keyring.json"), "\(searched)")
    }

    @Test func aKeyEchoedInPiecesByAProviderAndASourceLeavesNoPieceAnywhere() async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        let random = String((0..<48).map { _ in "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".randomElement()! })
        let key = "sk-proj-" + random
        let provider = Process()
        provider.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        provider.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/SluiceCLITests/Support/echo_provider.py").path]
        let portPipe = Pipe()
        provider.standardOutput = portPipe
        provider.standardError = FileHandle.nullDevice
        try provider.run()
        defer { kill(provider.processIdentifier, SIGKILL) }
        let port = try await onItsOwnThread { String(decoding: portPipe.fileHandleForReading.availableData, as: UTF8.self) }
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(port) != nil, "the echoing provider did not start")

        try FileManager.default.createDirectory(at: project.appendingPathComponent("schemas"), withIntermediateDirectories: true)
        try Data(#"[{"name": "id", "type": "STRING"}, {"name": "note", "type": "STRING"}, {"name": "amount", "type": "NUMERIC"}]"#.utf8)
            .write(to: project.appendingPathComponent("schemas/notes_raw.json"))
        try Data(
            """
            pipeline: echoed
            defaults: { timeout: 30s, retry: { attempts: 2, initial_delay: 10ms } }
            steps:
              - id: decrypt
                uses: kms_decrypt
                with: { credential: openai/admin_key, as: openai_key, ttl: 5m, expect: openai }
              - id: load
                uses: ingest
                needs: [decrypt]
                with:
                  source:
                    format: http
                    url: "${{ env.ECHO_URL }}/rows"
                    headers: { Authorization: "Bearer ${{ secrets.openai_key }}" }
                  table: notes_raw
                  schema: schemas/notes_raw.json
                  on_bad_row: quarantine
                  max_bad_rows: 1
              - id: validate
                uses: validate_openai
                needs: [load]
                with:
                  api_key: "${{ secrets.openai_key }}"
                  base_url: "${{ env.ECHO_URL }}"
                  request_timeout: 60s
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/echoed.yml"))
        #expect(try await sluice("keys", "init").status == 0)
        #expect(try await sluice("secrets", "put", "default", "openai/admin_key", "--from-stdin", "--provider", "openai", stdin: key).status == 0)

        let run = try await sluice("run", "echoed", environment: Self.environment(["ECHO_URL": "http://127.0.0.1:\(port)"]))
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("rows_quarantined=1"), "the source's rows were read: \(run.stdout)")
        let runID = try #require(run.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        try await sluice("runs", "show", runID)
        try await sluice("runs", "list")

        // No 8-character piece of the key's random part in any output or any file Sluice wrote.
        let windows = Set((0...(random.count - 8)).map { Array(random)[$0..<($0 + 8)] }.map { String($0) })
        let outputs = transcript.all
        #expect(!windows.contains { outputs.contains($0) }, "a piece of the key is in the output")
        var files: [String] = []
        let enumerator = FileManager.default.enumerator(at: project.appendingPathComponent(".sluice"), includingPropertiesForKeys: nil)
        while let file = enumerator?.nextObject() as? URL {
            guard let bytes = try? Data(contentsOf: file) else { continue }
            files.append(file.lastPathComponent)
            #expect(!windows.contains { bytes.range(of: Data($0.utf8)) != nil }, "a piece of the key is in \(file.lastPathComponent)")
        }
        #expect(files.contains("runs.sqlite") && files.contains { $0.hasPrefix(runID) }, "the run store and the run's staging: \(files)")
    }

    @Test func aPipelineWhoseParamsChooseWhereTheKeyGoesIsRefusedBeforeAnythingIsDecrypted() async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        try Data(
            """
            pipeline: check_key
            defaults: { timeout: 30s }
            params:
              base: { type: string, default: "https://api.openai.com" }
            steps:
              - id: decrypt
                uses: kms_decrypt
                with: { credential: openai/admin_key, as: openai_key, ttl: 5m, expect: openai }
              - id: validate
                uses: validate_openai
                with: { api_key: "${{ secrets.openai_key }}", base_url: "${{ params.base }}" }
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/check_key.yml"))
        #expect(try await sluice("keys", "init").status == 0)
        #expect(try await sluice("secrets", "put", "default", "openai/admin_key", "--from-stdin", "--provider", "openai", stdin: value).status == 0)

        // A token holder's host: nothing may be sent there, and the key must not even be opened.
        let run = try await sluice("run", "check_key", "--param", "base=http://127.0.0.1:9")
        #expect(run.status == 1)
        #expect(
            run.stderr.contains(
                "pipelines/check_key.yml:11:61: error: step 'validate' (validate_openai): 'base_url' decides where the step sends secrets.openai_key, but it reads params.base"
            ), "\(run.stderr)")
        #expect(run.stderr.contains("e.g. ${{ env.BASE || 'https://api.openai.com' }}"))
        #expect(run.stderr.contains("[untrusted-secret-destination]"))
        #expect(run.stderr.contains("sluice run: fix the errors above first; nothing was run"))
        let audit = try await sluice("secrets", "audit", "default")
        #expect(audit.stdout.contains(" put ") && !audit.stdout.contains(" decrypt "), "nothing was decrypted: \(audit.stdout)")
        #expect(try await sluice("lint", "pipelines/check_key.yml").status == 1)
    }

    @Test(arguments: Backend.all)
    func keysAndSecretsFromInitToDelete(_ backend: Backend) async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        try await backend.withProjectDatabase(in: project) { database in try await keysAndSecretsFromInitToDelete(on: database) }
    }

    func keysAndSecretsFromInitToDelete(on database: PostgresTestDatabase?) async throws {
        let initialized = try await sluice("keys", "init")
        #expect(initialized.status == 0, "\(initialized.stderr)")
        #expect(initialized.stdout.hasPrefix("created keyring .sluice/keyring.json (mode 0600) with key version 1, check "))
        #expect(try keyringMode() == 0o600)
        let again = try await sluice("keys", "init")
        #expect(again.status == 1)
        #expect(again.stderr.contains("[keyring_exists]"))

        let put = try await sluice(
            "secrets", "put", "acme", "openai/admin_key", "--from-stdin", "--provider", "openai",
            "--metadata", #"{"owner": "finops", "organization": "org-7"}"#, stdin: value + "\n")
        #expect(put.status == 0, "\(put.stderr)")
        #expect(put.stdout == "stored credential acme/openai/admin_key (openai, value 1, key version 1)\n")

        let file = project.appendingPathComponent("db-password.txt")
        try Data("correct horse\n".utf8).write(to: file)
        #expect(try await sluice("secrets", "put", "acme", "warehouse/password", "--from-file", file.path, "--expires-at", "2099-01-01").status == 0)

        let list = try await sluice("secrets", "list", "acme")
        #expect(list.status == 0)
        let lines = list.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("name"))
        #expect(lines[1].hasPrefix("openai/admin_key ") && lines[1].contains(" openai ") && lines[1].hasSuffix("organization,owner"))
        #expect(lines[2].hasPrefix("warehouse/password") && lines[2].contains("2099-01-01T00:00:00Z"))

        let verify = try await sluice("secrets", "verify", "acme", "openai/admin_key")
        #expect(verify.stdout == "credential acme/openai/admin_key opens: openai, value 1, key version 1, \(value.utf8.count) bytes, format ok\n")
        #expect(try await sluice("secrets", "verify", "acme", "warehouse/password").stdout.contains("13 bytes"))

        let rotate = try await sluice(
            "secrets", "rotate", "acme", "openai/admin_key", "--from-stdin", "--grace", "2h",
            stdin: "sk-proj-CliRotated0nlyForTests_abcdefghijklmn0123")
        #expect(rotate.status == 0, "\(rotate.stderr)")
        #expect(rotate.stdout.hasPrefix("rotated credential acme/openai/admin_key to value 2; value 1 stays valid until "))
        #expect(try await sluice("secrets", "verify", "acme", "openai/admin_key", "--previous").stdout.contains("value 1 (previous)"))

        let keys = try await sluice("keys", "rotate", "--grace", "1d")
        #expect(keys.status == 0, "\(keys.stderr)")
        #expect(keys.stdout.contains("key version 2 is now active"))
        #expect(keys.stdout.contains("version 1 is retired and still decrypts until "))
        #expect(keys.stdout.contains("re-wrapped 2 credentials to key version 2"))
        #expect(try keyringMode() == 0o600)
        let keyList = try await sluice("keys", "list")
        let keyLines = keyList.stdout.split(separator: "\n")
        #expect(keyLines.count == 4)
        #expect(keyLines[2].hasPrefix("1 ") && keyLines[2].contains(" retired ") && keyLines[2].hasSuffix(" 0"))
        #expect(keyLines[3].hasPrefix("2 ") && keyLines[3].contains(" active ") && keyLines[3].hasSuffix(" 3"))
        #expect(try await sluice("keys", "rewrap").stdout == "nothing to re-wrap: every stored value is wrapped by key version 2\n")
        #expect(try await sluice("secrets", "verify", "acme", "openai/admin_key").stdout.contains("value 2, key version 2"))

        #expect(try await sluice("secrets", "delete", "acme", "warehouse/password").stdout == "deleted credential acme/warehouse/password\n")
        let afterDelete = try await sluice("secrets", "delete", "acme", "warehouse/password")
        #expect(afterDelete.status == 1 && afterDelete.stderr.contains("[credential_not_found]"))
        #expect(try await sluice("secrets", "list", "globex").stdout == "no credentials in org globex\n")

        let audit = try await sluice("secrets", "audit", "acme", "openai/admin_key")
        #expect(audit.stdout.contains(" rewrap ") && audit.stdout.contains(" rotate ") && audit.stdout.contains(" put "))

        let everything = transcript.all
        let values = [value, "sk-proj-CliRotated0nlyForTests_abcdefghijklmn0123", "correct horse"]
        for value in values { #expect(!everything.contains(value)) }
        let runStore = project.appendingPathComponent(".sluice/runs.sqlite").path
        if let database {
            // On the server, sealed: the rows are there, no value in clear in any of its tables,
            // and nothing of the stores in the project's folder.
            #expect(
                try database.sql(
                    "SELECT org || ' ' || name || ' ' || generation || ' ' || key_version || ' ' || version FROM sluice.credential ORDER BY 1")
                    == "acme openai/admin_key 2 2 3")
            let actions = try database.sql(
                "SELECT DISTINCT action FROM sluice.credential_audit WHERE org = 'acme' AND credential = 'openai/admin_key' ORDER BY 1")
            #expect(actions.split(separator: "\n").count >= 3 && ["put", "rotate", "rewrap"].allSatisfy(actions.contains), "\(actions)")
            for value in values { #expect(try database.tablesHolding(value).isEmpty, "a value in clear on the server") }
            #expect(!FileManager.default.fileExists(atPath: runStore))
        } else {
            #expect(FileManager.default.fileExists(atPath: runStore))
            for value in values { #expect(filesHolding(value, in: project).holding.isEmpty, "a value in clear under .sluice/") }
        }
    }

    @Test(arguments: Backend.all)
    func eachBadInputGetsItsOwnError(_ backend: Backend) async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        try await backend.withProjectDatabase(in: project) { database in try await eachBadInputGetsItsOwnError(on: database) }
    }

    func eachBadInputGetsItsOwnError(on database: PostgresTestDatabase?) async throws {
        func expectError(_ result: CommandResult, _ code: String, _ context: String) {
            #expect(result.status == 1, "\(context): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("[\(code)]"), "\(context): \(result.stderr)")
        }
        expectError(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value), "keyring_missing", "no keyring")
        #expect(try await sluice("keys", "init").status == 0)
        let keyring = project.appendingPathComponent(".sluice/keyring.json").path

        chmod(keyring, 0o644)
        expectError(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value), "keyring_permissions", "0644 keyring")
        expectError(try await sluice("keys", "list"), "keyring_permissions", "0644 keyring, keys list")
        chmod(keyring, 0o600)

        let good = try Data(contentsOf: URL(fileURLWithPath: keyring))
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: keyring))
        chmod(keyring, 0o600)
        expectError(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value), "keyring_corrupt", "corrupt keyring")
        expectError(try await sluice("keys", "rotate"), "keyring_corrupt", "rotating a corrupt keyring")
        try good.write(to: URL(fileURLWithPath: keyring))
        chmod(keyring, 0o600)

        // Usage errors: no value source, a bad time or duration.
        #expect(try await sluice("secrets", "put", "acme", "k").status == 2)
        #expect(try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--from-file", "x").status == 2)
        #expect(try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--expires-at", "soon", stdin: "v").status == 2)
        #expect(try await sluice("secrets", "rotate", "acme", "k", "--from-stdin", "--grace", "0s", stdin: "v").status == 2)

        expectError(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: " \n\t\n"), "value_empty", "whitespace value")
        expectError(
            try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--provider", "openai", stdin: "hunter2-hunter2-hunter2-hunter2"),
            "value_format", "not an OpenAI key")
        expectError(
            try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--provider", "gcp", stdin: #"{"type": "user"}"#),
            "value_format", "not a service account")
        let unknown = try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--provider", "vault", stdin: value)
        expectError(unknown, "provider_unknown", "unknown provider")
        #expect(unknown.stderr.contains("warning") && unknown.stderr.contains("unknown provider 'vault'"))
        expectError(
            try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--metadata", "[1]", stdin: value), "metadata_invalid", "metadata")
        expectError(
            try await sluice("secrets", "put", "acme", "k", "--from-stdin", "--expires-at", "2001-01-01", stdin: value), "time_invalid", "past expiry"
        )
        expectError(try await sluice("secrets", "put", "acme", "a b", "--from-stdin", stdin: value), "name_invalid", "name")
        expectError(try await sluice("secrets", "verify", "acme", "missing"), "credential_not_found", "missing credential")

        #expect(try await sluice("secrets", "put", "acme", "openai/key", "--from-stdin", "--provider", "openai", stdin: value).status == 0)
        #expect(
            try await sluice(
                "secrets", "put", "globex", "openai/key", "--from-stdin", "--provider", "openai",
                stdin: "sk-proj-Globex0nlyForTests_abcdefghijklmnopq0123"
            ).status == 0)
        #expect(try await sluice("secrets", "put", "acme", "short_lived", "--from-stdin", stdin: "temporary").status == 0)
        expectError(
            try await sluice("secrets", "put", "acme", "openai/key", "--from-stdin", "--provider", "openai", stdin: value),
            "credential_exists", "put twice")

        try await sql("UPDATE credential SET expires_at = 1.0 WHERE name = 'short_lived'", on: database)
        expectError(try await sluice("secrets", "verify", "acme", "short_lived"), "credential_expired", "expired")

        try await sql(
            "UPDATE credential SET sealed = (SELECT sealed FROM credential WHERE org = 'acme' AND name = 'openai/key') WHERE org = 'globex'",
            on: database)
        expectError(try await sluice("secrets", "verify", "globex", "openai/key"), "credential_wrong_org", "blob copied to another org")

        // One byte of the ciphertext changed (a byte 16 from the end becomes 0), in each's SQL.
        let tamper =
            database == nil
            ? "UPDATE credential SET sealed = substr(sealed, 1, length(sealed) - 17) || X'00' || substr(sealed, length(sealed) - 15)"
            : "UPDATE credential SET sealed = substring(sealed FROM 1 FOR length(sealed) - 17) || '\\x00'::bytea || substring(sealed FROM length(sealed) - 15)"
        try await sql(tamper + " WHERE org = 'acme' AND name = 'openai/key'", on: database)
        expectError(try await sluice("secrets", "verify", "acme", "openai/key"), "credential_tampered", "tampered ciphertext")
        let audit = try await sluice("secrets", "audit", "acme", "openai/key", "--limit", "1")
        #expect(audit.stdout.contains(" decrypt ") && audit.stdout.contains(" failed ") && audit.stdout.contains("credential_tampered"))

        #expect(!transcript.all.contains("CliValue0nly"))
        #expect(!transcript.all.contains("Globex0nly"))
        #expect(!transcript.all.contains("hunter2"))
    }

    @Test func aPassphraseKeyNeedsItsSaltAndAWrongPassphraseIsNamed() async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        let passphrase = "tests-only passphrase, long enough"
        let salt = "0f9e8d7c6b5a49382716051423324150"
        let noSalt = try await sluice(
            "secrets", "put", "acme", "k", "--from-stdin", stdin: value,
            environment: Self.environment(["SLUICE_KEY_PASSPHRASE": passphrase]))
        #expect(noSalt.status == 1)
        #expect(noSalt.stderr.contains("[salt_missing]"))
        #expect(!noSalt.stderr.contains(passphrase))
        // Commands that open nothing refuse half a key configuration too.
        for arguments in [["secrets", "list", "acme"], ["secrets", "audit", "acme"], ["secrets", "delete", "acme", "k"], ["keys", "list"]] {
            let refused = try await launch(arguments, environment: Self.environment(["SLUICE_KEY_SALT": salt])).finish()
            #expect(refused.status == 1 && refused.stderr.contains("[passphrase_missing]"), "\(arguments): \(refused.stderr)")
        }

        let right = Self.environment(["SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt])
        let put = try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value, environment: right)
        #expect(put.status == 0, "\(put.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project.appendingPathComponent(".sluice/keyring.json").path))
        #expect(try await sluice("secrets", "verify", "acme", "k", environment: right).status == 0)
        #expect(try await sluice("keys", "list", environment: right).stdout.contains("key derived from SLUICE_KEY_PASSPHRASE"))

        let wrong = try await sluice(
            "secrets", "verify", "acme", "k",
            environment: Self.environment(["SLUICE_KEY_PASSPHRASE": passphrase + "?", "SLUICE_KEY_SALT": salt]))
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("[key_mismatch]") && wrong.stderr.contains("wrong passphrase"))
        let rotate = try await sluice("keys", "rotate", environment: right)
        #expect(rotate.status == 1 && rotate.stderr.contains("[keyring_required]"))
        let both = try await sluice("secrets", "verify", "acme", "k", "--keyring", "k.json", environment: right)
        #expect(both.status == 1 && both.stderr.contains("[key_source_ambiguous]"))
        #expect(!transcript.all.contains(passphrase))
        #expect(!transcript.all.contains("CliValue0nly"))
    }

    /// Two projects share a keyring; one rotates it and the other never re-wraps: its
    /// credentials open during the old key's grace period, and are refused once it ends.
    /// Two keyrings, so that neither half depends on how fast the machine is: with a grace of an
    /// hour the credential opens, and with one of a second it is refused once that has passed.
    @Test func aRetiredKeyIsRefusedAfterItsGracePeriod() async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        let other = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: other) }
        let shared = Self.environment(["SLUICE_KEYRING": project.appendingPathComponent("shared-keyring.json").path])
        #expect(try await sluice("keys", "init", environment: shared).status == 0)
        #expect(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value, environment: shared).status == 0)
        let rotate = try await sluice("keys", "rotate", "--grace", "1h", environment: shared, in: other)
        #expect(rotate.stdout.contains("no credentials in this project to re-wrap"))
        #expect(try await sluice("secrets", "verify", "acme", "k", environment: shared).status == 0)

        let brief = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: brief) }
        let briefly = Self.environment(["SLUICE_KEYRING": brief.appendingPathComponent("shared-keyring.json").path])
        #expect(try await sluice("keys", "init", environment: briefly, in: brief).status == 0)
        #expect(try await sluice("secrets", "put", "acme", "k", "--from-stdin", stdin: value, environment: briefly, in: brief).status == 0)
        #expect(try await sluice("keys", "rotate", "--grace", "1s", environment: briefly, in: other).status == 0)
        try await Task.sleep(for: .milliseconds(1200))
        let refused = try await sluice("secrets", "verify", "acme", "k", environment: briefly, in: brief)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("[key_retired]") && refused.stderr.contains("grace period ended"))
        let rewrap = try await sluice("keys", "rewrap", environment: briefly, in: brief)
        #expect(rewrap.status == 1)
        #expect(rewrap.stderr.contains("could not re-wrap acme/k: key_retired"))
        #expect(try await sluice("keys", "list", environment: briefly, in: brief).stdout.contains(" expired "))
    }

    /// Ten processes race to store credentials in an org that takes three.
    @Test(arguments: Backend.all)
    func processesRacingPutsStoreExactlyTheLimit(_ backend: Backend) async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        try await backend.withProjectDatabase(in: project) { database in try await processesRacingPutsStoreExactlyTheLimit(on: database) }
    }

    func processesRacingPutsStoreExactlyTheLimit(on database: PostgresTestDatabase?) async throws {
        #expect(try await sluice("keys", "init").status == 0)
        #expect(try await sluice("secrets", "list", "acme").status == 0)
        let environment = Self.environment(["SLUICE_CREDENTIAL_LIMIT": "3"])
        let launched = try (0..<10).map { index in
            try launch(["secrets", "put", "acme", "token_\(index)", "--from-stdin"], stdin: "token-value-\(index)", environment: environment)
        }
        var results: [CommandResult] = []
        for process in launched { results.append(try await process.finish()) }
        results.forEach(transcript.add)
        #expect(results.filter { $0.status == 0 }.count == 3, "\(results.map(\.stderr))")
        #expect(results.filter { $0.status == 1 && $0.stderr.contains("[credential_limit]") }.count == 7, "\(results.map(\.stderr))")
        #expect(try await sluice("secrets", "list", "acme").stdout.split(separator: "\n").count == 4)
        if let database { #expect(try database.sql("SELECT count(*) FROM sluice.credential WHERE org = 'acme'") == "3") }
        #expect(!transcript.all.contains("token-value-"))
    }

    /// Six processes rotate one credential, all expecting version 1: one wins.
    @Test(arguments: Backend.all)
    func processesRacingRotationsHaveOneWinner(_ backend: Backend) async throws {
        defer { try? FileManager.default.removeItem(at: project) }
        try await backend.withProjectDatabase(in: project) { database in try await processesRacingRotationsHaveOneWinner(on: database) }
    }

    func processesRacingRotationsHaveOneWinner(on database: PostgresTestDatabase?) async throws {
        #expect(try await sluice("keys", "init").status == 0)
        #expect(try await sluice("secrets", "put", "acme", "shared", "--from-stdin", stdin: "first-value").status == 0)
        let launched = try (0..<6).map { index in
            try launch(["secrets", "rotate", "acme", "shared", "--from-stdin", "--expect-version", "1"], stdin: "next-value-\(index)")
        }
        var results: [CommandResult] = []
        for process in launched { results.append(try await process.finish()) }
        results.forEach(transcript.add)
        #expect(results.filter { $0.status == 0 }.count == 1, "\(results.map(\.stderr))")
        #expect(results.filter { $0.status == 1 && $0.stderr.contains("[conflict]") }.count == 5, "\(results.map(\.stderr))")
        let list = try await sluice("secrets", "list", "acme").stdout.split(separator: "\n")
        // name, provider, value 2, row version 2.
        #expect(list.count == 2 && Array(list[1].split(separator: " ").prefix(4)) == ["shared", "generic", "2", "2"], "\(list)")
        if let database { #expect(try database.sql("SELECT generation, version FROM sluice.credential WHERE org = 'acme'") == "2|2") }
        #expect(!transcript.all.contains("next-value-") && !transcript.all.contains("first-value"))
    }
}
