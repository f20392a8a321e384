import Foundation
import SluiceModel
import SluiceProviders
import SluiceSQLite
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine

/// Invariant 10 in the engine: a run reads input files only under its project (not `.sluice/`)
/// and its org's input root; a value the run's caller chose (a param given through the API or
/// a webhook) can't make a path absolute, hold `..` or choose a credential; no run sees key
/// material in `env.*`. Real project folders, real SQLite files.
struct TenantConfinementTests {
    static let loadFile = """
        pipeline: load_file
        defaults: { timeout: 1m }
        params:
          file: { type: string, default: data/events.csv }
        steps:
          - id: load
            uses: ingest
            with: { source: { format: csv, path: "${{ params.file }}" }, table: events_raw, schema: schemas/events_raw.json }
        """

    static let events = "event_id,ts,day,org,amount\ne1,2026-03-01T10:00:00Z,2026-03-01,acme,5\n"

    /// A folder beside the project, with a CSV that would load (its secret must never show).
    struct Outside {
        let folder: URL
        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-outside-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("acme"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("globex"), withIntermediateDirectories: true)
            let secret = "event_id,ts,day,org,amount\nOUTSIDE-SECRET,2026-03-01T10:00:00Z,2026-03-01,globex,1\n"
            for file in ["secret.csv", "acme/own.csv", "globex/billing.csv"] {
                try Data(secret.utf8).write(to: folder.appendingPathComponent(file))
            }
        }
        var path: String { folder.path }
        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    /// Runs `yaml` (lint-clean, warnings allowed) as the front end of `trigger` would start it.
    func run(
        _ project: PipelineProject, _ yaml: String = loadFile, trigger: RunTrigger, params: [String: String] = [:],
        env: [String: String] = [:]
    ) async throws -> RunRecord {
        try project.write("pipelines/load_file.yml", yaml)
        let (plan, diagnostics) = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(
            file: "pipelines/load_file.yml")
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        return try await executor.start(
            try #require(plan, "\(diagnostics)"),
            .init(org: "acme", logicalDate: "2026-03-01", trigger: trigger, params: params, env: env))
    }

    func load(_ project: PipelineProject, _ run: RunRecord) async throws -> StepRunRecord {
        try #require(try await project.store.steps(of: run.id).first { $0.stepID == "load" })
    }

    @Test func aCallersPathCantLeaveTheProjectOrReachItsState() async throws {
        let project = try PipelineProject()
        let outside = try Outside()
        defer { project.remove(); outside.remove() }
        try project.write("data/events.csv", Self.events)
        try FileManager.default.createSymbolicLink(
            atPath: project.root.appendingPathComponent("data/link.csv").path,
            withDestinationPath: outside.folder.appendingPathComponent("secret.csv").path)
        try FileManager.default.createSymbolicLink(
            atPath: project.root.appendingPathComponent("data/elsewhere").path,
            withDestinationPath: outside.path)
        _ = try await project.store.runs(pipeline: "x", org: "acme", limit: 1)  // .sluice/runs.sqlite exists

        var reasons: [String: String] = [:]
        for given in [
            "/etc/passwd", "\(outside.path)/secret.csv", "\(outside.path)/missing.csv", "../../x",
            "../\(outside.folder.lastPathComponent)/secret.csv", "data/link.csv", "data/elsewhere/secret.csv",
            "data/elsewhere/missing.csv", ".sluice/runs.sqlite", "data/../data/events.csv", "./.sluice/../.sluice/runs.sqlite",
        ] {
            for trigger in [RunTrigger.api, .webhook] {
                let run = try await run(project, trigger: trigger, params: ["file": given])
                let step = try await load(project, run)
                #expect(run.state == .failed, "\(given): \(run.reason)")
                #expect(step.errorCode == "input_refused", "\(given) (\(trigger)): \(step.errorCode ?? "") \(step.reason)")
                #expect(step.reason.contains("'source.path' (from params.file, given by the caller of the run) can't be read"), "\(step.reason)")
                for leak in [outside.path, outside.folder.lastPathComponent, "secret", "passwd", "OUTSIDE"] {
                    #expect(!step.reason.contains(leak) && !run.reason.contains(leak), "\(given): \(step.reason)")
                }
                reasons[given] = step.reason
            }
        }
        // Whether a file is there outside or not, the answer is the same.
        #expect(reasons["\(outside.path)/secret.csv"] == reasons["\(outside.path)/missing.csv"])
        #expect(reasons["data/elsewhere/secret.csv"] == reasons["data/elsewhere/missing.csv"])
        #expect(reasons["data/link.csv"] == reasons["data/elsewhere/missing.csv"])
        #expect(try await !project.tableExists("events_raw"))

        let fine = try await run(project, trigger: .api, params: ["file": "data/events.csv"])
        #expect(fine.state == .succeeded, "\(fine.reason)")
    }

    @Test func theOperatorsOwnPathsAreConfinedTooAndSaidPlainly() async throws {
        let project = try PipelineProject()
        let outside = try Outside()
        defer { project.remove(); outside.remove() }
        try project.write("data/events.csv", Self.events)
        try FileManager.default.createSymbolicLink(
            atPath: project.root.appendingPathComponent("data/link.csv").path,
            withDestinationPath: outside.folder.appendingPathComponent("secret.csv").path)
        _ = try await project.store.runs(pipeline: "x", org: "acme", limit: 1)

        var reasons: [String: String] = [:]
        for given in [
            "/etc/passwd", "\(outside.path)/secret.csv", "\(outside.path)/missing.csv", "data/link.csv",
            "data/../../\(outside.folder.lastPathComponent)/secret.csv", ".sluice/runs.sqlite",
        ] {
            let run = try await run(project, trigger: .cli, params: ["file": given])
            let step = try await load(project, run)
            #expect(step.errorCode == "input_refused", "\(given): \(step.errorCode ?? "") \(step.reason)")
            #expect(
                step.reason.contains("input file \(shown(given)) ('source.path') can't be read: it is not within the files this run may read"),
                "\(step.reason)")
            #expect(!step.reason.replacingOccurrences(of: given, with: "").contains("OUTSIDE"), "\(step.reason)")
            reasons[given] = step.reason.replacingOccurrences(of: shown(given), with: "(given)")
        }
        // The link is named as given, never by where it leads.
        #expect(!reasons["data/link.csv"]!.contains(outside.path))
        #expect(reasons["\(outside.path)/secret.csv"] == reasons["\(outside.path)/missing.csv"])

        // The operator may write `..` and absolute paths that stay inside the project.
        for given in ["data/../data/events.csv", project.root.appendingPathComponent("data/events.csv").path] {
            let run = try await run(project, trigger: .cli, params: ["file": given])
            #expect(run.state == .succeeded, "\(given): \(run.reason)")
        }
        let missing = try await run(project, trigger: .cli, params: ["file": "data/missing.csv"])
        #expect(try await load(project, missing).errorCode == "missing_input")
        #expect(try await load(project, missing).reason.contains("input file 'data/missing.csv' does not exist"))
    }

    @Test func anOrgReadsItsOwnInputRootAndNotAnothersFolder() async throws {
        let project = try PipelineProject()
        let outside = try Outside()
        defer { project.remove(); outside.remove() }
        try project.write("data/acme/usage.csv", Self.events)
        try project.write("data/globex/billing.csv", Self.events)
        try project.write("data/shared.csv", Self.events)
        try project.write("sluice.yml", "inputs: { root: \"data/{org}\" }\n")

        for trigger in [RunTrigger.api, .cli] {
            for (given, allowed) in [
                ("data/acme/usage.csv", true), ("data/shared.csv", true), ("data/globex/billing.csv", false),
                ("data/globex/missing.csv", false),
            ] {
                let run = try await run(project, trigger: trigger, params: ["file": given])
                #expect((run.state == .succeeded) == allowed, "\(given) (\(trigger)): \(run.reason)")
                if !allowed { #expect(try await load(project, run).errorCode == "input_refused") }
            }
        }

        // An input root outside the project: the org's own folder, not its neighbour's.
        try project.write("sluice.yml", "inputs: { root: \"\(outside.path)/{org}\" }\n")
        let own = try await run(project, trigger: .cli, params: ["file": "\(outside.path)/acme/own.csv"])
        #expect(own.state == .succeeded, "\(own.reason)")
        let other = try await run(project, trigger: .cli, params: ["file": "\(outside.path)/globex/billing.csv"])
        #expect(try await load(project, other).errorCode == "input_refused")

        // The pipeline may build an absolute path in the org's root around what the caller chose.
        let rooted = Self.loadFile.replacingOccurrences(
            of: "path: \"${{ params.file }}\"",
            with: "path: \"\(outside.path)/${{ run.org }}/${{ params.file }}\"")
        let chosen = try await run(project, rooted, trigger: .api, params: ["file": "own.csv"])
        #expect(chosen.state == .succeeded, "\(chosen.reason)")
        let climbing = try await run(project, rooted, trigger: .api, params: ["file": "../globex/billing.csv"])
        #expect(try await load(project, climbing).errorCode == "input_refused")
    }

    @Test func aRunWhoseProjectSettingsAreBrokenRunsNothing() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", Self.events)
        try project.write("sluice.yml", "network:\n  allow: [10.0.0.0/99]\n")
        let run = try await run(project, trigger: .cli)
        #expect(run.state == .failed)
        #expect(run.reason.hasPrefix("the project's settings are invalid: sluice.yml:2:11: network.allow: '10.0.0.0/99'"), "\(run.reason)")
        #expect(try await load(project, run).state == .skipped)
    }

    @Test func aResumedRunIsAsTrustedAsTheRunItsChainStartedFrom() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", Self.events)
        try project.write("pipelines/load_file.yml", Self.loadFile)
        let plan = try #require(
            Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).plan(file: "pipelines/load_file.yml").plan)
        let executor = Executor(
            processors: .standard, store: project.store, warehouse: project.warehouse,
            project: ProjectContext(root: project.root), logger: quietLogger)
        // `..` inside the project is fine from the operator, not from a caller.
        let params = ["file": "data/../data/events.csv"]
        let api = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-01", trigger: .api, params: params, env: [:]))
        #expect(api.state == .failed)
        let resumed = try await executor.resume(plan, runID: api.id, env: [:])
        #expect(resumed.trigger == .resume)
        #expect(try await load(project, resumed).errorCode == "input_refused", "\(resumed.reason)")
        let again = try await executor.resume(plan, runID: resumed.id, env: [:])
        #expect(try await load(project, again).errorCode == "input_refused", "\(again.reason)")

        // The same params from `sluice run`, failed for another reason, resume trusted.
        try project.write("data/events.csv", "event_id\n")
        let cli = try await executor.start(plan, .init(org: "acme", logicalDate: "2026-03-02", trigger: .cli, params: params, env: [:]))
        #expect(try await load(project, cli).errorCode != "input_refused", "\(cli.reason)")
        try project.write("data/events.csv", Self.events)
        let fixed = try await executor.resume(plan, runID: cli.id, env: [:])
        #expect(fixed.state == .succeeded, "\(fixed.reason)")
    }

    @Test func aCallerCantChooseWhichCredentialIsDecrypted() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let yaml = """
            pipeline: test_run
            defaults: { timeout: 1m }
            params:
              name: { type: string, default: openai/admin_key }
            steps:
              - id: key
                uses: kms_decrypt
                with: { credential: "${{ params.name }}", as: the_key }
            """
        // Lint refuses it; a server may still hold a plan made before, so the run refuses too.
        let result = PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
        #expect(result.diagnostics.contains { $0.rule == .invalidValue && $0.message.contains("must be a literal credential name") })
        let plan = try PipelinePlan.build(try #require(result.definition)).get()
        let executor = Executor(processors: .standard, store: harness.store, logger: quietLogger)
        let run = try await executor.start(
            plan,
            .init(
                org: "acme", logicalDate: "2026-03-01", trigger: .webhook,
                params: ["name": "webhooks/billing_export"], env: [:]))
        let step = try #require(try await harness.store.steps(of: run.id).first)
        #expect(step.errorCode == "credential_refused", "\(step.reason)")
        #expect(step.reason.contains("'credential' reads params.name, which the caller of the run chose"))
    }

    @Test func noRunSeesKeyMaterialInItsEnvironment() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let env = [
            "SLUICE_KEY_PASSPHRASE": "correct horse battery staple", "SLUICE_KEY_SALT": "0123456789abcdef0123",
            "SLUICE_KEYRING": "/secure/keyring.json", "SLUICE_KEY_ROTATED": "old", "REGION": "eu",
        ]
        let yaml = """
            pipeline: test_run
            defaults: { timeout: 1m }
            steps:
              - { id: echo, uses: test_echo, with: { value: "[${{ env.SLUICE_KEY_PASSPHRASE }}|${{ env.SLUICE_KEY_SALT }}|${{ env.SLUICE_KEYRING }}|${{ env.REGION }}]" } }
              - { id: tell, uses: notify, needs: [echo], with: { url: "https://hooks.example.com/x" } }
            """
        for trigger in [RunTrigger.cli, .api, .schedule] {
            let run = try await harness.executor(adding: [recorder]).start(
                try harness.plan(yaml, adding: [recorder]),
                .init(org: "acme", logicalDate: "2026-03-01", trigger: trigger, env: env))
            #expect(run.state == .succeeded, "\(run.reason)")
            let echo = try await harness.steps(run)["echo"]
            #expect(echo?.outputs["echo"] == .string("[|||eu]"))
        }
        for context in recorder.contexts {
            #expect(context.environment["REGION"] == "eu")
            #expect(context.environment.keys.filter { $0.hasPrefix("SLUICE_KEY") }.isEmpty, "\(context.environment.keys)")
        }
    }

    @Test func fieldsMadeFromACallersValuesAreMarked() async throws {
        let harness = try Harness(flakyFailures: 1)
        defer { harness.remove() }
        let recorder = RecordingNotify()
        let yaml = """
            pipeline: test_run
            defaults: { timeout: 1m }
            params:
              hook: { type: string, default: "https://hooks.example.com/a" }
              note: { type: string, default: "hello" }
            steps:
              - id: tell
                uses: notify
                with: { url: "${{ params.hook }}", message: "${{ params.note }} ${{ run.request_id }}", link: "https://x.example/${{ run.org }}" }
              - { id: call, uses: test_flaky, needs: [tell] }
              - id: tell_again
                uses: notify
                needs: [call]
                with: { url: "https://hooks.example.com/v1/${{ params.hook }}", message: "${{ run.request_id }}" }
            """
        let executor = harness.executor(adding: [recorder])
        let loaded = PipelineLoader(registry: harness.catalog.adding([recorder]).registry).load(Data(yaml.utf8), file: "pipelines/test_run.yml")
        #expect(loaded.diagnostics.map(\.rule) == [.paramDrivenURL, .paramDrivenURL])
        let plan = try PipelinePlan.build(try #require(loaded.definition)).get()
        // Given through the API: the params the caller sent and its request id; not the defaults.
        let api = try await executor.start(
            plan,
            .init(
                org: "acme", logicalDate: "2026-03-01", trigger: .api,
                params: ["hook": "https://evil.example/x"], env: [:], requestID: "req-1"))
        #expect(api.state == .failed)  // test_flaky fails once
        let fromAPI = try #require(recorder.contexts.last)
        #expect(fromAPI.untrustedFields["url"] == ConfigResolver.UntrustedField(references: ["params.hook"], prefix: ""))
        #expect(fromAPI.untrustedFields["message"] == ConfigResolver.UntrustedField(references: ["run.request_id"], prefix: "hello "))
        #expect(fromAPI.untrustedFields["link"] == nil)
        #expect(fromAPI.isUntrusted("url") && !fromAPI.isUntrusted("link"))

        // Its resume keeps the caller's params (a resume has no request id of its own).
        let resumed = try await executor.resume(plan, runID: api.id, env: [:])
        #expect(resumed.state == .succeeded, "\(resumed.reason)")
        let fromResume = try #require(recorder.contexts.last)
        #expect(
            fromResume.untrustedFields == ["url": ConfigResolver.UntrustedField(references: ["params.hook"], prefix: "https://hooks.example.com/v1/")]
        )

        let cli = try await executor.start(
            plan,
            .init(
                org: "acme", logicalDate: "2026-03-02", trigger: .cli,
                params: ["hook": "https://hooks.example.com/b"], env: [:], requestID: "req-2"))
        #expect(cli.state == .succeeded, "\(cli.reason)")
        #expect(recorder.contexts.suffix(2).allSatisfy { $0.untrustedFields.isEmpty })
    }

    @Test func aParamMatchesItsPatternUpToTheVeryEnd() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        try project.write("data/events.csv", Self.events)
        try project.write("data/events.csv\n", Self.events)
        let yaml = Self.loadFile.replacingOccurrences(of: "default: data/events.csv", with: "default: data/events.csv, pattern: \".+\\\\.csv\"")
        let refused = try await run(project, yaml, trigger: .api, params: ["file": "data/events.csv\n"])
        #expect(refused.state == .failed)
        #expect(refused.reason == "param 'file': 'data/events.csv\\n' does not match its pattern .+\\.csv [invalid_params]", "\(refused.reason)")
        #expect(try await run(project, yaml, trigger: .api, params: ["file": "data/events.csv"]).state == .succeeded)
    }
}
