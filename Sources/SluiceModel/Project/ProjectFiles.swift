import Foundation

/// Finding a project's files on disk.
public enum ProjectFiles {
    /// Files under `folder` (recursively) whose extension is one of `extensions`, as paths
    /// relative to `folder`, sorted so output is stable. A missing folder has no files.
    public static func find(in folder: URL, extensions: Set<String>) -> [String] {
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey],
                                                  options: [.skipsHiddenFiles]) else { return [] }
        let base = folder.standardizedFileURL.path
        var found: [String] = []
        for case let url as URL in enumerator {
            guard extensions.contains(url.pathExtension.lowercased()),
                  (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.standardizedFileURL.path
            found.append(path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path)
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
