import Foundation
import SluiceTestSupport
import Testing

/// What the CLI prints and logs, whatever callers put into runs or the environment.
struct OutputHygieneTests {
    /// Clears the screen, then sets the terminal's title (OSC 0), then rings the bell.
    static let hostileParam = "\u{1B}[2J\u{1B}]0;pwned\u{07}usage.csv"

    @Test func runOutputAndRunHistoryEscapeControlCharactersFromParams() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let ran = try await sluice("run", "genai_costs_daily", "--param", "usage_file=\(Self.hostileParam)", in: project)
        #expect(ran.status == 1, "no such file: the run fails, its param stored as given")
        let runID = try #require(ran.stdout.split(separator: " ").dropFirst().first.map { String($0.dropLast()) }, "\(ran.stdout)")
        let show = try await sluice("runs", "show", runID, in: project)
        let list = try await sluice("runs", "list", in: project)
        #expect(show.status == 0)
        #expect(show.stdout.contains(#"usage_file=\u{1b}[2J\u{1b}]0;pwned\u{7}usage.csv"#), "\(show.stdout)")
        for (command, output) in [("run", ran), ("runs show", show), ("runs list", list)] {
            #expect(!(output.stdout + output.stderr).utf8.contains(0x1B), "\(command) printed a raw ESC")
            #expect(!(output.stdout + output.stderr).utf8.contains(0x07), "\(command) printed a raw BEL")
        }
    }

    @Test func serveAtTraceLogsNoKeyMaterial() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let passphrase = "Plover-Quartz-Nimbus-88"
        let salt = "Qz-salt-Wv9Kp2Lm-Xr7Tn4Hd"
        let log = project.appendingPathComponent("serve.log")
        let server = try await LongRunningCommand.start(
            ["serve", "--port", "0"], in: project, errors: log,
            environment: [
                "SLUICE_LOG_LEVEL": "trace", "SLUICE_KEY_PASSPHRASE": passphrase, "SLUICE_KEY_SALT": salt,
            ])
        defer { server.stop() }
        let port = try #require(
            server.firstLine.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
            "\(server.firstLine)")
        let token = try await sluice("tokens", "create", "acme", in: project).stdout.trimmingCharacters(in: .newlines)
        #expect(try await httpCall(port: port, "GET", "/healthz").0 == 200)
        let (status, run) = try await httpCall(port: port, "POST", "/v1/orgs/acme/pipelines/genai_costs_daily/runs", token: token, body: "{}")
        #expect(status == 202)
        let id = try #require(run["id"] as? String)
        try await eventually(every: .milliseconds(100)) {
            ["succeeded", "failed"].contains(try await httpCall(port: port, "GET", "/v1/runs/\(id)", token: token).1["state"] as? String ?? "")
        }
        let (exitStatus, rest) = try await server.terminate()
        #expect(exitStatus == 0)
        let output = server.firstLine + rest + String(decoding: try Data(contentsOf: log), as: UTF8.self)
        // The level took: start-up and shutdown were logged at debug and trace.
        #expect(output.contains("debug") && output.contains("trace"), "\(output.prefix(2000))")
        for secret in [passphrase, salt] {
            let characters = Array(secret)
            // Counted, never shown: a failure must not print the pieces it found.
            let leaked = (0...(characters.count - 8)).count { output.contains(String(characters[$0..<($0 + 8)])) }
            #expect(leaked == 0, "8-character pieces of a key variable are in the output")
        }
    }
}
