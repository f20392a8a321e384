import Foundation
import SluiceModel
import Testing

/// `sluice.yml` and the `SLUICE_*` variables over it.
struct ProjectSettingsTests {
    func project(_ settings: String?) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if let settings { try Data(settings.utf8).write(to: folder.appendingPathComponent("sluice.yml")) }
        return folder
    }

    func load(_ settings: String?, environment: [String: String] = [:]) async throws -> ProjectSettings {
        let folder = try project(settings)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try await ProjectSettings.load(projectRoot: folder, environment: environment)
    }

    func error(_ settings: String?, environment: [String: String] = [:]) async -> String {
        do {
            _ = try await load(settings, environment: environment)
            return "no error"
        } catch {
            return String(describing: error)
        }
    }

    @Test func noFileMeansTheDefaultOrg() async throws {
        #expect(try await load(nil).orgs == ["default"])
        #expect(try await load("# nothing set yet\n").orgs == ["default"])
    }

    @Test func orgsComeFromTheFileInTheirOrder() async throws {
        #expect(try await load("orgs: [globex, acme]\n").orgs == ["globex", "acme"])
        #expect(try await load("orgs:\n  - acme\n  - initech\n").orgs == ["acme", "initech"])
    }

    @Test func theEnvironmentWinsOverTheFile() async throws {
        #expect(try await load("orgs: [acme]\n", environment: ["SLUICE_ORGS": "globex, initech"]).orgs == ["globex", "initech"])
        #expect(try await load(nil, environment: ["SLUICE_ORGS": "solo"]).orgs == ["solo"])
        // Variables without the prefix are not settings.
        #expect(try await load("orgs: [acme]\n", environment: ["ORGS": "globex"]).orgs == ["acme"])
    }

    @Test func mistakesNameTheLineAndColumn() async {
        #expect(await error("orgs: [acme, 'bad name']\n").hasPrefix("sluice.yml:1:14: org 'bad name': "))
        #expect(await error("orgs: acme\n") == "sluice.yml:1:7: orgs must be a list of org names, like orgs: [acme, globex], not a string")
        #expect(await error("orgs: [acme]\norgz: [b]\n").hasPrefix("sluice.yml:2:1: unknown setting 'orgz'; sluice.yml has database"))
        #expect(await error("orgs: [acme, acme]\n") == "sluice.yml:1:14: org 'acme' is listed twice")
        #expect(await error("orgs: []\n").hasPrefix("sluice.yml:1:7: orgs is empty"))
        #expect(await error("- acme\n").hasPrefix("sluice.yml:1:1: sluice.yml must be a mapping"))
        #expect(await error("orgs: [acme\n").hasPrefix("sluice.yml:"))
        #expect(await error(nil, environment: ["SLUICE_ORGS": "acme,no way"]).hasPrefix("SLUICE_ORGS: org 'no way': "))
    }

    @Test func theDatabaseIsAServerURLWithoutItsPassword() async throws {
        #expect(try await load(nil).database == nil)
        let fromFile = try await load("orgs: [acme]\ndatabase: postgres://sluice@db.example.com:5433/wh?sslmode=require\n")
        #expect(
            fromFile.database == DatabaseSetting(url: "postgres://sluice@db.example.com:5433/wh?sslmode=require", source: "sluice.yml:2:11: database")
        )
        // The variable wins over the file, and an empty one is unset.
        let fromVariable = try await load(
            "database: postgres://a@one/x\n", environment: ["SLUICE_DATABASE_URL": "postgresql://b@two:6000/y"])
        #expect(fromVariable.database == DatabaseSetting(url: "postgresql://b@two:6000/y", source: "SLUICE_DATABASE_URL"))
        #expect(try await load("database: postgres://a@one/x\n", environment: ["SLUICE_DATABASE_URL": ""]).database?.url == "postgres://a@one/x")

        // A password in the URL is refused, wherever it is given, and never repeated.
        let inFile = await error("database: postgres://sluice:hunter2@db.example.com/wh\n")
        #expect(inFile.hasPrefix("sluice.yml:1:11: database: the URL carries a password"), "\(inFile)")
        #expect(inFile.contains("SLUICE_DATABASE_PASSWORD"))
        let inVariable = await error(nil, environment: ["SLUICE_DATABASE_URL": "postgres://sluice:hunter2@db/wh"])
        #expect(inVariable.hasPrefix("SLUICE_DATABASE_URL: the URL carries a password"), "\(inVariable)")
        for message in [inFile, inVariable] { #expect(!message.contains("hunter2")) }
        #expect(await error("database: mysql://db/wh\n").hasPrefix("sluice.yml:1:11: database: it is not a PostgreSQL URL"))
        #expect(await error("database: [a]\n").hasPrefix("sluice.yml:1:11: database must be a URL"))
    }

    @Test func limitsArePerOrgOverTheDefaultAndMistakesAreNamed() async throws {
        let settings = try await load(
            "limits:\n  default: { max_rows: 1000, max_requests: 50, llm_budget: 20000 }\n  acme: { max_rows: 5000, max_bytes: 2GiB }\n")
        #expect(settings.limits(for: "acme") == OrgLimits(step: StepLimits(maxRows: 5000, maxBytes: 2 << 30, maxRequests: 50), llmBudget: 20000))
        #expect(settings.limits(for: "globex") == OrgLimits(step: StepLimits(maxRows: 1000, maxRequests: 50), llmBudget: 20000))
        #expect(try await load(nil).limits(for: "acme") == OrgLimits())
        #expect(await error("limits: 5\n").hasPrefix("sluice.yml:1:9: limits must be a mapping of orgs"))
        #expect(
            await error("limits: { acme: { max_row: 5 } }\n").hasPrefix(
                "sluice.yml:1:19: unknown setting 'limits.acme.max_row'; limits.acme has llm_budget"))
        #expect(
            await error("limits: { acme: { max_rows: -1 } }\n")
                == "sluice.yml:1:29: limits.acme.max_rows must be a whole number (0 or more), not '-1'")
        #expect(
            await error("limits: { acme: { max_bytes: 2 parsecs } }\n").hasPrefix("sluice.yml:1:30: limits.acme.max_bytes: '2 parsecs' is not a size")
        )
        #expect(await error("limits: { 'bad org': { max_rows: 1 } }\n").hasPrefix("sluice.yml:1:11: limits: org 'bad org': "))
    }

    @Test func thePublicURLLinksRunsAndMayComeFromTheEnvironment() async throws {
        #expect(try await load(nil).publicURL == nil)
        #expect(try await load(nil).runLink("r1") == nil)
        let settings = try await load("orgs: [acme]\npublic_url: https://sluice.example.com/\n")
        #expect(settings.publicURL == "https://sluice.example.com")
        #expect(settings.runLink("r01abc") == "https://sluice.example.com/v1/runs/r01abc")
        #expect(try await load("public_url: http://127.0.0.1:8080/sluice\n").runLink("r1") == "http://127.0.0.1:8080/sluice/v1/runs/r1")
        #expect(
            try await load("public_url: https://a.example\n", environment: ["SLUICE_PUBLIC_URL": "https://b.example"]).publicURL
                == "https://b.example")
    }

    @Test func aPublicURLThatIsNoPlainHTTPURLIsRefusedWhereItIsWritten() async {
        #expect(
            await error("public_url: sluice.example.com\n")
                == "sluice.yml:1:13: public_url: 'sluice.example.com' is not an absolute http or https URL (like https://sluice.example.com)")
        #expect(
            await error("public_url: https://ops:pw@sluice.example.com\n")
                == "sluice.yml:1:13: public_url: the URL must not carry a user or password: it is put into notifications")
        #expect(
            await error("public_url: https://sluice.example.com/?x=1\n")
                == "sluice.yml:1:13: public_url: the URL must not have a query or fragment: run paths are added to it")
        #expect(
            await error("public_url: [a]\n") == "sluice.yml:1:13: public_url must be a URL, like public_url: https://sluice.example.com, not a list")
        #expect(
            await error(nil, environment: ["SLUICE_PUBLIC_URL": "ftp://x.example"])
                == "SLUICE_PUBLIC_URL: 'ftp://x.example' is not an absolute http or https URL (like https://sluice.example.com)")
    }

    // Run settings: moved here from StagingRetentionTests and WebhookAuditRetentionTests when
    // they became project settings; the same values and messages.

    @Test func theStagingRetentionComesFromTheEnvironment() async throws {
        #expect(try await load(nil).stagingRetention == .seconds(7 * 86_400))
        #expect(try await load(nil, environment: ["SLUICE_STAGING_RETENTION": "12h"]).stagingRetention == .seconds(12 * 3600))
        await #expect(throws: SettingsError.self) { try await load(nil, environment: ["SLUICE_STAGING_RETENTION": "soon"]) }
    }

    @Test func webhookAuditRetentionComesFromTheEnvironmentAndBadValuesAreNamed() async throws {
        let settings = try await load(nil, environment: ["SLUICE_WEBHOOK_AUDIT_RETENTION": "7d", "SLUICE_WEBHOOK_AUDIT_MAX_REFUSALS": "500"])
        #expect(settings.webhookAuditRetention == .seconds(7 * 86_400) && settings.webhookAuditMaxRefusals == 500)
        let defaults = try await load(nil)
        #expect(defaults.webhookAuditRetention == .seconds(30 * 86_400) && defaults.webhookAuditMaxRefusals == 100_000)
        await #expect(throws: SettingsError.self) { try await load(nil, environment: ["SLUICE_WEBHOOK_AUDIT_RETENTION": "a month"]) }
        #expect(
            await error(nil, environment: ["SLUICE_WEBHOOK_AUDIT_MAX_REFUSALS": "-1"])
                == "SLUICE_WEBHOOK_AUDIT_MAX_REFUSALS must be a whole number of refusals to keep (0 or more), not '-1'")
    }

    /// Every run setting can be written in sluice.yml too; the variable wins, and a bad value
    /// is named where it is: the file's at its line and column, the variable's by its name.
    @Test func runSettingsComeFromTheFileAndTheVariableWins() async throws {
        let file = "run_lease: 2m\nstaging_retention: 3d\ncredential_limit: 7\nwebhook_audit: { retention: 1d, max_refusals: 10 }\n"
        let settings = try await load(file)
        #expect(settings.runLease == .seconds(120))
        #expect(settings.stagingRetention == .seconds(3 * 86_400))
        #expect(settings.credentialLimit == 7)
        #expect(settings.webhookAuditRetention == .seconds(86_400) && settings.webhookAuditMaxRefusals == 10)
        let overridden = try await load(file, environment: ["SLUICE_RUN_LEASE": "45s", "SLUICE_CREDENTIAL_LIMIT": "3"])
        #expect(overridden.runLease == .seconds(45) && overridden.credentialLimit == 3 && overridden.stagingRetention == .seconds(3 * 86_400))
        #expect(try await load(nil).runLease == .seconds(30))

        #expect(await error("run_lease: soon\n").hasPrefix("sluice.yml:1:12: run_lease: 'soon' is not a duration; expected a duration like"))
        #expect(await error("credential_limit: 0\n") == "sluice.yml:1:19: credential_limit must be a positive whole number, not '0'")
        #expect(
            await error("webhook_audit: { max_refusals: lots }\n")
                == "sluice.yml:1:32: webhook_audit.max_refusals must be a whole number of refusals to keep (0 or more), not 'lots'")
        #expect(await error("webhook_audit: { keep: 1 }\n").hasPrefix("sluice.yml:1:18: unknown setting 'webhook_audit.keep'"))
        #expect(await error("run_lease: [1s]\n") == "sluice.yml:1:12: run_lease must be a duration, not a list")
        #expect(
            await error(nil, environment: ["SLUICE_RUN_LEASE": "1 minute"]).hasPrefix(
                "SLUICE_RUN_LEASE: '1 minute' is not a duration (a unit is missing after 1); expected a duration like 500ms, 30s"))
        #expect(
            await error(nil, environment: ["SLUICE_CREDENTIAL_LIMIT": "many"])
                == "SLUICE_CREDENTIAL_LIMIT must be a positive whole number, not 'many'")
    }
}
