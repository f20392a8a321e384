import Foundation

// Worker scaling on PostgreSQL: 200 short runs (a backfill of 200 days of a small ingest →
// merge → aggregate pipeline) executed by 1, 2 and 4 `sluice worker` processes, each running
// one run at a time. Prints the wall time from the backfill to the last run ending, runs per
// minute and the speed-up over one worker, and checks that every run succeeded and was
// started exactly once. Release build, on a throwaway server:
//   bash Benchmarks/run.sh workers   (or: WorkerBenchmark --postgres URL [--runs 200] [--workers 1,2,4])

let arguments = CommandLine.arguments
func option(_ name: String) -> String? { arguments.firstIndex(of: name).map { arguments[$0 + 1] } }
guard let server = option("--postgres") else {
    print("usage: WorkerBenchmark --postgres postgres://user@host:port/db [--runs 200] [--workers 1,2,4]")
    exit(2)
}
let runCount = option("--runs").flatMap { Int($0) } ?? 200
let workerCounts = option("--workers").map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1, 2, 4]
let sluice = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sluice").path
guard FileManager.default.isExecutableFile(atPath: sluice) else {
    print("build the sluice product in release first: swift build -c release --product sluice")
    exit(1)
}
let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("sluice-worker-bench")

/// Runs a program to its end; its standard output, and whether it succeeded.
@discardableResult
func run(_ executable: String, _ arguments: [String], in folder: URL) -> (ok: Bool, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = folder
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    guard (try? process.run()) != nil else { return (false, "") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus == 0, String(decoding: data, as: UTF8.self))
}

func psql(_ url: String, _ sql: String) -> String {
    run("/usr/bin/psql", [url, "-X", "-q", "-A", "-t", "-c", sql], in: work).output.trimmingCharacters(in: .whitespacesAndNewlines)
}

func database(_ name: String) -> String {
    var components = URLComponents(string: server)!
    components.path = "/" + name
    return components.string!
}

/// A project on a fresh database: one pipeline loading 200 rows.
func makeProject(database url: String) throws -> URL {
    let root = work.appendingPathComponent("project")
    try? FileManager.default.removeItem(at: root)
    let files = [
        "sluice.yml": "database: \(url)\n",
        "schemas/events_raw.json":
            #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "day", "type": "DATE"}, {"name": "amount", "type": "INT64"}]"#,
        "pipelines/events.yml": """
        pipeline: events
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
          - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: ts } }
          - { id: roll, uses: aggregate, with: { from: events, group_by: [day], measures: { total: sum(amount) }, into: daily } }
        """,
        "data/events.csv": "event_id,ts,day,amount\n" + (0..<200).map { "e\($0),2026-03-01T10:00:00Z,2026-03-0\($0 % 7 + 1),\($0 % 5)\n" }.joined(),
    ]
    for (path, text) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
    return root
}

try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
print("Worker benchmark: \(runCount) short runs on PostgreSQL, each worker one run at a time")
print("workers  wall s   runs/min  speed-up  runs succeeded  started once")
var baseline: Double?
for workers in workerCounts {
    let name = "sluice_bench_workers"
    _ = psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    _ = psql(server, "CREATE DATABASE \(name)")
    let url = database(name)
    let project = try makeProject(database: url)
    // The runs, pending, before any worker starts: 200 days back from a fixed day.
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate]
    let last = formatter.date(from: "2026-01-31")!
    let first = last.addingTimeInterval(-Double(runCount - 1) * 86_400)
    let backfill = run(sluice, ["backfill", "events", "--from", formatter.string(from: first), "--to", formatter.string(from: last)], in: project)
    guard backfill.ok else {
        print("the backfill failed:\n\(backfill.output)")
        exit(1)
    }
    let created = Int(psql(url, "SELECT count(*) FROM sluice.run WHERE state = 'pending'")) ?? 0
    guard created == runCount else {
        print("the backfill created \(created) runs, not \(runCount)")
        exit(1)
    }
    let started = Date()
    let processes = (0..<workers).map { _ -> Process in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sluice)
        process.arguments = ["worker", "--concurrency", "1", "--poll", "100ms"]
        process.currentDirectoryURL = project
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try? process.run()
        return process
    }
    while Int(psql(url, "SELECT count(*) FROM sluice.run WHERE state IN ('pending', 'running')")) ?? 1 > 0 {
        Thread.sleep(forTimeInterval: 0.05)
    }
    let seconds = Date().timeIntervalSince(started)
    for process in processes { process.terminate() }
    for process in processes { process.waitUntilExit() }
    let succeeded = Int(psql(url, "SELECT count(*) FROM sluice.run WHERE state = 'succeeded'")) ?? 0
    let startedOnce =
        Int(
            psql(
                url,
                "SELECT count(*) FROM (SELECT run_id FROM sluice.transition WHERE step_id IS NULL AND reason LIKE 'started by worker %' GROUP BY run_id HAVING count(*) = 1) AS once"
            )) ?? 0
    baseline = baseline ?? seconds
    print(
        String(
            format: "%-8d %7.2f %9.1f %8.2fx  %6d/%d  %10d/%d", workers, seconds, Double(runCount) / seconds * 60, baseline! / seconds,
            succeeded, runCount, startedOnce, runCount))
}
