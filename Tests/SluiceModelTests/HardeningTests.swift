import Foundation
import SluiceEngine
import SluiceProviders
import SluiceTestSupport
import Testing

@testable import SluiceModel

/// Inputs found by review that once crashed, hung, leaked or misplaced a diagnostic.
struct HardeningTests {
    func lint(_ text: String, schemas: [String: String] = [:], procedures: [String: String] = [:]) throws -> [String] {
        let project = try TemporaryProject()
        defer { project.remove() }
        for (name, content) in schemas { try project.write("schemas/\(name)", content) }
        for (name, content) in procedures { try project.write("procedures/\(name)", content) }
        try project.write("pipelines/hard.yml", text)
        let started = ContinuousClock.now
        let report = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).lint(paths: ["pipelines/hard.yml"])
        #expect(ContinuousClock.now - started < TestTime.patience, "lint must not stall")
        return report.diagnostics.map(\.description)
    }

    func pipeline(url: String) -> String {
        "pipeline: hard\ndefaults: { timeout: 1m }\nsteps:\n  - id: a\n    uses: notify\n    with: { url: \"\(url)\" }\n"
    }

    @Test(arguments: [
        String(repeating: "(", count: 3_000) + "1" + String(repeating: ")", count: 3_000),
        String(repeating: "!", count: 30_000) + "1",
        String(repeating: "1||", count: 20_000) + "1",
        String(repeating: "lower(", count: 500) + "'x'" + String(repeating: ")", count: 500),
    ])
    func deepExpressionsAreRefusedNotCrashed(_ expression: String) throws {
        let diagnostics = try lint(pipeline(url: "${{ \(expression) }}"))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.hasSuffix("[expression-syntax]") == true)
    }

    @Test func longAliasChainsAreRefused() throws {
        var text = "pipeline: hard\nx:\n  - &a0 [1]\n"
        for index in 1...2_000 { text += "  - &a\(index) [*a\(index - 1)]\n" }
        let diagnostics = try lint(text)
        #expect(diagnostics == ["pipelines/hard.yml:1004:13: error: more than 1000 aliases; pipeline files may not use that many [input-limit]"])
    }

    @Test func aRecursiveQueryInAProcedureCannotHangLint() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            steps:
              - { id: spin, uses: sql, with: { procedure: procedures/spin.sql } }
            """,
            procedures: ["spin.sql": "CREATE TEMP TABLE spin AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c;\n"])
        #expect(
            diagnostics.contains(
                "procedures/spin.sql:1:1: error: this statement changes the schema and did not finish within lint's step limit (a recursive query?); lint does not run it [invalid-procedure]"
            ))
    }

    @Test func aHugeUnknownNameGetsNoSlowSuggestion() throws {
        let diagnostics = try lint("pipeline: hard\nschedule: { cron: \"@daily\", timezone: \(String(repeating: "x", count: 100_000)) }\nsteps: []\n")
        #expect(
            diagnostics.first
                == "pipelines/hard.yml:2:39: error: pipeline: 'schedule.timezone': '\(String(repeating: "x", count: 60))…' is not an IANA timezone (e.g. UTC, Europe/Berlin, America/New_York) [invalid-timezone]"
        )
    }

    @Test func aCycleBehindADeadEndIsFound() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            steps:
              - { id: c, uses: validate_data, needs: [b], with: { table: t, checks: [{ type: row_count, min: 1 }] } }
              - { id: a, uses: validate_data, needs: [b], with: { table: t, checks: [{ type: row_count, min: 1 }] } }
              - { id: b, uses: validate_data, needs: [a], with: { table: t, checks: [{ type: row_count, min: 1 }] } }
            """, schemas: ["t.json": #"[{"name": "x", "type": "STRING"}]"#])
        #expect(diagnostics == ["pipelines/hard.yml:5:11: error: steps depend on each other in a circle: a → b (needs) → a (needs) [cycle]"])
    }

    @Test func positionsInsideValuesAreExactOrFallBackToTheValue() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            steps:
              - id: a
                uses: notify
                with:
                  url: "${{ env.HOOK }}"
                  message: "\\u00e9\\u00e9 ${{ params.nope1 }}"
                  link: 'it''s ${{ params.nope2 }}'
                  format: json
              - id: b
                uses: notify
                with:
                  url: "${{ env.HOOK }}"
                  message: plain ${{ params.nope3 }}
                  link: >-
                    folded
                    ${{ params.nope4 }}
            """)
        #expect(
            diagnostics == [
                "pipelines/hard.yml:8:16: error: step 'a' (notify): 'message': unknown param 'nope1' [unknown-reference]",
                "pipelines/hard.yml:9:13: error: step 'a' (notify): 'link': unknown param 'nope2' [unknown-reference]",
                "pipelines/hard.yml:15:26: error: step 'b' (notify): 'message': unknown param 'nope3' [unknown-reference]",
                "pipelines/hard.yml:16:13: error: step 'b' (notify): 'link': unknown param 'nope4' [unknown-reference]",
            ])
    }

    @Test(arguments: ["\u{2028}", "\u{2029}", "\u{85}"])
    func unicodeLineBreaksAreRefused(_ separator: String) throws {
        let diagnostics = try lint("pipeline: hard\ndescription: \"a\(separator)b\"\nsteps: []\n")
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.hasPrefix("pipelines/hard.yml:2:16: error: U+") == true)
    }

    @Test func credentialsAreNeverEchoedInMessages() throws {
        let secret = "postgres://admin:hunter2secret@db.example.com/prod"
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            schedule: { cron: "@daily", max_active_runs: "\(secret)" }
            steps:
              - id: a
                uses: notify
                with: { url: "${{ env.HOOK }}", format: "sk-proj-4fGhT9xQ2mLp8RzW1vNc7YbK3eJd" }
              - id: b
                uses: no_such_processor
                with: { dsn: "\(secret)" }
            """)
        #expect(!diagnostics.joined().contains("hunter2"))
        #expect(!diagnostics.joined().contains("4fGhT9xQ"))
        #expect(diagnostics.filter { $0.hasSuffix("[plaintext-credential]") }.count == 3)
    }

    @Test func controlCharactersInKeysAreEscaped() throws {
        let diagnostics = try lint("pipeline: hard\n\"x\\ny\\e[2J\": 1\nsteps: []\n")
        #expect(diagnostics.contains { $0.contains("has no key 'x\\ny\\u{1b}[2J'") })
        #expect(!diagnostics.joined().contains("\n"))
    }

    @Test func joinKeysMustBeInBothTables() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            steps:
              - id: roll
                uses: aggregate
                with:
                  from: events
                  join: { table: rates, on: [amount] }
                  group_by: [org]
                  measures: { n: count(*) }
                  into: out
            """,
            schemas: [
                "events.json": #"[{"name": "org", "type": "STRING"}, {"name": "amount", "type": "FLOAT64"}]"#,
                "rates.json": #"[{"name": "org", "type": "STRING"}, {"name": "rate", "type": "FLOAT64"}]"#,
            ])
        #expect(
            diagnostics == [
                "pipelines/hard.yml:8:34: error: step 'roll': 'join.on': join column 'amount' is not in table 'rates'; a join key must be in both tables [unknown-column]"
            ])
    }

    @Test func aCredentialFieldTakesOnlyASecret() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            params: { key: { type: string, default: x } }
            steps:
              - { id: a, uses: validate_openai, with: { api_key: "${{ params.key }}" } }
              - { id: b, uses: validate_openai, with: { api_key: "${{ env.OPENAI_API_KEY }}" } }
            """)
        #expect(diagnostics.count == 2)
        #expect(
            diagnostics.allSatisfy {
                $0.hasSuffix("must be exactly ${{ secrets.<name> }}, read from the vault, not params, env or text [secret-in-plain-field]")
            })
    }

    @Test func aBrokenStepDoesNotMakeItsDependentsLookWrong() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            defaults: { timeout: 1m }
            steps:
              - { id: a, with: { x: 1 } }
              - { id: b, uses: notify, needs: [a], with: { url: "${{ env.HOOK }}", message: "${{ steps.a.outputs.rows }}" } }
            """)
        #expect(diagnostics == ["pipelines/hard.yml:4:5: error: step 'a' is missing required 'uses' [missing-field]"])
    }

    @Test func onFailureHandlersNeedTimeoutsToo() throws {
        let diagnostics = try lint(
            """
            pipeline: hard
            steps:
              - { id: a, uses: notify, timeout: 1m, with: { url: "${{ env.HOOK }}" } }
            on_failure:
              - uses: notify
                with: { url: "${{ env.HOOK }}" }
            """)
        #expect(
            diagnostics == [
                "pipelines/hard.yml:5:5: warning: on_failure handler 'on_failure_1' has no timeout; set `timeout:` on it or in `defaults`, or a hung source can hold the run forever [missing-timeout]"
            ])
    }
}
