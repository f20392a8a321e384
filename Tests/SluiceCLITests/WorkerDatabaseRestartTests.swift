import Foundation
import SluiceTestSupport
import Testing

extension WorkerTests {
    /// An ingest source on 127.0.0.1 that answers each page of events slowly
    /// (Support/slow_events.py): a step that writes a batch into the staging every `delay`, for
    /// `pages` pages.
    struct SlowEventSource {
        let process: Process
        let port: Int

        static func start(pages: Int, rowsPerPage: Int, delay: Double) async throws -> SlowEventSource {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", repositoryRoot.appendingPathComponent("Tests/SluiceCLITests/Support/slow_events.py").path,
                String(pages), String(rowsPerPage), String(delay),
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let printed = try await onItsOwnThread { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }
            guard let port = Int(printed.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                kill(process.processIdentifier, SIGKILL)
                throw SourceDidNotStart(printed: printed)
            }
            return SlowEventSource(process: process, port: port)
        }

        /// The `source` of the events pipeline that reads it.
        var ingestSource: String {
            #"{ format: http, url: "http://127.0.0.1:\#(port)/events", items: /data, pagination: { type: page, page_param: page, max_pages: 1000 } }"#
        }

        func stop() { kill(process.processIdentifier, SIGKILL) }

        struct SourceDidNotStart: Error, CustomStringConvertible {
            var printed: String
            var description: String { "slow_events.py did not print its port: '\(printed)'" }
        }
    }

    /// PostgreSQL restarted (stopped, then started again on its port with its data) while a
    /// worker executes a run whose step writes into the staging a batch at a time. Whatever the
    /// timing, the run ends: failed, with a reason that names the server (and then resumed, it
    /// completes), or taken over or retried and succeeded; and nothing is half-published: the
    /// targets are empty or what one clean run leaves, and the run's published marker is there
    /// at most once (once exactly when it succeeded). A server of the test's own, so that no
    /// other test sees it go.
    @Test(.enabled(if: PostgresTestDatabase.isAvailable))
    func aRunWhoseDatabaseRestartsUnderItsWorkerEndsCleanlyOrCompletes() async throws {
        let source = try await SlowEventSource.start(pages: 24, rowsPerPage: 250, delay: 0.25)
        defer { source.stop() }
        let server = PostgresTestServer()
        try await server.with { url in
            let components = try #require(URLComponents(string: url))
            let endpoint = "\(components.host ?? ""):\(components.port ?? 5432)"
            let project = try WorkerProject(rows: 0, backend: WorkerProject.Backend(name: "postgres", settings: "database: \(url)\n"))
            defer { project.remove() }
            try writeFiles(eventsPipelineFiles(id: "events", source: source.ingestSource), in: project.root)
            // The reference: one clean run in another org.
            let clean = try await project.sluice("run", "events", "--org", "globex")
            #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
            let reference = try await project.targets(org: "globex")
            #expect(reference.contains("6000"), "\(reference)")

            let errors = project.root.appendingPathComponent("worker.err")
            let worker = try await project.startWorker(errors: errors, logLevel: "info")
            defer { worker.stop() }
            let run = try await project.enqueue()
            #expect(try await eventually(every: .milliseconds(30)) { try await project.show(run).contains("step load (attempt 1) → running") })
            // A few batches in; then away for longer than the worker's lease of 2 s.
            try await Task.sleep(for: .seconds(1.5))
            try await server.run("pause")
            try await Task.sleep(for: .seconds(3))
            try await server.run("resume")

            let state = try await project.waitUntilEnded([run])[run]
            if state != "succeeded" && state != "failed" {
                let logged = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
                Issue.record("the run did not end: \(try await project.show(run))\nthe worker's log ends:\n\(logged.suffix(3_000))")
            }
            let shown = try await project.show(run)
            let targets = try await project.targets(org: "acme")
            let markers = try publishedMarkers(of: run, org: "acme", on: url)
            switch state {
            case "succeeded":
                #expect(targets == reference, "\(shown)")
                #expect(markers == 1, "\(shown)")
            case "failed":
                #expect(shown.contains("PostgreSQL at \(endpoint)"), "the reason names the server: \(shown)")
                #expect(try await project.sluice("query", "acme", "SELECT count(*) FROM events").status == 1, "nothing published: \(targets)")
                #expect(markers == 0, "\(shown)")
                // As the reason says: resumed, the run completes from its staging, and publishes once.
                let resumed = try await project.sluice("run", "--resume", run)
                #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
                #expect(try await project.targets(org: "acme") == reference)
                #expect(try publishedMarkers(of: run, org: "acme", on: url) == 1)
            default:
                // A worker stuck on the run would not stop on SIGTERM either (recorded above).
                kill(worker.process.processIdentifier, SIGKILL)
                return
            }
            #expect(shown.split(separator: "\n").filter { $0.contains("run → succeeded") || $0.contains("run → failed") }.count == 1, "\(shown)")
            let (status, rest) = try await worker.terminate()
            #expect(status == 0 && rest.contains("sluice worker: stopped"), "\(rest)")
            let logged = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            #expect(!logged.contains("Fatal error"), "\(logged)")
        }
    }

    /// How many times the run's publish committed in the org: rows of its `_sluice_published`
    /// (0 when the org has none yet), read with the server's own psql.
    func publishedMarkers(of run: String, org: String, on url: String) throws -> Int {
        let schema = "sluice_warehouse_org_\(org)"
        let exists = try PostgresTestDatabase.psql(url, "SELECT to_regclass('\(schema)._sluice_published') IS NOT NULL")
        guard exists == "t" else { return 0 }
        return Int(try PostgresTestDatabase.psql(url, "SELECT count(*) FROM \(schema)._sluice_published WHERE run_id = '\(run)'")) ?? -1
    }
}
