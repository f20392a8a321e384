import Crypto
import Foundation
import SluiceModel
import SluiceStorage

extension PipelineVersion {
    /// The version of the pipeline `plan` was made from: the pipeline file `file`, the schema
    /// files of every table its steps (and `on_failure` handlers) read or write, the schema
    /// files they name (`ingest`'s `schema`), and the procedures they run; every path relative
    /// to `root`. A file that can no longer be read is left out, so a comparison reports it removed.
    public static func of(_ plan: PipelinePlan, file: String, projectRoot root: URL, schemas: SchemaCatalog) -> PipelineVersion {
        var contents: [String: Data] = [:]
        for path in files(of: plan, file: file, projectRoot: root, schemas: schemas) {
            if let data = FileManager.default.contents(atPath: root.appendingPathComponent(path).path) { contents[path] = data }
        }
        return PipelineVersion(hashing: contents)
    }

    /// The files a version of `plan` hashes (see `of`), relative to `root`, in path order.
    public static func files(of plan: PipelinePlan, file: String, projectRoot root: URL, schemas: SchemaCatalog) -> [String] {
        let definition = plan.definition
        var paths: Set<String> = [relative(file, to: root)]
        var tables: Set<String> = []
        for step in definition.steps + definition.onFailure {
            let id = step.id.value
            tables.formUnion(plan.reads[id] ?? [])
            tables.formUnion(plan.writes[id] ?? [])
            tables.formUnion((step.io.reads + step.io.writes).map(\.value))
            // A path made from an expression is known only when the step runs.
            for named in step.io.schemaFiles + step.io.procedureFiles where !Template.containsExpression(named.value) {
                paths.insert(relative(named.value, to: root))
            }
        }
        for (path, schema) in schemas.byPath where tables.contains(schema.table) {
            paths.insert(relative(path, to: root))
        }
        return paths.sorted()
    }

    /// The version of files with these contents, by path: each file's SHA-256, and the
    /// SHA-256 of the lines `path NUL hash LF` in path order.
    public init(hashing contents: [String: Data]) {
        let files = contents.mapValues { Self.hex(SHA256.hash(data: $0)) }
        var whole = SHA256()
        for path in files.keys.sorted() {
            whole.update(data: Data("\(path)\u{0}\(files[path]!)\n".utf8))
        }
        self.init(hash: Self.hex(whole.finalize()), files: files)
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// `path` relative to `root` (`./schemas/a.json` → `schemas/a.json`); a path outside it as
    /// an absolute one.
    private static func relative(_ path: String, to root: URL) -> String {
        let base = root.standardizedFileURL.path
        let absolute = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
        return absolute.hasPrefix(base + "/") ? String(absolute.dropFirst(base.count + 1)) : absolute
    }
}

extension LintedPipeline {
    /// The version of the pipeline as its files are on disk now, in the project at `root`; nil
    /// when it does not lint (there is no plan to run).
    public func currentVersion(projectRoot root: URL) -> PipelineVersion? {
        guard let plan else { return nil }
        return PipelineVersion.of(plan, file: file, projectRoot: root, schemas: project?.schemas ?? SchemaCatalog(projectRoot: root))
    }
}
