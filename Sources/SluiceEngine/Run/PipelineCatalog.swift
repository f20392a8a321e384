import Foundation
import SluiceModel
import SluiceStorage

/// The project's pipelines (`pipelines/<id>.yml`), linted into plans, and its schemas as runs
/// read them. Both are kept until a file under `pipelines/`, `schemas/` or `procedures/` (or
/// `sluice.yml`) changes — looked for at most once a second — so an edited pipeline is linted
/// again within a second rather than after a restart, and a delivery or trigger does not
/// parse every schema again.
public actor PipelineCatalog {
    public let services: ProjectServices

    private var fingerprint: [String: Double] = [:]
    private var checkedAt: ContinuousClock.Instant?
    private var entries: [String: LintedPipeline] = [:]
    private var project: ProjectContext?

    public init(services: ProjectServices) {
        self.services = services
    }

    /// The pipeline `id`, linted; nil when the project has no `pipelines/<id>.yml`.
    public func entry(_ id: String) -> LintedPipeline? {
        guard Identifier.isValid(id) else { return nil }
        refreshIfChanged()
        if let entry = entries[id] { return entry }
        let file = "pipelines/\(id).yml"
        guard FileManager.default.fileExists(atPath: services.projectRoot.appendingPathComponent(file).path) else { return nil }
        let (plan, diagnostics) = services.plan(file: file)
        let project = self.project ?? ProjectContext(root: services.projectRoot)
        self.project = project
        var entry = LintedPipeline(id: id, file: file, plan: plan, diagnostics: diagnostics.sortedForReading(), project: project)
        // Hashed with the lint, so the version a run records is of the files its plan was made from.
        entry.version = entry.currentVersion(projectRoot: services.projectRoot)
        entries[id] = entry
        return entry
    }

    /// Every pipeline of the project, by id.
    public func all() -> [LintedPipeline] {
        let folder = services.projectRoot.appendingPathComponent("pipelines")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".yml") }.map { String($0.dropLast(4)) }.sorted().compactMap(entry)
    }

    /// Forgets every plan when any file the plans were made from changed (modification time
    /// or size), appeared or went away.
    private func refreshIfChanged() {
        let now = ContinuousClock.now
        if let checkedAt, now - checkedAt < .seconds(1) { return }
        checkedAt = now
        var current: [String: Double] = [:]
        let root = services.projectRoot
        for name in ["sluice.yml"] {
            let path = root.appendingPathComponent(name).path
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path) { current[name] = Self.stamp(attributes) }
        }
        for folder in ["pipelines", "schemas", "procedures"] {
            let url = root.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.contentModificationDateKey, .fileSizeKey]) else {
                continue
            }
            for case let file as URL in walker {
                let values = try? file.resourceValues(forKeys: [.contentModificationDateKey, .fileSizeKey])
                current["\(folder)/\(file.path)"] =
                    (values?.contentModificationDate?.timeIntervalSince1970 ?? 0) * 1e3
                    + Double(values?.fileSize ?? 0) / 1e9
            }
        }
        if current != fingerprint {
            fingerprint = current
            entries = [:]
            project = nil
        }
    }

    private static func stamp(_ attributes: [FileAttributeKey: Any]) -> Double {
        ((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) * 1e3 + Double((attributes[.size] as? Int) ?? 0) / 1e9
    }
}
