import Foundation

// Catch-up throughput: the runs of an hourly pipeline missed over the last N hours (each
// ingests 1,000 CSV rows and merges them), executed by `sluice scheduler --once` against the
// baseline a data engineer would script: `sluice run` once per missed hour from a shell loop
// (a system cron plus a wrapper). Both use the release binary next to this one; the tables
// they leave must match.
//   bash Benchmarks/run.sh schedule [--hours 48]

let hours: Int = {
    var hours = 48
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        if argument == "--hours", let value = arguments.popFirst().flatMap(Int.init), value > 0 {
            hours = value
        } else {
            print("usage: ScheduleBenchmark [--hours N]")
            exit(2)
        }
    }
    return hours
}()
let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sluice")
guard FileManager.default.isExecutableFile(atPath: binary.path) else {
    print("no sluice binary at \(binary.path); build it with swift build -c release --product sluice")
    exit(1)
}

func project(maxActive: Int) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-schedule-bench-\(UUID().uuidString)")
    for sub in ["pipelines", "schemas", "data"] {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
    }
    var csv = "tick_id,amount\n"
    for index in 0..<1000 { csv += "t\(index),\(index % 97)\n" }
    try Data(csv.utf8).write(to: folder.appendingPathComponent("data/ticks.csv"))
    try Data(#"[{"name": "tick_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "INT64"}]"#.utf8)
        .write(to: folder.appendingPathComponent("schemas/ticks_raw.json"))
    try Data(
        """
        pipeline: ticks
        schedule: { cron: "0 * * * *", timezone: UTC, catchup: \(hours)h, max_active_runs: \(maxActive) }
        defaults: { timeout: 5m }
        steps:
          - { id: load, uses: ingest, with: { source: { format: csv, path: data/ticks.csv }, table: ticks_raw, schema: schemas/ticks_raw.json } }
          - { id: merge, uses: merge_dedupe, with: { from: ticks_raw, into: ticks, key: [tick_id], latest_by: amount } }
        """.utf8
    ).write(to: folder.appendingPathComponent("pipelines/ticks.yml"))
    return folder
}

@discardableResult
func sluice(_ arguments: [String], in folder: URL) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.currentDirectoryURL = folder
    var environment = ProcessInfo.processInfo.environment
    environment["SLUICE_LOG_LEVEL"] = "error"
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func tableSummary(_ folder: URL) throws -> String {
    try sluice(["query", "acme", "SELECT count(*) AS rows, sum(amount) AS amount FROM ticks"], in: folder).output
}

print("Schedule benchmark: catching up \(hours) missed hourly runs (1,000 rows each) for one org")
// Baseline: one `sluice run` process per missed hour, one after another.
let baselineProject = try project(maxActive: 1)
defer { try? FileManager.default.removeItem(at: baselineProject) }
let now = Date()
let started = ContinuousClock.now
for hour in 0..<hours {
    let day = ISO8601DateFormatter.string(
        from: now.addingTimeInterval(-Double(hour) * 3600), timeZone: TimeZone(identifier: "UTC")!,
        formatOptions: [.withFullDate])
    let result = try sluice(["run", "ticks", "--org", "acme", "--logical-date", day], in: baselineProject)
    guard result.status == 0 else {
        print("baseline run \(hour) failed:\n\(result.output)")
        exit(1)
    }
}
let baseline = seconds(ContinuousClock.now - started)
print(String(format: "  baseline, sluice run × %d from a loop:      %6.2f s  %6.1f runs/s", hours, baseline, Double(hours) / baseline))
let expected = try tableSummary(baselineProject)

for maxActive in [1, 4] {
    let folder = try project(maxActive: maxActive)
    defer { try? FileManager.default.removeItem(at: folder) }
    let start = ContinuousClock.now
    let result = try sluice(["scheduler", "--once", "--org", "acme"], in: folder)
    let elapsed = seconds(ContinuousClock.now - start)
    let lines = result.output.split(separator: "\n").filter { $0.hasSuffix("succeeded") }
    guard result.status == 0, lines.count == hours else {
        print("sluice scheduler --once (max_active_runs \(maxActive)) created \(lines.count) succeeded runs, not \(hours):\n\(result.output)")
        exit(1)
    }
    guard try tableSummary(folder) == expected else {
        print("the scheduler's table differs from the baseline's")
        exit(1)
    }
    print(
        String(
            format: "  sluice scheduler --once, max_active_runs %d: %6.2f s  %6.1f runs/s  (%.1f× the baseline)",
            maxActive, elapsed, Double(hours) / elapsed, baseline / elapsed))
}
let row = expected.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ").joined(separator: " ") } ?? "?"
print("the ticks table is the same after each (rows, sum of amount: \(row))")
