import Foundation
import SluiceServer
import SluiceTestSupport
import Testing

/// Every bad request gets the right 4xx, a JSON error with a stable code, a clear message
/// and the request id, and starts nothing.
struct APIBadInputTests {
    @Test func badRequestsGetTheRight4xxAndAClearMessage() async throws {
        let live = try await LiveServer.start(
            project: try exampleProject(extra: [
                "pipelines/broken.yml": "pipeline: broken\nsteps:\n  - { id: a, uses: no_such_processor }\n"
            ]))
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let trigger = "/v1/orgs/acme/pipelines/genai_costs_daily/runs"
        let oversized = "{\"params\": {\"usage_file\": \"" + String(repeating: "x", count: 1 << 20) + ".csv\"}}"

        struct Case {
            var name: String
            var method = "POST"
            var path: String
            var body: String?
            var headers: [String: String] = [:]
            var status: Int
            var code: String
            var message: String
        }
        let cases: [Case] = [
            Case(
                name: "malformed JSON", path: trigger, body: #"{"params": {"usage_file": }"#, status: 400, code: "invalid_json",
                message: "the body is not valid JSON: Invalid value around character 26."),
            Case(
                name: "JSON, not an object", path: trigger, body: "[1, 2]", status: 400, code: "invalid_json",
                message: "the body must be a JSON object"),
            Case(
                name: "unknown field", path: trigger, body: #"{"parms": {}}"#, status: 422, code: "invalid_body",
                message: "unknown field 'parms'; did you mean 'params'?"),
            Case(
                name: "params not an object", path: trigger, body: #"{"params": [1]}"#, status: 422, code: "invalid_body",
                message: "params must be an object"),
            Case(
                name: "param of the wrong JSON type", path: trigger, body: #"{"params": {"usage_file": {"a": 1}}}"#, status: 422,
                code: "invalid_params", message: "params.usage_file must be a string, number or boolean"),
            Case(
                name: "unknown param", path: trigger, body: #"{"params": {"usage_fil": "x.csv"}}"#, status: 422, code: "invalid_params",
                message: "the pipeline has no param 'usage_fil'; did you mean 'usage_file'?"),
            Case(
                name: "param against its pattern", path: trigger, body: #"{"params": {"usage_file": "usage.txt"}}"#, status: 422,
                code: "invalid_params", message: "param 'usage_file': 'usage.txt' does not match its pattern"),
            Case(
                name: "bad logical date", path: trigger, body: #"{"logical_date": "2026-02-30"}"#, status: 422, code: "invalid_body",
                message: "logical_date must be a date as YYYY-MM-DD"),
            Case(
                name: "oversized body", path: trigger, body: oversized, status: 413, code: "body_too_large",
                message: "larger than the limit of 1 MiB"),
            Case(
                name: "not JSON", path: trigger, body: "usage_file=x", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                status: 415, code: "unsupported_media_type", message: "the body must be application/json"),
            Case(
                name: "unknown pipeline", path: "/v1/orgs/acme/pipelines/nope/runs", body: "{}", status: 404, code: "pipeline_not_found",
                message: "org 'acme' has no pipeline 'nope'"),
            Case(
                name: "pipeline id with a path in it", path: "/v1/orgs/acme/pipelines/..%2Fsluice/runs", body: "{}", status: 404,
                code: "pipeline_not_found", message: "has no pipeline"),
            Case(
                name: "a pipeline that does not lint", path: "/v1/orgs/acme/pipelines/broken/runs", body: "{}", status: 422,
                code: "pipeline_invalid", message: "pipeline 'broken' does not lint (1 error); the first: pipelines/broken.yml:3:"),
            Case(
                name: "wrong org", path: "/v1/orgs/other/pipelines/genai_costs_daily/runs", body: "{}", status: 403, code: "forbidden",
                message: "this token belongs to another org"),
            Case(
                name: "bad Idempotency-Key", path: trigger, body: "{}", headers: ["Idempotency-Key": "has space"], status: 400,
                code: "invalid_idempotency_key", message: "Idempotency-Key must be 1 to 255 visible ASCII characters"),
            Case(
                name: "bad limit", method: "GET", path: "/v1/orgs/acme/runs?limit=0", status: 400, code: "invalid_limit",
                message: "limit must be a whole number from 1 to 200"),
            Case(
                name: "bad cursor", method: "GET", path: "/v1/orgs/acme/runs?cursor=bm9wZQ", status: 400, code: "invalid_cursor",
                message: "cursor is not one this API handed out"),
            Case(
                name: "bad pipeline filter", method: "GET", path: "/v1/orgs/acme/runs?pipeline=a-b", status: 400, code: "invalid_pipeline",
                message: "pipeline must be a pipeline id"),
            Case(
                name: "unknown run", method: "GET", path: "/v1/runs/nope", status: 404, code: "run_not_found",
                message: "no run 'nope' in org 'acme'"),
            Case(
                name: "unknown route", method: "GET", path: "/v2/things", status: 404, code: "not_found",
                message: "no such endpoint: GET /v2/things"),
            Case(
                name: "wrong method", method: "DELETE", path: "/v1/runs/r1", status: 405, code: "method_not_allowed",
                message: "/v1/runs/r1 does not take DELETE; it takes GET"),
        ]
        for item in cases {
            var headers = item.headers
            headers["X-Request-Id"] = "case-\(item.name.replacingOccurrences(of: " ", with: "-").replacingOccurrences(of: ",", with: ""))"
            let response = try await live.request(item.method, item.path, token: token, headers: headers, body: item.body.map { Data($0.utf8) })
            #expect(response.status == item.status, "\(item.name): \(response.status) \(response.text.prefix(300))")
            #expect(response.errorCode == item.code, "\(item.name): \(response.text.prefix(300))")
            let message = response.error["message"] as? String ?? ""
            #expect(message.contains(item.message), "\(item.name): \(message)")
            #expect(response.error["request_id"] as? String == headers["X-Request-Id"], "\(item.name)")
            #expect(response.header("X-Request-Id") == headers["X-Request-Id"], "\(item.name)")
            #expect(response.header("Content-Type") == "application/json", "\(item.name)")
            #expect(!message.contains(live.project.path), "\(item.name): a server path leaked: \(message)")
        }
        let allowed = try await live.request("DELETE", "/v1/runs/r1", token: token)
        #expect(allowed.header("Allow") == "GET")
        // None of it started a run.
        #expect(try await live.server.store.runs(pipeline: nil, org: nil, limit: 10).isEmpty)
        try await live.stop()
    }

    @Test func aBodyThatDoesNotArriveInTimeIsAnsweredWith408() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            configuration.bodyReadTimeout = .milliseconds(500)
            // The connection's own deadline far off, so a loaded machine still sees the 408 first.
            configuration.requestReadTimeout = TestTime.never
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        // Ten bytes of the hundred it declares, then nothing: the answer comes at the timeout.
        let script = """
            import socket, time
            started = time.monotonic()
            connection = socket.create_connection(("127.0.0.1", \(live.port)), timeout=\(patience))
            connection.sendall(b"POST /v1/orgs/acme/pipelines/genai_costs_daily/runs HTTP/1.1\\r\\nHost: x\\r\\n"
                               b"Authorization: Bearer \(token)\\r\\nContent-Type: application/json\\r\\n"
                               b"Content-Length: 100\\r\\n\\r\\n{\\"params\\":")
            answer = b""
            while b"\\r\\n\\r\\n" not in answer or not answer.rstrip().endswith(b"}"):
                part = connection.recv(4096)
                if not part:
                    break
                answer += part
            print(round(time.monotonic() - started, 1), answer.decode(errors="replace").splitlines()[0], answer.decode(errors="replace").split("\\r\\n\\r\\n", 1)[-1])
            """
        let output = try await python(script)
        #expect(output.contains("HTTP/1.1 408 Request Timeout"), "\(output)")
        #expect(output.contains(#""code":"body_timeout""#), "\(output)")
        #expect(output.contains("the request body did not arrive within 500ms"), "\(output)")
        let seconds = Double(output.split(separator: " ").first ?? "") ?? 99
        #expect(seconds >= 0.4 && seconds < Double(patience), "answered after \(seconds) s")
        let runs = try await live.get("/v1/orgs/acme/runs", token: token).json["runs"] as? [[String: Any]]
        #expect(runs?.isEmpty == true, "nothing was started")
        try await live.stop()
    }

    @Test func aConnectionWhoseRequestNeverArrivesInFullIsClosedEvenWhenTheAnswerCameFirst() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            // Long enough for the 401 to come first on a busy machine (it waits for a thread
            // that every test shares), so the close below is the deadline's, after the answer.
            configuration.requestReadTimeout = .seconds(15)
            configuration.idleTimeout = .seconds(1)
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        // No token: 401 before the body is read; then the body never comes in full. And a
        // connection that sends nothing at all. Both are closed by the server.
        let script = """
            import select, socket, sys, time
            def until_closed(connection):
                answer = b""
                while True:
                    try:
                        part = connection.recv(4096)
                    except ConnectionResetError:
                        return answer
                    if not part:
                        return answer
                    answer += part
            started = time.monotonic()
            dribbler = socket.create_connection(("127.0.0.1", \(live.port)), timeout=\(patience))
            dribbler.sendall(b"POST /v1/orgs/acme/pipelines/genai_costs_daily/runs HTTP/1.1\\r\\nHost: x\\r\\n"
                             b"Content-Type: application/json\\r\\nContent-Length: 100000\\r\\n\\r\\n{")
            # A byte every 200 ms keeps the connection from ever being idle for the 1 s idle timeout.
            answer = b""
            while time.monotonic() - started < \(patience):
                readable, _, _ = select.select([dribbler], [], [], 0.2)
                if readable:
                    try:
                        part = dribbler.recv(4096)
                    except OSError:  # a reset is a close too
                        break
                    if not part:
                        break
                    answer += part
                try:
                    dribbler.sendall(b" ")
                except OSError:
                    break
            print(round(time.monotonic() - started, 1), (answer.decode(errors="replace").splitlines() or ["nothing"])[0])
            started = time.monotonic()
            silent = socket.create_connection(("127.0.0.1", \(live.port)), timeout=\(patience))
            until_closed(silent)
            print(round(time.monotonic() - started, 1))
            """
        let lines = try await python(script).split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(lines)")
        let dribbled = lines.first?.split(separator: " ", maxSplits: 1).map(String.init) ?? []
        #expect(dribbled.last == "HTTP/1.1 401 Unauthorized", "\(lines)")
        let closedAfter = Double(dribbled.first ?? "") ?? 99
        #expect(
            closedAfter >= 14.8 && closedAfter < Double(patience) - 1, "closed after \(closedAfter) s: the request deadline, though bytes kept coming"
        )
        let idleClosedAfter = Double(lines.last ?? "") ?? 99
        #expect(idleClosedAfter >= 0.8 && idleClosedAfter < Double(patience) - 1, "an idle connection closed after \(idleClosedAfter) s")
        try await live.stop()
    }

    @Test func aBodyLargerThanTheLimitIsRefusedWhenNoLengthIsDeclared() async throws {
        // A chunked body has no Content-Length to refuse it by; it is cut off at the limit.
        let live = try await LiveServer.start(project: try exampleProject()) { $0.maxBodyBytes = 64 * 1024 }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let script = """
            import http.client, json, sys
            connection = http.client.HTTPConnection("127.0.0.1", \(live.port))
            def chunks():
                for _ in range(20):
                    yield b" " * 8192
            connection.putrequest("POST", "/v1/orgs/acme/pipelines/genai_costs_daily/runs")
            connection.putheader("Authorization", "Bearer \(token)")
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            try:
                for chunk in chunks():
                    connection.send(b"%x\\r\\n%s\\r\\n" % (len(chunk), chunk))
                connection.send(b"0\\r\\n\\r\\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            response = connection.getresponse()
            print(response.status, response.read().decode())
            """
        let output = try await python(script)
        #expect(output.hasPrefix("413 "), "\(output)")
        #expect(output.contains(#""code":"body_too_large""#))
        #expect(output.contains("64 KiB"))
        try await live.stop()
    }
}

/// `TestTime.patience` in whole seconds, for the scripts' socket timeouts and loops.
let patience = Int(TestTime.patience.components.seconds)

/// Runs a Python 3 script and returns its standard output (an HTTP client, and HMAC signing,
/// independent of the server's code). The script runs on a thread of its own: one that talks to
/// a live server in this process must not block the few threads the server's handlers run on.
func python(_ script: String, arguments: [String] = []) async throws -> String {
    try await onItsOwnThread { try pythonBlocking(script, arguments: arguments) }
}

private func pythonBlocking(_ script: String, arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    // A script that failed says why in what the test sees.
    let failure = process.terminationStatus == 0 ? "" : String(decoding: errorData, as: UTF8.self)
    return String(decoding: data, as: UTF8.self) + failure
}
