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

    public init(orgs: [String] = ProjectSettings.defaultOrgs, publicURL: String? = nil, inputRoot: String? = nil,
                networkAllow: NetworkAllowList = NetworkAllowList()) {
        self.orgs = orgs
        self.publicURL = publicURL
        self.inputRoot = inputRoot
        self.networkAllow = networkAllow
    }

    /// The input root of `org`: `inputs.root` with `{org}` replaced; nil when unset.
    public func inputRoot(for org: String) -> String? {
        inputRoot?.replacingOccurrences(of: Self.orgPlaceholder, with: org)
    }

    /// The link to a run in the API, when `public_url` is set.
    public func runLink(_ runID: String) -> String? {
        publicURL.map { "\($0)/v1/runs/\(runID)" }
    }

    /// Reads `sluice.yml` under `projectRoot` (if there is one) and the `SLUICE_*` variables of
    /// `environment`, which win over the file.
    public static func load(projectRoot: URL, environment: [String: String] = ProcessInfo.processInfo.environment)
        async throws(SettingsError) -> ProjectSettings {
        let file = projectRoot.appendingPathComponent(fileName)
        let hasFile = FileManager.default.fileExists(atPath: file.path)
        let hasContent = hasFile ? try check(file) : false

        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment.filter { $0.key.hasPrefix("SLUICE_") })
                .prefixKeys(with: ["sluice"]),
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
        return settings
    }

    /// Checks the file's shape with positions: a mapping of known keys, `orgs` a non-empty
    /// list of distinct names. Returns false for a file with nothing in it.
    private static func check(_ file: URL) throws(SettingsError) -> Bool {
        let root: YAMLNode?
        switch YAMLLoader().load(fileAt: file, displayPath: fileName) {
        case .success(let node): root = node
        case .failure(let diagnostic): throw SettingsError(diagnostic.description)
        }
        guard let root, !root.isNull else { return false }
        guard let pairs = root.mapping else {
            throw SettingsError("\(root.location): sluice.yml must be a mapping of settings (orgs: [...]), not \(root.kindDescription)")
        }
        for pair in pairs {
            let key = pair.key.scalarText ?? ""
            guard keys[key] != nil else {
                let known = keys.keys.sorted().map { "\($0) (\(keys[$0]!))" }.joined(separator: ", ")
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
                throw SettingsError("\(url.location): public_url must be a URL, like public_url: https://sluice.example.com, not \(url.kindDescription)")
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
                    throw SettingsError("\(allow.location): network.allow must be a list, like allow: [127.0.0.1, 10.0.0.0/8, internal.example.com], not \(allow.kindDescription)")
                }
                for item in items {
                    guard let text = item.scalarText, !item.isNull else {
                        throw SettingsError("\(item.location): network.allow: an entry is an address, a block or a host name, not \(item.kindDescription)")
                    }
                    do { _ = try NetworkAllowList([text]) } catch {
                        throw SettingsError("\(item.location): network.allow: \(error)")
                    }
                }
            }
        }
        return true
    }

    /// `node` must be a mapping of the `known` keys.
    private static func checkKeys(of node: YAMLNode, in name: String, known: [String: String]) throws(SettingsError) {
        guard let pairs = node.mapping else {
            throw SettingsError("\(node.location): \(name) must be a mapping (\(known.keys.sorted().joined(separator: ", "))), not \(node.kindDescription)")
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
              let host = url.host, !host.isEmpty else {
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
