import Foundation

// End to end: GenAI usage CSV → ingest → merge_dedupe → aggregate (with a pricing join) →
// validate_data → publish, with `sluice run` on the example pipeline, against the baseline a
// data engineer would write and tune by hand: the sqlite3 shell with WAL, a 256 MB cache and
// temp tables in memory, doing `.import` into a temp table, an upsert that keeps the newer
// version, and the same GROUP BY. Both must produce the same
// daily totals. Prints wall time, rows/s and peak memory for each size. Release build:
//   bash Benchmarks/run.sh run   (or: swift run -c release RunBenchmark [--rows 100000,1000000])
//
// With `--postgres URL` (a server's superuser URL; `bash Benchmarks/run.sh postgres` starts a
// throwaway server), the same job on PostgreSQL instead: sluice with `database:` on a fresh
// database, against psql doing `\copy` into a temp table, `INSERT … ON CONFLICT … DO UPDATE …
// WHERE newer` and the same GROUP BY on another.

let arguments = CommandLine.arguments
let sizes =
    arguments.firstIndex(of: "--rows").map { arguments[$0 + 1].split(separator: ",").compactMap { Int($0) } }
    ?? [100_000, 1_000_000]
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let binFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
let sluice = binFolder.appendingPathComponent("sluice").path
let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("sluice-run-bench")
guard FileManager.default.isExecutableFile(atPath: sluice) else {
    print("build the sluice product in release first: swift build -c release --product sluice")
    exit(1)
}

struct Measured {
    var seconds: Double
    var peakMB: Double
    var status: Int32
    var output: String
}

/// Runs a command under GNU time to read its peak resident memory (Foundation's Process
/// reaps its children itself, so wait4 can't see their usage).
func measure(_ executable: String, _ arguments: [String], in folder: URL, stdin: String? = nil) throws -> Measured {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
    process.arguments = ["-f", "SLUICE_BENCH_MAXRSS_KB=%M", executable] + arguments
    process.currentDirectoryURL = folder
    let output = folder.appendingPathComponent("output-\(UUID().uuidString).txt")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    if let stdin {
        let input = folder.appendingPathComponent("input-\(UUID().uuidString).sql")
        try Data(stdin.utf8).write(to: input)
        process.standardInput = try FileHandle(forReadingFrom: input)
    }
    let started = Date()
    try process.run()
    process.waitUntilExit()
    let seconds = Date().timeIntervalSince(started)
    try handle.close()
    var text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: output)
    var peak = 0.0
    if let range = text.range(of: "SLUICE_BENCH_MAXRSS_KB=") {
        peak = (Double(text[range.upperBound...].prefix { $0.isNumber }) ?? 0) / 1024
        text = String(text[..<range.lowerBound])
    }
    return Measured(seconds: seconds, peakMB: peak, status: process.terminationStatus, output: text)
}

func shell(_ command: String) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try? process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// The hand-tuned sqlite3 job, tuned as ../shared/bench/w1/sqlite3_ref.sh is (WAL,
/// `synchronous=NORMAL`, temp tables in memory, a 256 MB page cache, the import into a temp
/// table), on this benchmark's data and with its pipeline's measures.
let baselineScript = """
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -262144;
    CREATE TEMP TABLE usage_raw (request_id TEXT, request_ts TEXT, updated_at TEXT, usage_date TEXT, org_slug TEXT, project_id TEXT,
        provider TEXT, model TEXT, operation TEXT, input_tokens INTEGER, output_tokens INTEGER, latency_ms INTEGER, status TEXT,
        request_tags TEXT);
    CREATE TEMP TABLE pricing_raw (provider TEXT, model TEXT, input_price_per_1m REAL, output_price_per_1m REAL, currency TEXT,
        price_updated_at TEXT);
    .mode csv
    .import --skip 1 --schema temp USAGE usage_raw
    .import --skip 1 --schema temp PRICING pricing_raw
    CREATE TABLE usage (request_id TEXT PRIMARY KEY, request_ts TEXT, updated_at TEXT, usage_date TEXT, org_slug TEXT,
        project_id TEXT, provider TEXT, model TEXT, operation TEXT, input_tokens INTEGER, output_tokens INTEGER,
        latency_ms INTEGER, status TEXT, request_tags TEXT);
    INSERT INTO usage SELECT * FROM usage_raw WHERE true
        ON CONFLICT (request_id) DO UPDATE SET request_ts = excluded.request_ts, updated_at = excluded.updated_at,
            usage_date = excluded.usage_date, org_slug = excluded.org_slug, project_id = excluded.project_id,
            provider = excluded.provider, model = excluded.model, operation = excluded.operation,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, latency_ms = excluded.latency_ms,
            status = excluded.status, request_tags = excluded.request_tags
        WHERE excluded.updated_at > usage.updated_at;
    CREATE TABLE pricing (provider TEXT, model TEXT, input_price_per_1m REAL, output_price_per_1m REAL, price_updated_at TEXT,
        PRIMARY KEY (provider, model));
    INSERT INTO pricing SELECT provider, model, input_price_per_1m, output_price_per_1m, price_updated_at FROM pricing_raw WHERE true
        ON CONFLICT (provider, model) DO UPDATE SET input_price_per_1m = excluded.input_price_per_1m,
            output_price_per_1m = excluded.output_price_per_1m, price_updated_at = excluded.price_updated_at
        WHERE excluded.price_updated_at > pricing.price_updated_at;
    CREATE TABLE genai_costs_daily AS
        SELECT u.usage_date, u.org_slug, u.provider, u.model, count(*) AS requests,
            sum(CASE WHEN u.status = 'failed' THEN 1 ELSE 0 END) AS failed_requests, sum(u.input_tokens) AS input_tokens,
            sum(u.output_tokens) AS output_tokens,
            sum(u.input_tokens * p.input_price_per_1m / 1e6 + u.output_tokens * p.output_price_per_1m / 1e6) AS cost_usd
        FROM usage AS u LEFT JOIN pricing AS p ON p.provider = u.provider AND p.model = u.model
        GROUP BY u.usage_date, u.org_slug, u.provider, u.model;
    """

/// The hand-written PostgreSQL job: what a data engineer types into psql. ON CONFLICT may not
/// touch a row twice in one statement, so re-deliveries in the file are collapsed first
/// (DISTINCT ON, newest version of each request).
let postgresBaselineScript = """
    \\set ON_ERROR_STOP on
    CREATE TEMP TABLE usage_raw (request_id text, request_ts timestamptz, updated_at timestamptz, usage_date date, org_slug text,
        project_id text, provider text, model text, operation text, input_tokens bigint, output_tokens bigint, latency_ms bigint,
        status text, request_tags text);
    CREATE TEMP TABLE pricing_raw (provider text, model text, input_price_per_1m numeric, output_price_per_1m numeric, currency text,
        price_updated_at timestamptz);
    \\copy usage_raw FROM 'USAGE' WITH (FORMAT csv, HEADER true)
    \\copy pricing_raw FROM 'PRICING' WITH (FORMAT csv, HEADER true)
    CREATE TABLE usage (request_id text PRIMARY KEY, request_ts timestamptz, updated_at timestamptz, usage_date date, org_slug text,
        project_id text, provider text, model text, operation text, input_tokens bigint, output_tokens bigint, latency_ms bigint,
        status text, request_tags text);
    INSERT INTO usage SELECT DISTINCT ON (request_id) * FROM usage_raw ORDER BY request_id, updated_at DESC
        ON CONFLICT (request_id) DO UPDATE SET request_ts = excluded.request_ts, updated_at = excluded.updated_at,
            usage_date = excluded.usage_date, org_slug = excluded.org_slug, project_id = excluded.project_id,
            provider = excluded.provider, model = excluded.model, operation = excluded.operation,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, latency_ms = excluded.latency_ms,
            status = excluded.status, request_tags = excluded.request_tags
        WHERE excluded.updated_at > usage.updated_at;
    CREATE TABLE pricing (provider text, model text, input_price_per_1m numeric, output_price_per_1m numeric,
        price_updated_at timestamptz, PRIMARY KEY (provider, model));
    INSERT INTO pricing SELECT DISTINCT ON (provider, model) provider, model, input_price_per_1m, output_price_per_1m, price_updated_at
        FROM pricing_raw ORDER BY provider, model, price_updated_at DESC
        ON CONFLICT (provider, model) DO UPDATE SET input_price_per_1m = excluded.input_price_per_1m,
            output_price_per_1m = excluded.output_price_per_1m, price_updated_at = excluded.price_updated_at
        WHERE excluded.price_updated_at > pricing.price_updated_at;
    CREATE TABLE genai_costs_daily AS
        SELECT u.usage_date, u.org_slug, u.provider, u.model, count(*) AS requests,
            sum(CASE WHEN u.status = 'failed' THEN 1 ELSE 0 END) AS failed_requests, sum(u.input_tokens) AS input_tokens,
            sum(u.output_tokens) AS output_tokens,
            sum(u.input_tokens * p.input_price_per_1m / 1e6 + u.output_tokens * p.output_price_per_1m / 1e6) AS cost_usd
        FROM usage AS u LEFT JOIN pricing AS p ON p.provider = u.provider AND p.model = u.model
        GROUP BY u.usage_date, u.org_slug, u.provider, u.model;
    """

/// The daily totals both sides must agree on: the counts and token sums exactly, the cost up
/// to float rounding. The baselines compute every measure the pipeline does.
let countsColumn = "requests || ',' || failed_requests || ',' || input_tokens || ',' || output_tokens"
let totalsQuery =
    "SELECT usage_date, org_slug, provider, model, \(countsColumn), printf('%.17g', cost_usd) FROM genai_costs_daily ORDER BY 1, 2, 3, 4"

let postgresServer = arguments.firstIndex(of: "--postgres").map { arguments[$0 + 1] }

/// Runs SQL (or a script on standard input) with psql against `url`; its unaligned output.
func psql(_ url: String, _ sql: String? = nil, script: String? = nil, in folder: URL) throws -> Measured {
    var psqlArguments = [url, "-X", "-q", "-A", "-t"]
    if let sql { psqlArguments += ["-c", sql] }
    return try measure("/usr/bin/psql", psqlArguments, in: folder, stdin: script)
}

/// `server` naming `database` instead of its own.
func database(_ name: String, on server: String) -> String {
    var components = URLComponents(string: server)!
    components.path = "/" + name
    return components.string!
}

/// A fresh, empty database on the server.
func freshDatabase(_ name: String, on server: String, in folder: URL) throws -> String {
    _ = try psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)", in: folder)
    let created = try psql(server, "CREATE DATABASE \(name)", in: folder)
    guard created.status == 0 else {
        print("could not create the database \(name):\n\(created.output)")
        exit(1)
    }
    return database(name, on: server)
}

// Counts must match exactly; costs up to float rounding (the sums run in another order).
func parse(_ text: String) -> [(key: String, requests: String, cost: Double)] {
    text.split(separator: "\n").map { line in
        let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        return (parts.prefix(4).joined(separator: "|"), parts.count > 4 ? parts[4] : "", parts.count > 5 ? Double(parts[5]) ?? .nan : .nan)
    }
}

func sameTotals(_ ours: String, _ theirs: String) -> Bool {
    let ourRows = parse(ours), theirRows = parse(theirs)
    return !ourRows.isEmpty && ourRows.count == theirRows.count
        && zip(ourRows, theirRows).allSatisfy { ours, theirs in
            ours.key == theirs.key && ours.requests == theirs.requests && abs(ours.cost - theirs.cost) <= 1e-9 * max(1, abs(theirs.cost))
        }
}

let baselineName = postgresServer == nil ? "sqlite3" : "psql"
print("Run benchmark: genai_costs_daily end to end, sluice (release) vs \(postgresServer == nil ? "the sqlite3 shell" : "psql on PostgreSQL")")
print("size       tool     wall s   rows/s     peak MB")
for rows in sizes {
    let data = work.appendingPathComponent("data-\(rows)")
    if !FileManager.default.fileExists(atPath: data.appendingPathComponent("genai_usage.csv").path) {
        print("(generating \(rows) rows with scripts/generate_sample_data.py …)")
        guard shell("python3 '\(repository.path)/scripts/generate_sample_data.py' --rows \(rows) --bad-rows 0 --out '\(data.path)' > /dev/null") == 0
        else {
            print("generating the data failed")
            exit(1)
        }
    }
    let usage = data.appendingPathComponent("genai_usage.csv").path
    let pricing = data.appendingPathComponent("genai_pricing.csv").path

    // Sluice, in a fresh project holding the example pipeline and schemas.
    let project = work.appendingPathComponent("project-\(rows)")
    try? FileManager.default.removeItem(at: project)
    try FileManager.default.createDirectory(at: project.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: repository.appendingPathComponent("schemas"), to: project.appendingPathComponent("schemas"))
    try FileManager.default.copyItem(at: repository.appendingPathComponent("procedures"), to: project.appendingPathComponent("procedures"))
    try FileManager.default.copyItem(
        at: repository.appendingPathComponent("pipelines/genai_costs_daily.yml"),
        to: project.appendingPathComponent("pipelines/genai_costs_daily.yml"))
    // The generated data lies outside the project: let the project's runs read it, as an
    // operator would (runs read only the project folder and the input root).
    var settings = "inputs: { root: \"\(data.path)\" }\n"
    var sluiceDatabase: String?
    if let postgresServer {
        sluiceDatabase = try freshDatabase("sluice_bench_ours", on: postgresServer, in: work)
        settings += "database: \(sluiceDatabase!)\n"
    }
    try Data(settings.utf8).write(to: project.appendingPathComponent("sluice.yml"))
    let ours = try measure(
        sluice, ["run", "genai_costs_daily", "--param", "usage_file=\(usage)", "--param", "pricing_file=\(pricing)"],
        in: project)
    guard ours.status == 0 else {
        print("sluice run failed:\n\(ours.output.suffix(2_000))")
        exit(1)
    }

    // The baseline, and the daily totals of both.
    let baselineFolder = work.appendingPathComponent("baseline-\(rows)")
    try? FileManager.default.removeItem(at: baselineFolder)
    try FileManager.default.createDirectory(at: baselineFolder, withIntermediateDirectories: true)
    let theirs: Measured
    let ourTotals: Measured
    let theirTotals: Measured
    if let postgresServer, let sluiceDatabase {
        let reference = try freshDatabase("sluice_bench_reference", on: postgresServer, in: work)
        let script = postgresBaselineScript.replacingOccurrences(of: "USAGE", with: usage).replacingOccurrences(of: "PRICING", with: pricing)
        theirs = try psql(reference, script: script, in: baselineFolder)
        let totals =
            "SELECT usage_date, org_slug, provider, model, \(countsColumn), cost_usd::float8::text FROM genai_costs_daily ORDER BY 1, 2, 3, 4"
        ourTotals = try psql(sluiceDatabase, "SET search_path = sluice_warehouse_org_default; " + totals, in: project)
        theirTotals = try psql(reference, totals, in: baselineFolder)
    } else {
        let script = baselineScript.replacingOccurrences(of: "USAGE", with: usage).replacingOccurrences(of: "PRICING", with: pricing)
        theirs = try measure("/usr/bin/sqlite3", [baselineFolder.appendingPathComponent("baseline.sqlite").path], in: baselineFolder, stdin: script)
        ourTotals = try measure(
            "/usr/bin/sqlite3", ["-readonly", project.appendingPathComponent(".sluice/orgs/default/warehouse.sqlite").path, totalsQuery],
            in: project)
        theirTotals = try measure(
            "/usr/bin/sqlite3", ["-readonly", baselineFolder.appendingPathComponent("baseline.sqlite").path, totalsQuery], in: baselineFolder)
    }
    guard theirs.status == 0 else {
        print("the \(baselineName) baseline failed:\n\(theirs.output.suffix(2_000))")
        exit(1)
    }
    let same = sameTotals(ourTotals.output, theirTotals.output)

    func line(_ tool: String, _ measured: Measured) -> String {
        String(format: "%-10d %-8@ %7.2f %9.0f %9.1f", rows, tool as NSString, measured.seconds, Double(rows) / measured.seconds, measured.peakMB)
    }
    print(line("sluice", ours))
    print(line(baselineName, theirs))
    print(
        String(
            format: "%-10d ratio    %.2fx sluice/%@; daily totals %@ (%d rows)", rows, ours.seconds / theirs.seconds, baselineName as NSString,
            (same ? "identical" : "DIFFER") as NSString, ourTotals.output.split(separator: "\n").count))
    if !same {
        print("first lines, sluice:\n\(ourTotals.output.prefix(400))\n\(baselineName):\n\(theirTotals.output.prefix(400))")
    }
}
