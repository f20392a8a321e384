import Configuration
import Foundation
import SystemPackage

/// The project's settings: `sluice.yml` at the project root, each value overridable by an
/// environment variable (`SLUICE_` and the key in capitals: `orgs` is `SLUICE_ORGS`). A
/// missing file means the defaults. swift-configuration layers the two sources; the file is
/// first checked with the project's YAML loader, so a mistake in it is reported at its
/// line and column rather than ignored.
///
/// ```yaml
/// # sluice.yml
/// orgs: [acme, globex]    # the tenants `sluice scheduler` creates scheduled runs for
/// public_url: https://sluice.example.com   # where `sluice serve` is reached, for links to runs
/// inputs: { root: /srv/exports/{org} }     # each org's own input folder, beside the project's files
/// network: { allow: [10.1.2.3, internal.example.com] }   # private destinations param-driven URLs may reach
/// run_lease: 30s            # a run without a heartbeat this long is taken for abandoned
/// staging_retention: 7d     # how long a failed run's staging is kept for --resume
/// credential_limit: 100     # stored credentials per org
/// webhook_audit: { retention: 30d, max_refusals: 100000 }   # refused deliveries kept
/// database: postgres://sluice@db.example.com:5432/sluice?sslmode=require   # a server instead of .sluice/
/// ```
public struct ProjectSettings: Sendable, Hashable {
    public static let fileName = "sluice.yml"
    /// What a project without settings schedules for: the org `sluice run` uses by default.
    public static let defaultOrgs = ["default"]
    /// The keys `sluice.yml` may have, with what each is for (for the "unknown key" error).
    public static let keys: [String: String] = [
        "orgs": "the orgs (tenants) scheduled runs are created for",
        "public_url": "where `sluice serve` is reached, for links to runs in notifications",
        "inputs": "where runs may read input files besides the project: { root: data/{org} }",
        "network": "private or loopback destinations that URLs from params may reach: { allow: [10.0.0.0/8, internal.example.com] }",
        "run_lease": "how long a run may go without a heartbeat before it is taken for abandoned, a duration like 30s",
        "staging_retention": "how long a failed run's staging is kept for a resume, a duration like 7d",
        "credential_limit": "how many credentials an org may store, a whole number like 100",
        "webhook_audit": "how refused webhook deliveries are kept: { retention: 30d, max_refusals: 100000 }",
        "limits": "what each org's steps may consume: { default: { max_rows: 5000000 }, acme: { llm_budget: 2000000 } }",
        "database":
            "the PostgreSQL server that holds the warehouse and run history instead of .sluice/: postgres://user@host:5432/dbname?sslmode=require, the password in SLUICE_DATABASE_PASSWORD",
    ]
    /// The variable that names the database instead of `database` in the file.
    public static let databaseVariable = "SLUICE_DATABASE_URL"
    /// The settings that are durations, and those that are counts with their least value and
    /// how their error describes them.
    static let durationKeys = ["run_lease", "staging_retention", "webhook_audit.retention"]
    /// The top-level keys of the run settings (how runs are kept, not what they may reach).
    static var runSettingKeys: Set<String> {
        Set((durationKeys + countKeys.keys).map { String($0.prefix { $0 != "." }) })
    }
    static let countKeys: [String: (least: Int, form: String)] = [
        "credential_limit": (1, "a positive whole number"),
        "webhook_audit.max_refusals": (0, "a whole number of refusals to keep (0 or more)"),
    ]
    /// The placeholder `inputs.root` may hold, replaced by the run's org.
    public static let orgPlaceholder = "{org}"

    /// The orgs `sluice scheduler` and `sluice backfill` create runs for, in the order given.
    public var orgs: [String]
    /// Where the project's `sluice serve` is reached (`https://sluice.example.com`), without a
    /// trailing `/`: `notify` links a run at `<public_url>/v1/runs/<run id>`. Nil when unset.
    public var publicURL: String?
    /// `inputs.root`: a folder (relative to the project, or absolute) from which runs may read
    /// input files as well as from the project, with `{org}` standing for the run's org. Nil
    /// when unset: runs read inputs from the project folder only.
    public var inputRoot: String?
    /// `network.allow`: the loopback, private and link-local destinations a URL that comes from a
    /// param given through the API or a webhook may still reach. Empty by default: none.
    public var networkAllow: NetworkAllowList

    /// `run_lease` (`SLUICE_RUN_LEASE`): how long a run this process creates may go without a
    /// heartbeat before any process takes it for abandoned; 30 s, six missed heartbeats.
    public var runLease: Duration = .seconds(30)
    /// `staging_retention` (`SLUICE_STAGING_RETENTION`): how long a failed run's staging is
    /// kept for `sluice run --resume`; 7 days.
    public var stagingRetention: Duration = .seconds(7 * 86_400)
    /// `credential_limit` (`SLUICE_CREDENTIAL_LIMIT`): credentials an org may store; 100.
    public var credentialLimit = ProjectSettings.defaultCredentialLimit
    public static let defaultCredentialLimit = 100
    /// `webhook_audit.retention` (`SLUICE_WEBHOOK_AUDIT_RETENTION`): refused webhook
    /// deliveries older than this are deleted; 30 days.
    public var webhookAuditRetention: Duration = .seconds(30 * 86_400)
    /// `webhook_audit.max_refusals` (`SLUICE_WEBHOOK_AUDIT_MAX_REFUSALS`): at most this many
    /// refusals are kept, the newest; 100,000.
    public var webhookAuditMaxRefusals = 100_000
    /// `limits`: per org (`default` for orgs not listed), what each step may consume and the
    /// org's monthly LLM token budget. An org's entry overrides `default` key by key.
    public var limits: [String: OrgLimits] = [:]
    /// `database` (`SLUICE_DATABASE_URL`): the server that holds the project's warehouse and
    /// stores; nil for the embedded SQLite files under `.sluice/`.
    public var database: DatabaseSetting?

    /// The keys of an org's entry under `limits`.
    static let limitKeys: [String: String] = [
        "max_rows": "rows a step may read, like 5000000",
        "max_bytes": "bytes a step may read, like 2GB",
        "max_requests": "HTTP requests a step may send, like 1000",
        "llm_budget": "LLM tokens the org's checks may spend in a calendar month (UTC), like 2000000",
    ]

    public init(
        orgs: [String] = ProjectSettings.defaultOrgs, publicURL: String? = nil, inputRoot: String? = nil,
        networkAllow: NetworkAllowList = NetworkAllowList()
    ) {
        self.orgs = orgs
        self.publicURL = publicURL
        self.inputRoot = inputRoot
        self.networkAllow = networkAllow
    }

    /// The input root of `org`: `inputs.root` with `{org}` replaced; nil when unset.
    public func inputRoot(for org: String) -> String? {
        inputRoot?.replacingOccurrences(of: Self.orgPlaceholder, with: org)
    }

    /// What `org`'s steps may consume: its entry under `limits`, each key it leaves out taken
    /// from `default`.
    public func limits(for org: String) -> OrgLimits {
        let base = limits["default"] ?? OrgLimits()
        guard let own = limits[org] else { return base }
        return OrgLimits(
            step: StepLimits(
                maxRows: own.step.maxRows ?? base.step.maxRows, maxBytes: own.step.maxBytes ?? base.step.maxBytes,
                maxRequests: own.step.maxRequests ?? base.step.maxRequests),
            llmBudget: own.llmBudget ?? base.llmBudget)
    }

    /// The link to a run in the API, when `public_url` is set.
    public func runLink(_ runID: String) -> String? {
        publicURL.map { "\($0)/v1/runs/\(runID)" }
    }

    /// Reads `sluice.yml` under `projectRoot` (if there is one) and the `SLUICE_*` variables of
    /// `environment`, which win over the file.
    public static func load(
        projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        async throws(SettingsError) -> ProjectSettings
    {
        let file = projectRoot.appendingPathComponent(fileName)
        let hasFile = FileManager.default.fileExists(atPath: file.path)
        let checked = hasFile ? try check(file) : nil
        let hasContent = checked != nil

        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment.filter { $0.key.hasPrefix("SLUICE_") })
                .prefixKeys(with: ["sluice"])
        ]
        if hasContent {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file.path)))
            } catch {
                throw SettingsError("\(fileName): could not be read: \(error)")
            }
        }
        let config = ConfigReader(providers: providers)
        var settings = ProjectSettings()
        if let orgs = config.stringArray(forKey: "orgs") {
            let fromEnvironment = environment["SLUICE_ORGS"] != nil
            let names = orgs.map { $0.trimmingCharacters(in: .whitespaces) }
            // The file's names were checked with their positions; these come from SLUICE_ORGS.
            if fromEnvironment { try checkOrgs(names, source: "SLUICE_ORGS") }
            settings.orgs = names
        }
        if let url = config.string(forKey: "public_url") {
            // The file's value was checked with its position; this one comes from SLUICE_PUBLIC_URL.
            if environment["SLUICE_PUBLIC_URL"] != nil, let problem = publicURLProblem(url) {
                throw SettingsError("SLUICE_PUBLIC_URL: \(problem)")
            }
            settings.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let root = config.string(forKey: "inputs.root") {
            // The file's value was checked with its position; this one comes from SLUICE_INPUTS_ROOT.
            if environment["SLUICE_INPUTS_ROOT"] != nil, let problem = inputRootProblem(root) {
                throw SettingsError("SLUICE_INPUTS_ROOT: \(problem)")
            }
            settings.inputRoot = root
        }
        if let entries = config.stringArray(forKey: "network.allow") {
            do {
                settings.networkAllow = try NetworkAllowList(entries.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
            } catch {
                // The file's entries were checked with their positions; these come from SLUICE_NETWORK_ALLOW.
                throw SettingsError("SLUICE_NETWORK_ALLOW: \(error)")
            }
        }
        settings.runLease = try duration(config, "run_lease") ?? settings.runLease
        settings.stagingRetention = try duration(config, "staging_retention") ?? settings.stagingRetention
        settings.webhookAuditRetention = try duration(config, "webhook_audit.retention") ?? settings.webhookAuditRetention
        settings.credentialLimit = try count(config, "credential_limit") ?? settings.credentialLimit
        settings.webhookAuditMaxRefusals = try count(config, "webhook_audit.max_refusals") ?? settings.webhookAuditMaxRefusals
        if let url = environment[databaseVariable], !url.trimmingCharacters(in: .whitespaces).isEmpty {
            if let problem = databaseURLProblem(url) { throw SettingsError("\(databaseVariable): \(problem)") }
            settings.database = DatabaseSetting(url: url, source: databaseVariable)
        } else if let node = checked?["database"], let url = node.scalarText {
            settings.database = DatabaseSetting(url: url, source: "\(node.location): database")
        }
        for pair in checked?["limits"]?.mapping ?? [] {
            guard let org = pair.key.scalarText else { continue }
            settings.limits[org] = OrgLimits(step: StepLimits(node: pair.value), llmBudget: pair.value["llm_budget"]?.int)
        }
        return settings
    }

    /// The variable that overrides `key`: `SLUICE_` and the key in capitals, dots as `_`.
    public static func variable(for key: String) -> String {
        "SLUICE_" + key.replacingOccurrences(of: ".", with: "_").uppercased()
    }

    /// A duration setting; the file's value was checked with its position, so a bad value here
    /// comes from the variable.
    private static func duration(_ config: ConfigReader, _ key: String) throws(SettingsError) -> Duration? {
        guard let text = config.string(forKey: ConfigKey(key)) else { return nil }
        if let problem = durationProblem(text) { throw SettingsError("\(variable(for: key)): \(problem)") }
        return try? DurationText.parse(text)
    }

    /// A whole-number setting, checked like `duration`.
    private static func count(_ config: ConfigReader, _ key: String) throws(SettingsError) -> Int? {
        guard let text = config.string(forKey: ConfigKey(key)) else { return nil }
        if let problem = countProblem(text, key: key) { throw SettingsError("\(variable(for: key)) \(problem)") }
        return Int(text.trimmingCharacters(in: .whitespaces))
    }

    /// What is wrong with a duration setting's text (the form it takes included), or nil.
    static func durationProblem(_ text: String) -> String? {
        do {
            _ = try DurationText.parse(text)
            return nil
        } catch {
            return error.description
        }
    }

    /// What is wrong with a count setting's text, or nil.
    static func countProblem(_ text: String, key: String) -> String? {
        let (least, form) = countKeys[key] ?? (0, "a whole number")
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= least else {
            return "must be \(form), not \(shown(text))"
        }
        return nil
    }

    /// Checks the file's shape with positions: a mapping of known keys, `orgs` a non-empty
    /// list of distinct names. Returns the file's document, nil for a file with nothing in it.
    private static func check(_ file: URL) throws(SettingsError) -> YAMLNode? {
        let root: YAMLNode?
        switch YAMLLoader().load(fileAt: file, displayPath: fileName) {
        case .success(let node): root = node
        case .failure(let diagnostic): throw SettingsError(diagnostic.description)
        }
        guard let root, !root.isNull else { return nil }
        guard let pairs = root.mapping else {
            throw SettingsError("\(root.location): sluice.yml must be a mapping of settings (orgs: [...]), not \(root.kindDescription)")
        }
        for pair in pairs {
            let key = pair.key.scalarText ?? ""
            guard keys[key] != nil else {
                // The project's own keys first, then the run settings, each group alphabetical.
                let known = (keys.keys.filter { !runSettingKeys.contains($0) }.sorted() + runSettingKeys.sorted())
                    .map { "\($0) (\(keys[$0]!))" }.joined(separator: ", ")
                throw SettingsError("\(pair.key.location): unknown setting \(shown(key)); sluice.yml has \(known)")
            }
        }
        if let orgs = root["orgs"] {
            guard let items = orgs.sequence else {
                throw SettingsError("\(orgs.location): orgs must be a list of org names, like orgs: [acme, globex], not \(orgs.kindDescription)")
            }
            var seen: Set<String> = []
            for item in items {
                guard let name = item.scalarText else {
                    throw SettingsError("\(item.location): an org is a name, not \(item.kindDescription)")
                }
                if let problem = Identifier.problem(with: name) {
                    throw SettingsError("\(item.location): org \(shown(name)): \(problem)")
                }
                guard seen.insert(name).inserted else { throw SettingsError("\(item.location): org \(shown(name)) is listed twice") }
            }
            if items.isEmpty { throw SettingsError("\(orgs.location): orgs is empty; list at least one org, or leave it out for [default]") }
        }
        if let url = root["public_url"] {
            guard let text = url.scalarText, !url.isNull else {
                throw SettingsError(
                    "\(url.location): public_url must be a URL, like public_url: https://sluice.example.com, not \(url.kindDescription)")
            }
            if let problem = publicURLProblem(text) { throw SettingsError("\(url.location): public_url: \(problem)") }
        }
        if let inputs = root["inputs"] {
            try checkKeys(of: inputs, in: "inputs", known: ["root": "the org's input folder, like data/{org}"])
            if let value = inputs["root"] {
                guard let text = value.scalarText, !value.isNull else {
                    throw SettingsError("\(value.location): inputs.root must be a folder, like root: data/{org}, not \(value.kindDescription)")
                }
                if let problem = inputRootProblem(text) { throw SettingsError("\(value.location): inputs.root: \(problem)") }
            }
        }
        if let network = root["network"] {
            try checkKeys(of: network, in: "network", known: ["allow": "addresses, blocks and host names, like [10.0.0.0/8, internal.example.com]"])
            if let allow = network["allow"] {
                guard let items = allow.sequence else {
                    throw SettingsError(
                        "\(allow.location): network.allow must be a list, like allow: [127.0.0.1, 10.0.0.0/8, internal.example.com], not \(allow.kindDescription)"
                    )
                }
                for item in items {
                    guard let text = item.scalarText, !item.isNull else {
                        throw SettingsError(
                            "\(item.location): network.allow: an entry is an address, a block or a host name, not \(item.kindDescription)")
                    }
                    do { _ = try NetworkAllowList([text]) } catch {
                        throw SettingsError("\(item.location): network.allow: \(error)")
                    }
                }
            }
        }
        if let limits = root["limits"] {
            guard let orgs = limits.mapping else {
                throw SettingsError(
                    "\(limits.location): limits must be a mapping of orgs (or default) to their limits, like limits: { default: { max_rows: 5000000 } }, not \(limits.kindDescription)"
                )
            }
            for pair in orgs {
                let org = pair.key.scalarText ?? ""
                if org != "default", let problem = Identifier.problem(with: org) {
                    throw SettingsError("\(pair.key.location): limits: org \(shown(org)): \(problem)")
                }
                try checkKeys(of: pair.value, in: "limits.\(org)", known: limitKeys)
                for entry in pair.value.mapping ?? [] {
                    let key = entry.key.scalarText ?? ""
                    let text = entry.value.scalarText ?? ""
                    if key == "max_bytes" {
                        do { _ = try ByteCount.parse(text) } catch { throw SettingsError("\(entry.value.location): limits.\(org).\(key): \(error)") }
                    } else if entry.value.int.map({ $0 < 0 }) ?? true || entry.value.isQuoted {
                        throw SettingsError("\(entry.value.location): limits.\(org).\(key) must be a whole number (0 or more), not \(shown(text))")
                    }
                }
            }
        }
        if let database = root["database"] {
            guard let text = database.scalarText, !database.isNull else {
                throw SettingsError(
                    "\(database.location): database must be a URL, like database: postgres://sluice@db.example.com:5432/sluice, not \(database.kindDescription)"
                )
            }
            if let problem = databaseURLProblem(text) { throw SettingsError("\(database.location): database: \(problem)") }
        }
        if let audit = root["webhook_audit"] {
            try checkKeys(of: audit, in: "webhook_audit", known: ["retention": "a duration like 30d", "max_refusals": "a whole number like 100000"])
        }
        for key in durationKeys + countKeys.keys.sorted() {
            let parts = key.split(separator: ".").map(String.init)
            guard let node = parts.count == 2 ? root[parts[0]]?[parts[1]] : root[key] else { continue }
            guard let text = node.scalarText, !node.isNull else {
                throw SettingsError(
                    "\(node.location): \(key) must be \(durationKeys.contains(key) ? "a duration" : "a whole number"), not \(node.kindDescription)")
            }
            if durationKeys.contains(key), let problem = durationProblem(text) {
                throw SettingsError("\(node.location): \(key): \(problem)")
            }
            if !durationKeys.contains(key), let problem = countProblem(text, key: key) {
                throw SettingsError("\(node.location): \(key) \(problem)")
            }
        }
        return root
    }

    /// `node` must be a mapping of the `known` keys.
    private static func checkKeys(of node: YAMLNode, in name: String, known: [String: String]) throws(SettingsError) {
        guard let pairs = node.mapping else {
            throw SettingsError(
                "\(node.location): \(name) must be a mapping (\(known.keys.sorted().joined(separator: ", "))), not \(node.kindDescription)")
        }
        for pair in pairs {
            let key = pair.key.scalarText ?? ""
            guard known[key] != nil else {
                let list = known.keys.sorted().map { "\($0) (\(known[$0]!))" }.joined(separator: ", ")
                throw SettingsError("\(pair.key.location): unknown setting \(shown("\(name).\(key)")); \(name) has \(list)")
            }
        }
    }

    /// What is wrong with an `inputs.root`, or nil: a folder, relative to the project or
    /// absolute, where `{org}` (if present) is a whole folder name, and not inside `.sluice/`
    /// (every org's warehouse and the keyring are there).
    static func inputRootProblem(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return "it is empty; give a folder, like data/{org}" }
        let components = trimmed.split(separator: "/").map(String.init)
        for component in components where component.contains("{") || component.contains("}") {
            if component != orgPlaceholder {
                return "\(shown(text)): {org} must be a whole folder name (like data/{org}/exports), and no other {…} is replaced"
            }
        }
        if !trimmed.hasPrefix("/"), components.first(where: { $0 != "." }) == ".sluice" {
            return "\(shown(text)) is inside .sluice/, where every org's warehouse and the keyring are; inputs go elsewhere"
        }
        return nil
    }

    /// What is wrong with a `public_url`, or nil: it must be an absolute http or https URL with
    /// a host, no user or password (it is put into notifications), no query or fragment.
    static func publicURLProblem(_ text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            return "\(shown(text)) is not an absolute http or https URL (like https://sluice.example.com)"
        }
        if url.user != nil || url.password != nil {
            return "the URL must not carry a user or password: it is put into notifications"
        }
        if url.query != nil || url.fragment != nil {
            return "the URL must not have a query or fragment: run paths are added to it"
        }
        return nil
    }

    /// What is wrong with a `database` URL on its face, or nil: a `postgres://` URL without a
    /// password (sluice.yml is committed and shown; the password comes from the environment).
    /// The rest (host, user, database name, `sslmode`) is checked where the server is opened.
    /// The URL itself is never repeated: it may carry a password.
    static func databaseURLProblem(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let components = URLComponents(string: trimmed),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else {
            return "it is not a PostgreSQL URL: it should read postgres://user@host:5432/dbname (SQLite, the default, needs no setting)"
        }
        if components.password != nil {
            return
                "the URL carries a password, which must not be kept here: remove it and set SLUICE_DATABASE_PASSWORD or SLUICE_DATABASE_PASSWORD_FILE"
        }
        return nil
    }

    private static func checkOrgs(_ names: [String], source: String) throws(SettingsError) {
        if names.isEmpty || names == [""] { throw SettingsError("\(source) is empty; give org names separated by commas") }
        var seen: Set<String> = []
        for name in names {
            if let problem = Identifier.problem(with: name) { throw SettingsError("\(source): org \(shown(name)): \(problem)") }
            guard seen.insert(name).inserted else { throw SettingsError("\(source): org \(shown(name)) is listed twice") }
        }
    }
}

/// A problem with the project's settings, naming the file, line and column (or the variable).
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Where the project's server is: its URL (without a password) and where that was given, for
/// errors (`sluice.yml:4:11: database` or `SLUICE_DATABASE_URL`).
public struct DatabaseSetting: Sendable, Hashable {
    public var url: String
    public var source: String

    public init(url: String, source: String) {
        self.url = url
        self.source = source
    }
}

/// What an org's steps may consume (`limits` in sluice.yml).
public struct OrgLimits: Sendable, Hashable {
    /// Each step's ceiling; a step's own `limits` can only lower it.
    public var step: StepLimits
    /// LLM tokens the org's checks may spend in a calendar month (UTC); nil for no budget.
    public var llmBudget: Int?

    public init(step: StepLimits = StepLimits(), llmBudget: Int? = nil) {
        self.step = step
        self.llmBudget = llmBudget
    }
}
