import Foundation
import SluiceTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `sluice tokens` and `sluice serve` as a user runs them: the binary, a temp project, real
/// HTTP on 127.0.0.1, SIGTERM to stop.
struct ServeCommandTests {
    @Test func tokensAreCreatedShownOnceListedAndRevoked() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let created = try await sluice("tokens", "create", "acme", "--name", "ci", in: project)
        #expect(created.status == 0, "\(created.stderr)")
        let token = created.stdout.trimmingCharacters(in: .newlines)
        #expect(token.hasPrefix("slc_") && token.count == 60, "\(token)")
        let id = String(token.dropFirst(4).prefix(12))
        #expect(created.stderr.contains("created api token \(id) for org acme (name ci); it is shown only now"))

        let list = try await sluice("tokens", "list", "acme", in: project)
        #expect(list.status == 0)
        #expect(list.stdout.contains("\(id)  ci    api      "))
        #expect(!list.stdout.contains(token.suffix(43)), "a listing must never show the token")
        // Only the hash is stored: the secret part is in no file under .sluice/ (a WAL, while
        // there is one, included; SQLite folds it into runs.sqlite when the last connection closes).
        let stored = filesHolding(String(token.suffix(43)), in: project)
        #expect(stored.holding.isEmpty, "the token is in \(stored.holding)")
        #expect(stored.searched.contains("runs.sqlite"), "\(stored.searched)")

        #expect(try await sluice("tokens", "list", "other", in: project).stdout == "org other has no tokens\n")
        let wrongOrg = try await sluice("tokens", "revoke", "other", id, in: project)
        #expect(wrongOrg.status == 1)
        #expect(wrongOrg.stderr.contains("org other has no active token '\(id)'"))
        let revoked = try await sluice("tokens", "revoke", "acme", id, in: project)
        #expect(revoked.status == 0)
        #expect(revoked.stdout == "revoked token \(id)\n")
        #expect(try await sluice("tokens", "revoke", "acme", id, in: project).status == 1)
        #expect(try await sluice("tokens", "list", "acme", in: project).stdout.contains(" - ") == false)

        let metrics = try await sluice("tokens", "create", "--metrics", in: project)
        #expect(metrics.status == 0)
        #expect(metrics.stderr.contains("created metrics token"))
        #expect(try await sluice("tokens", "list", "--metrics", in: project).stdout.contains("metrics"))

        #expect(try await sluice("tokens", "create", in: project).status == 2)
        #expect(try await sluice("tokens", "create", "acme", "--metrics", in: project).status == 2)
        let badOrg = try await sluice("tokens", "create", "not-an-org", in: project)
        #expect(badOrg.status == 1)
        #expect(badOrg.stderr.contains("org:"))
    }

    @Test func serveAnswersWithATokenAndStopsOnSIGTERM() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let token = try await sluice("tokens", "create", "acme", in: project).stdout.trimmingCharacters(in: .newlines)

        let server = try await LongRunningCommand.start(["serve", "--port", "0"], in: project)
        defer { server.stop() }
        // The first line says where it listens.
        let text = server.firstLine
        let port = try #require(text.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(text)")
        #expect(text.hasPrefix("sluice serve: listening on http://127.0.0.1:"))

        func call(_ method: String, _ path: String, token: String? = nil, body: String? = nil) async throws -> (Int, [String: Any]) {
            try await httpCall(port: port, method, path, token: token, body: body)
        }
        #expect(try await call("GET", "/healthz").0 == 200)
        #expect(try await call("GET", "/v1/orgs/acme/runs").0 == 401)
        let (status, run) = try await call("POST", "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, body: "{}")
        #expect(status == 202)
        let id = try #require(run["id"] as? String)
        var state = ""
        try await eventually(every: .milliseconds(100)) {
            state = try await call("GET", "/v1/runs/\(id)", token: token).1["state"] as? String ?? ""
            return ["succeeded", "failed", "cancelled"].contains(state)
        }
        #expect(state == "succeeded")

        let (exitStatus, rest) = try await server.terminate()
        #expect(exitStatus == 0)
        #expect(rest.contains("sluice serve: stopped"))
        // The run is in the history the CLI reads.
        let list = try await sluice("runs", "list", "--org", "acme", in: project)
        #expect(list.stdout.contains(id))
    }

    @Test func serveWithTheSchedulerCatchesUpScheduledRunsAndStopsOnSIGTERM() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let token = try await sluice("tokens", "create", "acme", in: project).stdout.trimmingCharacters(in: .newlines)
        let server = try await LongRunningCommand.start(
            [
                "serve", "--port", "0", "--scheduler", "--org", "acme", "--poll", "100ms",
                "--shutdown-grace", "30s",
            ], in: project)
        defer { server.stop() }
        let port = try #require(
            server.firstLine.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
            "\(server.firstLine)")
        // genai_costs_daily: 02:30 UTC daily with catchup 3d, max_active_runs 1: the last three
        // fire times are run, one after another, by the process that answers the API.
        var runs: [[String: Any]] = []
        try await eventually(every: .milliseconds(100)) {
            let (_, page) = try await httpCall(port: port, "GET", "/v1/orgs/acme/runs?pipeline=genai_costs_daily", token: token)
            runs = page["runs"] as? [[String: Any]] ?? []
            return runs.count == 3 && runs.allSatisfy { $0["state"] as? String == "succeeded" }
        }
        #expect(runs.count == 3, "\(runs)")
        #expect(runs.allSatisfy { $0["trigger"] as? String == "schedule" && $0["state"] as? String == "succeeded" }, "\(runs)")
        #expect(Set(runs.compactMap { $0["logical_date"] as? String }).count == 3)
        let metricsToken = try await sluice("tokens", "create", "--metrics", in: project).stdout.trimmingCharacters(in: .newlines)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        request.setValue("Bearer \(metricsToken)", forHTTPHeaderField: "Authorization")
        let metrics = String(decoding: try await URLSession.shared.data(for: request).0, as: UTF8.self)
        // The series exists from the start at 0; the example's other scheduled pipelines add to it.
        let created = metrics.split(separator: "\n").first { $0.hasPrefix(#"sluice_runs_created_total{trigger="schedule"} "#) }
            .flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect((created ?? 0) >= 3, "\(metrics)")

        let (exitStatus, rest) = try await server.terminate()
        #expect(exitStatus == 0)
        #expect(rest.contains("sluice serve: stopped"))
    }

    /// On each backend: the hook's secret is a credential in the project's store, sealed, and
    /// the deliveries `sluice serve` accepts are in its webhook audit.
    @Test(arguments: Backend.all)
    func hooksAreCreatedListedRotatedAndAudited(_ backend: Backend) async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try await backend.withProjectDatabase(in: project) { database in try await hooksAreCreatedListedRotatedAndAudited(in: project, on: database) }
    }

    func hooksAreCreatedListedRotatedAndAudited(in project: URL, on database: PostgresTestDatabase?) async throws {
        // Every output of the commands, to check that no secret is in one but where it is given.
        var outputs: [(command: String, text: String)] = []
        func sluice(_ arguments: String..., in directory: URL) async throws -> CommandResult {
            let result = try await run(sluiceBinary, arguments, in: directory)
            outputs.append((arguments.prefix(2).joined(separator: " "), result.stdout + result.stderr))
            return result
        }
        #expect(try await sluice("keys", "init", in: project).status == 0)
        let created = try await sluice(
            "hooks", "create", "acme", "genai_costs_daily", "--param", "usage_file=data.file", "--logical-date", "data.day",
            in: project)
        #expect(created.status == 0, "\(created.stderr)")
        let secret = created.stdout.trimmingCharacters(in: .newlines)
        #expect(secret.hasPrefix("whsec_") && Data(base64Encoded: String(secret.dropFirst(6)))?.count == 24, "\(secret)")
        #expect(created.stderr.contains("deliveries go to POST /v1/hooks/acme/genai_costs_daily"))
        let list = try await sluice("hooks", "list", "acme", in: project)
        #expect(
            list.stdout == "POST /v1/hooks/acme/genai_costs_daily  secret 1  logical_date=data.day param_usage_file=data.file\n", "\(list.stdout)")
        // The secret is sealed like any credential: in clear in no file under .sluice/, nor in
        // any table of the server's stores.
        let stored = filesHolding(secret, in: project)
        #expect(stored.holding.isEmpty, "the secret is in \(stored.holding)")
        #expect(stored.searched.contains("keyring.json"), "\(stored.searched)")
        #expect(stored.searched.contains("runs.sqlite") == (database == nil), "\(stored.searched)")
        if let database {
            #expect(try database.tablesHolding(secret).isEmpty, "the secret is on the server in clear")
            #expect(
                try database.sql("SELECT org || ' ' || name || ' ' || provider || ' ' || generation FROM sluice.credential")
                    == "acme webhooks/genai_costs_daily generic 1")
        }
        #expect(try await sluice("hooks", "create", "acme", "genai_costs_daily", in: project).status == 1)
        #expect(try await sluice("hooks", "audit", "acme", in: project).stdout == "no deliveries\n")

        let rotated = try await sluice("hooks", "rotate", "acme", "genai_costs_daily", "--grace", "1h", in: project)
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let newSecret = rotated.stdout.trimmingCharacters(in: .newlines)
        #expect(newSecret.hasPrefix("whsec_") && newSecret != secret)
        #expect(try await sluice("hooks", "list", "acme", in: project).stdout.contains("secret 2, previous secret until "))

        // A delivery signed with the old secret (still in its grace period) is accepted by `sluice serve`.
        let server = try await LongRunningCommand.start(["serve", "--port", "0"], in: project)
        defer { server.stop() }
        let port = try #require(
            server.firstLine.split(separator: ":").last
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let script = """
            import base64, hashlib, hmac, http.client, json, sys, time
            secret, port = sys.argv[1], int(sys.argv[2])
            body = json.dumps({"data": {"file": "examples/data/genai_usage.csv", "day": "2026-03-05"}})
            timestamp = str(int(time.time()))
            key = base64.b64decode(secret[len("whsec_"):])
            signature = base64.b64encode(hmac.new(key, f"msg_cli.{timestamp}.{body}".encode(), hashlib.sha256).digest()).decode()
            connection = http.client.HTTPConnection("127.0.0.1", port)
            connection.request("POST", "/v1/hooks/acme/genai_costs_daily", body, {"webhook-id": "msg_cli", "webhook-timestamp": timestamp,
                               "webhook-signature": "v1," + signature, "Content-Type": "application/json"})
            response = connection.getresponse()
            print(response.status, response.read().decode())
            """
        let text = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, secret, String(port)], in: project).stdout
        #expect(text.hasPrefix("202 "), "\(text)")
        let (_, served) = try await server.terminate()
        outputs += [("serve", served), ("delivery", text)]
        let audit = try await sluice("hooks", "audit", "acme", in: project)
        #expect(audit.stdout.contains("  genai_costs_daily  202  accepted  msg_cli  req_"), "\(audit.stdout)")
        if let database {
            #expect(
                try database.sql("SELECT org || ' ' || pipeline || ' ' || outcome || ' ' || status || ' ' || message_id FROM sluice.webhook_audit")
                    == "acme genai_costs_daily accepted 202 msg_cli")
            #expect(try database.sql("SELECT generation FROM sluice.credential WHERE name = 'webhooks/genai_costs_daily'") == "2")
            #expect(try database.tablesHolding(newSecret).isEmpty, "the new secret is on the server in clear")
        }
        // A secret is printed once, by the command that made it, and nowhere else.
        for (command, text) in outputs {
            let expected = ["hooks create": [secret], "hooks rotate": [newSecret]][command] ?? []
            for shown in [secret, newSecret] where !expected.contains(shown) {
                #expect(!text.contains(String(shown.dropFirst(6))), "\(command) printed a secret")
            }
        }
    }
}

extension ServeCommandTests {
    /// `--tls-certificate` and `--tls-key`: HTTPS for a client that checks the certificate,
    /// a warning for a key others can read, and files that can't work refused before it listens.
    @Test func serveAnswersHTTPSWithTheCertificateGiven() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let certificate = try await TestCertificate.make(in: project)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: certificate.key.path)
        let errors = project.appendingPathComponent("serve.err")
        let server = try await LongRunningCommand.start(
            [
                "serve", "--port", "0", "--tls-certificate", certificate.certificate.path,
                "--tls-key", certificate.key.path,
            ], in: project, errors: errors)
        defer { server.stop() }
        #expect(server.firstLine.hasPrefix("sluice serve: listening on https://127.0.0.1:"), "\(server.firstLine)")
        let port = try #require(server.firstLine.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let script = """
            import http.client, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            connection = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=context, timeout=60)
            connection.request("GET", "/healthz")
            print(connection.getresponse().status)
            """
        let answer = try await run(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, String(port), certificate.certificate.path], in: project)
        #expect(answer.stdout == "200\n", "\(answer.stdout)\(answer.stderr)")
        #expect(try await server.terminate().status == 0)
        let warnings = try String(contentsOf: errors, encoding: .utf8)
        #expect(warnings.contains("the TLS private key \(certificate.key.path) is open to group or others (mode 640); chmod 600 it"), "\(warnings)")

        // A 0600 key reached through a symlink (certbot's live/, Kubernetes secrets) gets no
        // warning: the mode is the file's, not the link's 0777.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: certificate.key.path)
        let link = project.appendingPathComponent("live-key.pem")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: certificate.key)
        let linkErrors = project.appendingPathComponent("serve-link.err")
        let linked = try await LongRunningCommand.start(
            [
                "serve", "--port", "0", "--tls-certificate", certificate.certificate.path,
                "--tls-key", link.path,
            ], in: project, errors: linkErrors)
        defer { linked.stop() }
        #expect(linked.firstLine.hasPrefix("sluice serve: listening on https://127.0.0.1:"), "\(linked.firstLine)")
        #expect(try await linked.terminate().status == 0)
        let linkWarnings = try String(contentsOf: linkErrors, encoding: .utf8)
        #expect(!linkWarnings.contains("open to group or others"), "\(linkWarnings)")

        // --port 0: should validation ever let these through, they must not take 8080.
        let alone = try await sluice("serve", "--port", "0", "--tls-certificate", certificate.certificate.path, in: project)
        #expect(alone.status == 2)
        #expect(alone.stderr.contains("--tls-certificate needs --tls-key, the certificate's private key"), "\(alone.stderr)")
        let swapped = try await sluice(
            "serve", "--port", "0", "--tls-certificate", certificate.key.path, "--tls-key", certificate.key.path, in: project)
        #expect(swapped.status == 2)
        #expect(
            swapped.stderr
                == "sluice serve: \(certificate.key.path): holds no readable PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks, the server's own first)\n"
        )
    }
}

/// One HTTP request to a server on 127.0.0.1: the status and the JSON body (empty if not JSON).
func httpCall(port: Int, _ method: String, _ path: String, token: String? = nil, body: String? = nil) async throws -> (Int, [String: Any]) {
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

/// `TestTime.patience` in whole seconds, for scripts' socket timeouts and loops.
private let patience = Int(TestTime.patience.components.seconds)

/// Connections a client opens and leaves can't keep the server from answering others.
struct ServeConnectionTests {
    @Test func idleConnectionsFromOneClientDoNotStarveHealthzUnderALowOpenFileLimit() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        // 256 open files (macOS's default): 250 connections would use them up, and a process
        // out of descriptors accepts no one until idle connections time out (60 s).
        let server = try await LongRunningCommand.start(["serve", "--port", "0"], in: project, openFileLimit: 256)
        defer { server.stop() }
        let port = try #require(
            server.firstLine.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
            "\(server.firstLine)")
        let script = """
            import http.client, select, socket, time
            held = []
            for _ in range(250):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.2", 0))
                sock.connect(("127.0.0.1", \(port)))
                held.append(sock)
            connection = http.client.HTTPConnection("127.0.0.1", \(port), timeout=\(patience))
            connection.request("GET", "/healthz")
            print(connection.getresponse().status)
            def closed_by_server(sock):
                readable, _, _ = select.select([sock], [], [], 0)
                if not readable:
                    return False
                try:
                    return sock.recv(1) == b""
                except OSError:
                    return True
            # The client's 64 (the default per client) are held; the rest were closed as they
            # were accepted, not when the idle timeout came for every connection.
            deadline = time.monotonic() + \(patience)
            closed = 0
            while time.monotonic() < deadline:
                closed = sum(1 for sock in held if closed_by_server(sock))
                if closed >= 186:
                    break
                time.sleep(0.05)
            print(closed, len(held) - closed)
            """
        let lines = try await onItsOwnThread { () throws -> [String] in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        #expect(lines == ["200", "186 64"], "\(lines)")
        let (status, _) = try await server.terminate()
        #expect(status == 0)
    }
}
