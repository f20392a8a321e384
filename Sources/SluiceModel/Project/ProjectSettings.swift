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
/// ```
public struct ProjectSettings: Sendable, Hashable {
    public static let fileName = "sluice.yml"
    /// What a project without settings schedules for: the org `sluice run` uses by default.
    public static let defaultOrgs = ["default"]
    /// The keys `sluice.yml` may have, with what each is for (for the "unknown key" error).
    public static let keys: [String: String] = [
        "orgs": "the orgs (tenants) scheduled runs are created for",
    ]

    /// The orgs `sluice scheduler` and `sluice backfill` create runs for, in the order given.
    public var orgs: [String]

    public init(orgs: [String] = ProjectSettings.defaultOrgs) {
        self.orgs = orgs
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
        return true
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
