import Foundation
import SluiceModel
import SluiceStorage
import Synchronization

/// A hold on one run's staging, across processes: a `flock` on `orgs/<org>/locks/run.<id>.lock`.
/// A run's workspace holds it shared for as long as it is open; staging retention takes it
/// exclusively, without waiting, before it removes a staging, and leaves the staging alone
/// when it can't. So a staging that a starting or resuming run has opened is never removed
/// under it, whatever retention saw in the run store a moment before. The lock goes with the
/// process.
final class StagingUse: Sendable {
    let path: String
    private let descriptor: Mutex<Int32?>

    /// Holds the staging shared (a workspace). Waits while retention removes it, which takes
    /// only as long as deleting its files.
    init(path: String, files: DataFiles) throws {
        self.path = path
        let opened = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, files.fileMode)
        guard opened >= 0 else {
            throw StepFailure(.warehouseUnavailable, "could not open the staging lock \(path): \(String(cString: strerror(errno)))")
        }
        while flock(opened, LOCK_SH) != 0 {
            guard errno == EINTR else {
                close(opened)
                throw StepFailure(.warehouseUnavailable, "could not lock \(path): \(String(cString: strerror(errno)))")
            }
        }
        descriptor = Mutex(opened)
    }

    /// Holds the staging exclusively (retention), or nil when a run holds it.
    init?(exclusive path: String, files: DataFiles) throws {
        self.path = path
        let opened = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, files.fileMode)
        guard opened >= 0 else {
            throw StepFailure(.warehouseUnavailable, "could not open the staging lock \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(opened, LOCK_EX | LOCK_NB) == 0 else {
            close(opened)
            return nil
        }
        descriptor = Mutex(opened)
    }

    /// Lets the staging go.
    func release() {
        descriptor.withLock { held in
            if let open = held { close(open) }
            held = nil
        }
    }

    /// Removes the lock file (the staging is gone), then lets go.
    func removeLockFile() {
        unlink(path)
        release()
    }

    deinit {
        release()
    }
}
