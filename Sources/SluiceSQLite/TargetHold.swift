import Foundation
import SluiceModel
import SluiceStorage

/// A run's hold on its target tables, across processes: an exclusive `flock` on one lock file
/// per table (`orgs/<org>/locks/table.<name>.lock`), taken all at once in name order so two
/// runs never wait on each other, and kept until the run publishes or ends. The locks go with
/// the process, so a run killed while it holds them holds nothing. Names are compared without
/// case, as SQLite compares table names.
actor TargetHold {
    private let folder: URL
    private let files: DataFiles
    /// The tables, lowercased, in the order they are taken.
    let tables: [String]
    private let runID: String
    private var acquiring: Task<[Int32], any Error>?
    private var descriptors: [Int32] = []

    init(folder: URL, files: DataFiles, tables: [String], runID: String) {
        self.folder = folder
        self.files = files
        self.tables = Array(Set(tables.map { $0.lowercased() })).sorted()
        self.runID = runID
    }

    var isHeld: Bool { !descriptors.isEmpty || tables.isEmpty }

    /// Waits until every table is held by this run (at once if it is already). Steps of one
    /// run that ask together share one wait.
    func hold() async throws {
        if isHeld { return }
        let task: Task<[Int32], any Error>
        if let acquiring {
            task = acquiring
        } else {
            let paths = try tables.map { table -> String in
                try files.createFolder(folder)
                return folder.appendingPathComponent("table.\(table).lock").path
            }
            task = Task { [files, runID] in try await Self.acquire(paths, files: files, runID: runID) }
            acquiring = task
        }
        do {
            let held = try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
            if descriptors.isEmpty { descriptors = held }
        } catch {
            acquiring = nil
            throw error
        }
    }

    /// Lets every table go.
    func release() {
        acquiring?.cancel()
        acquiring = nil
        for descriptor in descriptors {
            flock(descriptor, LOCK_UN)
            close(descriptor)
        }
        descriptors = []
    }

    /// Locks each file in order, waiting (without blocking a thread) while another run holds
    /// it; on cancellation or failure lets go of what it took.
    private static func acquire(_ paths: [String], files: DataFiles, runID: String) async throws -> [Int32] {
        var held: [Int32] = []
        do {
            for path in paths {
                let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, files.fileMode)
                guard descriptor >= 0 else {
                    throw StepFailure(.warehouseUnavailable, "could not open the table lock \(path): \(String(cString: strerror(errno)))")
                }
                held.append(descriptor)
                var pause = Duration.milliseconds(5)
                while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                    guard errno == EWOULDBLOCK || errno == EINTR else {
                        throw StepFailure(.warehouseUnavailable, "could not lock \(path): \(String(cString: strerror(errno)))")
                    }
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .milliseconds(200))
                }
                // Who holds it, for a person looking at a run that waits.
                let text = Array("\(runID)\n".utf8)
                if ftruncate(descriptor, 0) == 0 { _ = pwrite(descriptor, text, text.count, 0) }
            }
            return held
        } catch {
            for descriptor in held {
                flock(descriptor, LOCK_UN)
                close(descriptor)
            }
            throw error
        }
    }
}
