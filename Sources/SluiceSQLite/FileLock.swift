import Foundation
import SluiceModel
import SluiceStorage

/// An exclusive advisory lock (`flock`) on a file beside a database, held while `body` runs:
/// how processes that open one SQLite file take turns at what SQLite won't wait for by itself.
/// The lock goes with the process, so one that dies holding it holds nothing.
enum FileLock {
    /// `code` is the failure code if the lock file can't be opened or locked; `mode` the mode
    /// a new lock file gets (`DataFiles.fileMode`).
    static func withExclusive<Result>(_ lockPath: String, code: FailureCode, mode: mode_t, _ body: () throws -> Result) throws -> Result {
        // Read-only is enough for flock, so users who share the project's .sluice/ through a
        // group can all lock.
        let descriptor = open(lockPath, O_CREAT | O_RDONLY | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw StepFailure(code, "could not open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw StepFailure(code, "could not lock \(lockPath): \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
