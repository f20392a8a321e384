import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceRuntime
import SluiceSQLite
import SluiceServer
import SluiceStorage
import SluiceTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A copy of the repository's example project (pipelines, schemas, procedures, sample data)
/// in a temp folder, plus `extra` files (path: text).
func exampleProject(extra: [String: String] = [:]) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-server-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for item in ["pipelines", "schemas", "procedures", "examples"] {
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent(item), to: folder.appendingPathComponent(item))
    }
    for (path, text) in extra {
        let url = folder.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
    return folder
}

/// A pipeline that takes a few seconds: 400,000 rows ingested and merged. For cancelling.
let slowPipeline = [
    "schemas/events_raw.json":
        #"[{"name": "event_id", "type": "STRING", "mode": "REQUIRED"}, {"name": "day", "type": "DATE"}, {"name": "amount", "type": "INT64"}]"#,
    "pipelines/slow.yml": """
    pipeline: slow
    defaults: { timeout: 10m }
    steps:
      - { id: load, uses: ingest, with: { source: { format: csv, path: data/events.csv }, table: events_raw, schema: schemas/events_raw.json } }
      - { id: merge, uses: merge_dedupe, with: { from: events_raw, into: events, key: [event_id], latest_by: day } }
    """,
    "data/events.csv": {
        var text = "event_id,day,amount\n"
        text.reserveCapacity(400_000 * 24)
        for index in 0..<400_000 { text += "e\(index),2026-03-0\(index % 7 + 1),\(index % 100)\n" }
        return text
    }(),
]

/// Whether the Prometheus text has a sample of `series` whose value is exactly `value`
/// (gauges print `1.0`, counters `1`; a prefix match would also take `10`).
func hasSample(_ text: String, _ series: String, _ value: Double) -> Bool {
    text.split(separator: "\n").contains { line in
        guard line.hasPrefix(series + " "), let sample = Double(line.dropFirst(series.count + 1)) else { return false }
        return sample == value
    }
}

/// A response as the tests look at it.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    var errorCode: String? { error["code"] as? String }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A live server on 127.0.0.1 with a free port, over a project, until `stop()`.
final class LiveServer: Sendable {
    let project: URL
    let server: APIServer
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let session: URLSession

    static let quiet = Logger(label: "test.server") { _ in
        var handler = StreamLogHandler.standardError(label: "test.server")
        handler.logLevel = ProcessInfo.processInfo.environment["SLUICE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return handler
    }

    /// `services` run beside the HTTP server (a scheduler over the server's runner).
    /// With `runExecution` `.workers`, the server only creates runs, for workers to claim.
    static func start(
        project: URL, configure: (inout ServerConfiguration) -> Void = { _ in },
        logger: Logger = quiet, runExecution: RunExecution = .inProcess, services: (APIServer) -> [any Service] = { _ in [] }
    ) async throws -> LiveServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let server = try APIServer(
            services: try await Runtime.open(
                projectRoot: project, environment: configuration.environment,
                runCacheBytes: configuration.runCacheBytesPerRun, runExecution: runExecution),
            configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = try server.application(services: services(server)) { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [application], logger: quiet))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.httpMaximumConnectionsPerHost = 256
        sessionConfiguration.timeoutIntervalForRequest = 120
        return LiveServer(
            project: project, server: server, port: port, group: group, task: task,
            session: URLSession(configuration: sessionConfiguration))
    }

    private init(project: URL, server: APIServer, port: Int, group: ServiceGroup, task: Task<Void, any Error>, session: URLSession) {
        self.project = project
        self.server = server
        self.port = port
        self.group = group
        self.task = task
        self.session = session
    }

    /// Graceful shutdown: the HTTP server stops, then runs still executing are cancelled.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        session.invalidateAndCancel()
    }

    /// Creates an API token for `org` (nil: a metrics token) the way `sluice tokens` does.
    func token(_ org: String?) async throws -> String {
        try await server.tokens.create(org: org, name: "test").token.text
    }

    func request(
        _ method: String, _ path: String, token: String? = nil, headers: [String: String] = [:],
        body: Data? = nil
    ) async throws -> HTTPResult {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields["\(name)".lowercased()] = "\(value)" }
        return HTTPResult(status: http.statusCode, headers: fields, body: data)
    }

    func post(_ path: String, token: String?, json: String = "", headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request("POST", path, token: token, headers: headers, body: Data(json.utf8))
    }

    func get(_ path: String, token: String?, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request("GET", path, token: token, headers: headers)
    }

    /// Polls the run until it is in a final state (or `timeout` passes).
    func waitForEnd(_ runID: String, token: String, timeout: Duration = TestTime.patience) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let run = try await get("/v1/runs/\(runID)", token: token).json
            if let state = run["state"] as? String, ["succeeded", "failed", "cancelled"].contains(state) { return run }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("run \(runID) did not end within \(timeout)")
        return [:]
    }
}
