import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `sluice tokens` and `sluice serve` as a user runs them: the binary, a temp project, real
/// HTTP on 127.0.0.1, SIGTERM to stop.
struct ServeCommandTests {
    func exampleProject() throws -> URL {
        let folder = try temporaryFolder()
        for item in ["pipelines", "schemas", "procedures", "examples"] {
            try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent(item), to: folder.appendingPathComponent(item))
        }
        return folder
    }

    @Test func tokensAreCreatedShownOnceListedAndRevoked() throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let created = try sluice("tokens", "create", "acme", "--name", "ci", in: project)
        #expect(created.status == 0, "\(created.stderr)")
        let token = created.stdout.trimmingCharacters(in: .newlines)
        #expect(token.hasPrefix("slc_") && token.count == 60, "\(token)")
        let id = String(token.dropFirst(4).prefix(12))
        #expect(created.stderr.contains("created api token \(id) for org acme (name ci); it is shown only now"))

        let list = try sluice("tokens", "list", "acme", in: project)
        #expect(list.status == 0)
        #expect(list.stdout.contains("\(id)  ci    api      "))
        #expect(!list.stdout.contains(token.suffix(43)), "a listing must never show the token")
        // Only the hash is stored.
        let database = try Data(contentsOf: project.appendingPathComponent(".sluice/runs.sqlite"))
        #expect(database.range(of: Data(token.suffix(43).utf8)) == nil)

        #expect(try sluice("tokens", "list", "other", in: project).stdout == "org other has no tokens\n")
        let wrongOrg = try sluice("tokens", "revoke", "other", id, in: project)
        #expect(wrongOrg.status == 1)
        #expect(wrongOrg.stderr.contains("org other has no active token '\(id)'"))
        let revoked = try sluice("tokens", "revoke", "acme", id, in: project)
        #expect(revoked.status == 0)
        #expect(revoked.stdout == "revoked token \(id)\n")
        #expect(try sluice("tokens", "revoke", "acme", id, in: project).status == 1)
        #expect(try sluice("tokens", "list", "acme", in: project).stdout.contains(" - ") == false)

        let metrics = try sluice("tokens", "create", "--metrics", in: project)
        #expect(metrics.status == 0)
        #expect(metrics.stderr.contains("created metrics token"))
        #expect(try sluice("tokens", "list", "--metrics", in: project).stdout.contains("metrics"))

        #expect(try sluice("tokens", "create", in: project).status == 2)
        #expect(try sluice("tokens", "create", "acme", "--metrics", in: project).status == 2)
        let badOrg = try sluice("tokens", "create", "not-an-org", in: project)
        #expect(badOrg.status == 1)
        #expect(badOrg.stderr.contains("org:"))
    }

    @Test func serveAnswersWithATokenAndStopsOnSIGTERM() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let token = try sluice("tokens", "create", "acme", in: project).stdout.trimmingCharacters(in: .newlines)

        let process = Process()
        process.executableURL = sluiceBinary
        process.arguments = ["serve", "--port", "0"]
        process.currentDirectoryURL = project
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_LOG_LEVEL"] = "warning"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The first line says where it listens.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        let port = try #require(text.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(text)")
        #expect(text.hasPrefix("sluice serve: listening on http://127.0.0.1:"))

        func call(_ method: String, _ path: String, token: String? = nil, body: String? = nil) async throws -> (Int, [String: Any]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.httpMethod = method
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            if let body {
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
        }
        #expect(try await call("GET", "/healthz").0 == 200)
        #expect(try await call("GET", "/v1/orgs/acme/runs").0 == 401)
        let (status, run) = try await call("POST", "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, body: "{}")
        #expect(status == 202)
        let id = try #require(run["id"] as? String)
        var state = ""
        for _ in 0..<600 where !["succeeded", "failed", "cancelled"].contains(state) {
            try await Task.sleep(for: .milliseconds(100))
            state = try await call("GET", "/v1/runs/\(id)", token: token).1["state"] as? String ?? ""
        }
        #expect(state == "succeeded")

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.contains("sluice serve: stopped"))
        // The run is in the history the CLI reads.
        let list = try sluice("runs", "list", "--org", "acme", in: project)
        #expect(list.stdout.contains(id))
    }
}
