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
/// ```
public struct ProjectSettings: Sendable, Hashable {
    public static let fileName = "sluice.yml"
    /// What a project without settings schedules for: the org `sluice run` uses by default.
    public static let defaultOrgs = ["default"]
    /// The keys `sluice.yml` may have, with what each is for (for the "unknown key" error).
    public static let keys: [String: String] = [
        "orgs": "the orgs (tenants) scheduled runs are created for",
        "public_url": "where `sluice serve` is reached, for links to runs in notifications",
    ]

    /// The orgs `sluice scheduler` and `sluice backfill` create runs for, in the order given.
    public var orgs: [String]
    /// Where the project's `sluice serve` is reached (`https://sluice.example.com`), without a
    /// trailing `/`: `notify` links a run at `<public_url>/v1/runs/<run id>`. Nil when unset.
    public var publicURL: String?

    public init(orgs: [String] = ProjectSettings.defaultOrgs, publicURL: String? = nil) {
        self.orgs = orgs
        self.publicURL = publicURL
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
        return true
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
