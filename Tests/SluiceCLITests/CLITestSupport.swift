import Foundation
import SluiceTestSupport
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The built `sluice` binary: `SLUICE_BINARY` if set, else next to the test bundle, else
/// `.build/debug/sluice`.
let sluiceBinary: URL = {
    if let path = ProcessInfo.processInfo.environment["SLUICE_BINARY"] { return URL(fileURLWithPath: path) }
    let candidates = [
        Bundle.main.bundleURL.appendingPathComponent("sluice"),
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("sluice"),
        repositoryRoot.appendingPathComponent(".build/debug/sluice"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[2]
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion and captures its output. It is waited for on a thread of its
/// own (`onItsOwnThread`), so the other tests go on meanwhile.
func run(
    _ executable: URL, _ arguments: [String], in directory: URL,
    environment: [String: String] = ProcessInfo.processInfo.environment
) async throws -> CommandResult {
    try await onItsOwnThread { try runBlocking(executable, arguments, in: directory, environment: environment) }
}

private func runBlocking(_ executable: URL, _ arguments: [String], in directory: URL, environment: [String: String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var environment = environment
    environment["NO_COLOR"] = nil
    process.environment = environment
    // Output goes to files, so a large output can't fill a pipe and block the child.
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let outURL = folder.appendingPathComponent("stdout"), errURL = folder.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// Waits for `process` to end, on a thread of its own.
func waitForExit(of process: Process) async throws {
    try await onItsOwnThread { process.waitUntilExit() }
}

func sluice(_ arguments: String..., in directory: URL = repositoryRoot) async throws -> CommandResult {
    try await run(sluiceBinary, arguments, in: directory)
}

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The files under the project's `.sluice/` that hold `text` (the run store, its WAL while
/// there is one, the keyring, warehouses, staging), and the names of the files searched.
func filesHolding(_ text: String, in project: URL) -> (holding: [String], searched: [String]) {
    let files = FileManager.default.enumerator(at: project.appendingPathComponent(".sluice"), includingPropertiesForKeys: nil)
    var holding: [String] = []
    var searched: [String] = []
    while let file = files?.nextObject() as? URL {
        guard let bytes = try? Data(contentsOf: file) else { continue }
        searched.append(file.lastPathComponent)
        if bytes.range(of: Data(text.utf8)) != nil { holding.append(file.lastPathComponent) }
    }
    return (holding, searched)
}

extension Backend {
    /// Points the project at `root` at a fresh database of this backend while `body` runs: on
    /// PostgreSQL a database of its own on the test server, named by the project's `sluice.yml`
    /// (`database:`) and dropped afterwards; on SQLite the project's own files under `.sluice/`
    /// (the database given to `body` is nil).
    func withProjectDatabase<T>(in root: URL, _ body: (PostgresTestDatabase?) async throws -> T) async throws -> T {
        switch self {
        case .sqlite:
            return try await body(nil)
        case .postgres:
            return try await PostgresTestDatabase.with { database in
                try writeFiles(["sluice.yml": "database: \(database.url)\n"], in: root)
                return try await body(database)
            }
        }
    }
}

/// Writes each file (a path relative to `root`, and its text), making folders as needed.
func writeFiles(_ files: [String: String], in root: URL) throws {
    for (path, text) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}

/// The files of a project whose pipeline `id` ingests `data/events.csv` (or `source`, an
/// ingest source in YAML's flow style), merges it on `event_id` (latest `ts` wins) and rolls it
/// up per day and org: what the kill and worker tests run, slow enough at 100,000s of rows to
/// be stopped mid-step.
func eventsPipelineFiles(id: String, source: String = "{ format: csv, path: data/events.csv }") -> [String: String] {
    [
        "schemas/events_raw.json":
            #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "day", "type": "DATE"}, {"name": "org", "type": "STRING"}, {"name": "amount", "type": "INT64"}]"#,
        "pipelines/\(id).yml": """
        pipeline: \(id)
        defaults: { timeout: 10m }
        steps:
          - { id: load, uses: ingest, with: { source: \(source), table: events_raw, schema: schemas/events_raw.json } }
          - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
          - { id: roll, uses: aggregate, with: { from: events, group_by: [day, org], measures: { total: sum(amount) }, into: daily } }
        """,
    ]
}

/// A copy of the repository's example project (pipelines, schemas, procedures, sample data)
/// in a temp folder.
func exampleProject() throws -> URL {
    let folder = try temporaryFolder()
    for item in ["pipelines", "schemas", "procedures", "examples"] {
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent(item), to: folder.appendingPathComponent(item))
    }
    return folder
}

/// A `sluice` command that keeps running (serve, scheduler), started in `directory` with
/// warnings-only logging; `firstLine` is the first line it printed (it prints one when ready).
struct LongRunningCommand: Sendable {
    let process: Process
    let output: Pipe
    let firstLine: String

    /// Starts it and waits (on a thread of its own) for the first line. What it writes to
    /// standard error goes to `errors` (none: nowhere). `environment` adds to (or overrides)
    /// the test's own variables; `openFileLimit` is set (soft and hard) before it starts.
    static func start(
        _ arguments: [String], in directory: URL, errors: URL? = nil,
        environment: [String: String] = [:], openFileLimit: Int? = nil
    ) async throws -> LongRunningCommand {
        try await onItsOwnThread {
            try LongRunningCommand(arguments, in: directory, errors: errors, environment: environment, openFileLimit: openFileLimit)
        }
    }

    private init(_ arguments: [String], in directory: URL, errors: URL?, environment extra: [String: String], openFileLimit: Int?) throws {
        process = Process()
        if let openFileLimit {
            // The shell execs sluice, so the process (and its id) is sluice's.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(openFileLimit) && exec \"$0\" \"$@\"", sluiceBinary.path] + arguments
        } else {
            process.executableURL = sluiceBinary
            process.arguments = arguments
        }
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_LOG_LEVEL"] = "warning"
        environment.merge(extra) { $1 }
        process.environment = environment
        output = Pipe()
        process.standardOutput = output
        if let errors {
            _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: errors)
        } else {
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        }
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        firstLine = String(decoding: line, as: UTF8.self)
    }

    /// Sends SIGTERM and returns the exit status and what it printed after the first line.
    func terminate() async throws -> (status: Int32, rest: String) {
        kill(process.processIdentifier, SIGTERM)
        return try await onItsOwnThread { [process, output] in
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
    }

    /// Kills it if it still runs (for `defer`).
    func stop() {
        if process.isRunning { process.terminate() }
    }
}
