import Foundation

/// Finds the project a command works on: the nearest folder, from the working directory
/// up, that holds `sluice.yml` or a `pipelines/` folder; else the working directory.
public enum ProjectLocator {
    public static func root(startingAt start: URL) -> URL {
        let manager = FileManager.default
        var folder = start.standardizedFileURL
        while true {
            var isDirectory: ObjCBool = false
            if manager.fileExists(atPath: folder.appendingPathComponent("sluice.yml").path)
                || (manager.fileExists(atPath: folder.appendingPathComponent("pipelines").path, isDirectory: &isDirectory)
                    && isDirectory.boolValue)
            {
                return folder
            }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { return start.standardizedFileURL }
            folder = parent
        }
    }
}
