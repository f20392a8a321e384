import Foundation
import SluiceModel
import SluiceStorage

/// How the files that hold tenant data (run store, warehouses, staging, locks) are created
/// under a project's state folder (`.sluice/`): owner-only (files 0600, folders 0700), unless
/// the project is set up for a group, which an operator does by making the state folder
/// group-writable (`chmod g+rwxs .sluice`): then files are 0660 and folders 0770, so everyone
/// in the group can run. The umask applies on top. Files that exist keep their mode.
///
/// SQLite gives a database's journal and WAL files the mode of the database file, so creating
/// the database file with the right mode before SQLite opens it is enough.
struct DataFiles {
    /// The state folder.
    let root: URL

    /// Whether the state folder is shared with its group.
    var sharedWithGroup: Bool {
        var status = stat()
        guard stat(root.path, &status) == 0 else { return false }
        return status.st_mode & S_IWGRP != 0
    }

    var fileMode: mode_t { sharedWithGroup ? 0o660 : 0o600 }
    var folderMode: mode_t { sharedWithGroup ? 0o770 : 0o700 }

    /// Creates `folder` and the folders above it up to the state folder, with the folder mode.
    /// A state folder that others may enter but that is not shared with a group (one made by
    /// an earlier version, 0755) is made owner-only: the files inside keep their modes, and
    /// nobody else can reach them.
    func createFolder(_ folder: URL) throws {
        var status = stat()
        if stat(root.path, &status) == 0, status.st_mode & S_IWGRP == 0, status.st_mode & 0o077 != 0 {
            chmod(root.path, 0o700)
        }
        var missing: [URL] = []
        var current = folder.standardizedFileURL
        while !FileManager.default.fileExists(atPath: current.path) {
            missing.append(current)
            let parent = current.deletingLastPathComponent()
            guard parent.path != current.path else { break }
            current = parent
        }
        for url in missing.reversed() {
            // The state folder's own mode decides the others': work it out before creating it.
            let mode = url.path == root.standardizedFileURL.path ? mode_t(0o700) : folderMode
            if mkdir(url.path, mode) != 0 && errno != EEXIST {
                throw StepFailure(.warehouseUnavailable, "could not create the folder \(url.path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Creates an empty file at `path` with the file mode, unless it exists. An empty file is
    /// an empty SQLite database.
    func createFile(_ path: String) throws {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, fileMode)
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            throw StepFailure(.warehouseUnavailable, "could not create \(path): \(String(cString: strerror(errno)))")
        }
    }
}
