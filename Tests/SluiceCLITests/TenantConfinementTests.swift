import Foundation
import SluiceModel
import SluiceTestSupport
import Synchronization
import Testing

/// The real binary: `sluice run --param` is the operator's, still confined to the project, and
/// told so plainly; an HTTP ingest writes no page anywhere on disk.
struct TenantConfinementTests {
    @Test func theOperatorsPathParamStaysInTheProjectAndTheErrorSaysSo() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let outside = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.copyItem(
            at: project.appendingPathComponent("examples/data/genai_usage.csv"),
            to: outside.appendingPathComponent("usage.csv"))
        var outputs: [String] = []
        for file in ["\(outside.path)/usage.csv", "\(outside.path)/missing.csv"] {
            let result = try await run(sluiceBinary, ["run", "genai_costs_daily", "--param", "usage_file=\(file)"], in: project)
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            let all = result.stdout + result.stderr
            #expect(all.contains("input_refused"), "\(all)")
            #expect(all.contains("input file \(shown(file)) ('source.path') can't be read: it is not within the files this run may read"), "\(all)")
            outputs.append(
                result.stdout.components(separatedBy: "\n").filter { $0.contains("can't be read") }
                    .joined(separator: "\n").replacingOccurrences(of: shown(file), with: "(file)")
                    .replacingOccurrences(of: #"r[0-9a-f]{20}"#, with: "(run)", options: .regularExpression)
                    .replacingOccurrences(of: #"[0-9.]+s "#, with: "(time) ", options: .regularExpression))
        }
        // Whether the file outside is there or not, the answer is the same.
        #expect(outputs[0] == outputs[1], "\(outputs)")
        #expect(!outputs[0].isEmpty)
    }

    @Test func anHTTPIngestWritesNoPageToDisk() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let watched = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: watched) }
        let served = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: served) }

        // One large page, so a page written to disk would be there for a while.
        var rows: [String] = []
        for index in 0..<60_000 { rows.append(#"{"id": "u\#(index)", "amount": \#(index % 97)}"#) }
        try Data(#"{"data": [\#(rows.joined(separator: ","))]}"#.utf8).write(to: served.appendingPathComponent("page.json"))
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "python3", "-u", "-c",
            """
            import functools, http.server, signal, sys
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            class Quiet(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *args): pass
            handler = functools.partial(Quiet, directory=sys.argv[1])
            server = http.server.HTTPServer(("127.0.0.1", 0), handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """, served.path,
        ]
        let portPipe = Pipe()
        server.standardOutput = portPipe
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL) }
        let port = try await onItsOwnThread { String(decoding: portPipe.fileHandleForReading.availableData, as: UTF8.self) }
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(port) != nil, "the page server did not start")

        try Data(#"[{"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "amount", "type": "INT64"}]"#.utf8)
            .write(to: project.appendingPathComponent("schemas/usage_raw.json"))
        try Data(
            """
            pipeline: fetch_pages
            defaults: { timeout: 5m }
            steps:
              - id: fetch
                uses: ingest
                with: { source: { format: http, url: "http://127.0.0.1:\(port)/page.json" }, table: usage_raw, schema: schemas/usage_raw.json }
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/fetch_pages.yml"))

        let command = Process()
        command.executableURL = sluiceBinary
        command.arguments = ["run", "fetch_pages"]
        command.currentDirectoryURL = project
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = watched.path
        command.environment = environment
        command.standardOutput = FileHandle.nullDevice
        command.standardError = FileHandle.nullDevice
        try command.run()
        // Whatever appears in the temp folder while the run goes, until it ends.
        let seen = Mutex<Set<String>>([])
        try await eventually(every: .milliseconds(5)) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: watched.path)) ?? []
            seen.withLock { $0.formUnion(names) }
            return !command.isRunning
        }
        try await waitForExit(of: command)
        #expect(command.terminationStatus == 0)
        #expect(seen.withLock { $0 }.isEmpty, "written to TMPDIR: \(seen.withLock { $0 })")

        // Nor under the project: its state holds the run store and warehouses, no page.
        let state = FileManager.default.enumerator(atPath: project.appendingPathComponent(".sluice").path)
        let files = (state?.allObjects as? [String] ?? []).filter { !$0.hasSuffix(".sqlite") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        let unexpected = files.filter { path in
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: project.appendingPathComponent(".sluice/\(path)").path, isDirectory: &isFolder)
            return !isFolder.boolValue && !path.hasSuffix(".lock")
        }
        #expect(unexpected.isEmpty, "\(unexpected)")
    }
}
