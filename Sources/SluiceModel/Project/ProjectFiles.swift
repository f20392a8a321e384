import Foundation

/// Finding a project's files on disk.
public enum ProjectFiles {
    /// Files under `folder` (recursively) whose extension is one of `extensions`, as paths
    /// relative to `folder`, sorted so output is stable. A missing folder has no files.
    public static func find(in folder: URL, extensions: Set<String>) -> [String] {
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(atPath: folder.path) else { return [] }
        var found: [String] = []
        for case let path as String in enumerator {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            guard !name.hasPrefix("."), let dot = name.lastIndex(of: "."),
                extensions.contains(name[name.index(after: dot)...].lowercased())
            else { continue }
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: folder.appendingPathComponent(path).path, isDirectory: &isDirectory),
                !isDirectory.boolValue
            else { continue }
            // Skip files inside hidden folders, as the URL enumerator's skipsHiddenFiles did.
            if path.split(separator: "/").dropLast().contains(where: { $0.hasPrefix(".") }) { continue }
            found.append(path)
        }
        return found.sorted()
    }

    /// The pipeline files named by `paths`: files as given, folders searched for `*.yml` and
    /// `*.yaml`. Paths that don't exist are returned in `missing`.
    public static func pipelineFiles(for paths: [String], relativeTo base: URL) -> (files: [String], missing: [String]) {
        var files: [String] = []
        var missing: [String] = []
        for path in paths {
            let url = URL(fileURLWithPath: path, relativeTo: base)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                missing.append(path)
                continue
            }
            if isDirectory.boolValue {
                let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
                files += find(in: url, extensions: ["yml", "yaml"]).map { trimmed == "." ? $0 : "\(trimmed)/\($0)" }
            } else {
                files.append(path)
            }
        }
        return (files, missing)
    }
}
