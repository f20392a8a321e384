import Foundation
import SluiceEngine
import SluiceProviders
import Testing

@testable import SluiceModel

struct YAMLLoaderTests {
    @Test func keysAndValuesKeepTheirPositions() throws {
        let root = try yaml("pipeline: p\nsteps:\n  - id: load\n    with: { table: \"t\" }\n")
        let step = try #require(root["steps"]?.sequence?.first)
        #expect(step.location == SourceLocation(file: "test.yml", line: 3, column: 5))
        #expect(step["id"]?.location == SourceLocation(file: "test.yml", line: 3, column: 9))
        #expect(step["with"]?["table"]?.location == SourceLocation(file: "test.yml", line: 4, column: 20))
        #expect(step["with"]?["table"]?.isQuoted == true)
    }

    @Test func plainScalarsResolveByYAML12() throws {
        let root = try yaml("a: 12\nb: \"12\"\nc: yes\nd: true\ne: ~\nf: 0x1F\ng: 1.5e3\n")
        #expect(root["a"]?.int == 12)
        #expect(root["b"]?.int == nil)
        #expect(root["c"]?.bool == nil)
        #expect(root["d"]?.bool == true)
        #expect(root["e"]?.isNull == true)
        #expect(root["f"]?.int == 31)
        #expect(root["g"]?.double == 1500)
    }

    @Test func mergeKeysFillOnlyWhatTheMappingLacks() throws {
        let root = try yaml("base: &base { timeout: 5m, retry: { attempts: 2 } }\nstep:\n  <<: *base\n  timeout: 1m\n")
        let step = try #require(root["step"])
        #expect(step["timeout"]?.scalarText == "1m")
        #expect(step["retry"]?["attempts"]?.int == 2)
        #expect(step.mapping?.count == 2)
    }

    @Test func aBlockScalarDoesNotCountTowardsNesting() throws {
        var text = "description: |\n"
        for level in 0..<300 { text += "  " + String(repeating: " ", count: level) + "[{ line \(level)\n" }
        let root = try yaml(text)
        #expect(root["description"]?.scalarText?.hasPrefix("[{ line 0") == true)
    }
}

struct PipelineLoaderTests {
    @Test func readsEveryPartOfTheFormat() throws {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            description: d
            schedule: { cron: "0 5 * * *", timezone: Europe/Paris, catchup: 3d, max_active_runs: 2 }
            params:
              day: { type: date, default: "2026-01-01", description: the day }
            defaults: { timeout: 2m, retry: { attempts: 4, backoff: fixed, initial_delay: 500ms, max_delay: 10s, jitter: false }, max_parallel: 3 }
            secrets: { ttl: 20m }
            steps:
              - id: load
                uses: ingest
                description: loads
                timeout: 1h
                with: { source: { format: jsonl, path: x.jsonl }, table: t, schema: schemas/t.json }
              - id: merge
                uses: merge_dedupe
                needs: load
                with: { from: t, into: u, key: [k], strategy: first_wins }
            on_failure:
              - uses: notify
                with: { url: "${{ env.HOOK }}" }
            """)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let definition = try #require(result.definition)
        #expect(definition.id?.value == "test_pipeline")
        #expect(definition.schedule?.timezone == "Europe/Paris")
        #expect(definition.schedule?.catchup == .seconds(3 * 86_400))
        #expect(definition.schedule?.maxActiveRuns == 2)
        #expect(definition.params.first?.type == .date)
        #expect(definition.defaults.timeout == .seconds(120))
        #expect(
            definition.defaults.retry
                == RetryPolicy(attempts: 4, backoff: .fixed, initialDelay: .milliseconds(500), maxDelay: .seconds(10), jitter: false))
        #expect(definition.defaults.maxParallel == 3)
        #expect(definition.secretsTTL == .seconds(1_200))
        #expect(definition.steps.map(\.id.value) == ["load", "merge"])
        #expect(definition.steps[0].timeout == .seconds(3_600))
        #expect(definition.steps[0].io.writes.map(\.value) == ["t"])
        #expect(definition.steps[0].io.schemaFiles.map(\.value) == ["schemas/t.json"])
        #expect(definition.steps[1].needs.map(\.value) == ["load"])
        #expect(definition.steps[1].io.reads.map(\.value) == ["t"])
        #expect(definition.steps[1].io.columnUses.map(\.column.value) == ["k"])
        #expect(definition.onFailure.map(\.id.value) == ["on_failure_1"])
    }

    @Test func secretsAndOutputsBecomeReferences() throws {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 1m }
            steps:
              - id: key
                uses: kms_decrypt
                with: { credential: c, as: api }
              - id: check
                uses: validate_openai
                with: { api_key: "${{ secrets.api }}" }
              - id: tell
                uses: notify
                with: { url: "${{ env.HOOK }}", message: "${{ steps.check.outputs.status }}" }
            """)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let steps = try #require(result.definition?.steps)
        #expect(steps[0].io.definesSecrets.map(\.value) == ["api"])
        #expect(steps[1].io.secretReferences.map(\.value) == ["api"])
        #expect(steps[2].io.stepReferences.map(\.value) == ["check"])
    }
}

struct PipelinePlanTests {
    func plan(_ text: String) throws -> Result<PipelinePlan, PipelinePlan.CycleError> {
        let result = loadPipeline(text)
        let definition = try #require(result.definition)
        return PipelinePlan.build(definition)
    }

    @Test func tablesSecretsAndOutputsAddEdgesAndLayers() throws {
        let built = try plan(
            """
            pipeline: test_pipeline
            steps:
              - id: report
                uses: validate_data
                with: { table: daily, checks: [{ type: row_count, min: 1 }] }
              - id: daily
                uses: aggregate
                with: { from: usage, group_by: [d], measures: { n: "count(*)" }, into: daily }
              - id: merge
                uses: merge_dedupe
                with: { from: raw, into: usage, key: [id], latest_by: ts }
              - id: key
                uses: kms_decrypt
                with: { credential: c, as: api }
              - id: load
                uses: ingest
                with: { source: { format: http, url: "https://x", headers: { Authorization: "Bearer ${{ secrets.api }}" } }, table: raw, schema: schemas/raw.json }
              - id: tell
                uses: notify
                with: { url: "${{ env.HOOK }}", message: "${{ steps.load.outputs.rows_read }}" }
            """
        ).get()
        #expect(built.layers == [["key"], ["load"], ["merge", "tell"], ["daily"], ["report"]])
        #expect(built.order == ["key", "load", "merge", "tell", "daily", "report"])
        let reasons = Dictionary(uniqueKeysWithValues: built.edges.map { ("\($0.from)>\($0.to)", $0.reason) })
        #expect(reasons["key>load"] == .secret("api"))
        #expect(reasons["load>merge"] == .table("raw"))
        #expect(reasons["load>tell"] == .output)
        #expect(reasons["merge>daily"] == .table("usage"))
        #expect(reasons["daily>report"] == .table("daily"))
        #expect(built.edges.count == 5)
    }

    @Test func aCycleIsFoundAndPrintedInOrder() throws {
        let built = try plan(
            """
            pipeline: test_pipeline
            steps:
              - { id: a, uses: sql, needs: [c], with: { procedure: p.sql } }
              - { id: b, uses: sql, needs: [a], with: { procedure: p.sql } }
              - { id: c, uses: sql, needs: [b], with: { procedure: p.sql } }
              - { id: free, uses: sql, with: { procedure: p.sql } }
            """)
        guard case .failure(let error) = built else {
            Issue.record("no cycle found")
            return
        }
        #expect(error.cycles.map(\.steps) == [["a", "b", "c", "a"]])
    }

    @Test func aThousandStepsPlanQuickly() throws {
        var text = "pipeline: test_pipeline\nsteps:\n"
        for layer in 0..<10 {
            for index in 0..<100 {
                let needs = layer == 0 ? "" : ", needs: [" + (0..<100).map { "s\(layer - 1)_\($0)" }.joined(separator: ", ") + "]"
                text += "  - { id: s\(layer)_\(index), uses: sql\(needs), with: { procedure: p.sql } }\n"
            }
        }
        let built = try plan(text).get()
        #expect(built.layers.count == 10)
        #expect(built.layers.allSatisfy { $0.count == 100 })
        #expect(built.edges.count == 9 * 100 * 100)
    }
}

struct SchemaTests {
    @Test func bigQueryListAndObjectFormsBothLoad() throws {
        let project = try TemporaryProject()
        defer { project.remove() }
        try project.write(
            "schemas/plain.json",
            #"[{"name": "id", "type": "INTEGER", "mode": "REQUIRED"}, {"name": "tags", "type": "STRING", "mode": "REPEATED"}, {"name": "ok", "type": "BOOLEAN"}]"#
        )
        try project.write(
            "schemas/nested/rich.json",
            #"{"table": "costs", "description": "d", "primary_key": ["day"], "partition_by": "day", "fields": [{"name": "day", "type": "DATE"}, {"name": "cost", "type": "BIGNUMERIC"}]}"#
        )
        let catalog = SchemaCatalog(projectRoot: project.root)
        #expect(catalog.diagnostics.isEmpty, "\(catalog.diagnostics)")
        let plain = try #require(catalog["plain"])
        #expect(plain.columns.map(\.type) == [.int64, .json, .bool])
        #expect(plain.columns.map(\.mode) == [.required, .repeated, .nullable])
        let rich = try #require(catalog["costs"])
        #expect(rich.primaryKey == ["day"])
        #expect(rich.partitionBy == "day")
        #expect(rich.columns.map(\.type) == [.date, .bigNumeric])
        #expect(catalog.byPath["schemas/nested/rich.json"]?.table == "costs")
    }

    @Test func identicalDuplicatesAgreeAndDifferentOnesConflict() throws {
        let project = try TemporaryProject()
        defer { project.remove() }
        try project.write("schemas/a/t.json", #"[{"name": "x", "type": "STRING"}]"#)
        try project.write("schemas/b/t.json", #"[{"name": "x", "type": "STRING"}]"#)
        #expect(SchemaCatalog(projectRoot: project.root).diagnostics.isEmpty)
        try project.write("schemas/c/t.json", #"[{"name": "x", "type": "STRING"}, {"name": "y", "type": "STRING"}]"#)
        let diagnostics = SchemaCatalog(projectRoot: project.root).diagnostics
        #expect(
            diagnostics.map(\.description) == [
                "schemas/c/t.json:1:1: error: table 't' is also described by schemas/a/t.json, differently: column 'y' is only in schemas/c/t.json [conflicting-schema]"
            ])
    }
}

struct ProcedureCheckerTests {
    func catalog() throws -> (SchemaCatalog, TemporaryProject) {
        let project = try TemporaryProject()
        try project.write("schemas/usage.json", #"[{"name": "day", "type": "DATE"}, {"name": "cost", "type": "FLOAT64"}]"#)
        try project.write("schemas/daily.json", #"[{"name": "day", "type": "DATE"}, {"name": "total", "type": "FLOAT64"}]"#)
        return (SchemaCatalog(projectRoot: project.root), project)
    }

    @Test func readsWritesAndParametersComeFromTheAuthorizer() throws {
        let (schemas, project) = try catalog()
        defer { project.remove() }
        try project.write(
            "procedures/roll.sql",
            """
            CREATE TEMP TABLE scratch AS SELECT day, cost FROM usage WHERE day = :day;
            DELETE FROM daily WHERE day = :day;
            INSERT INTO daily (day, total) SELECT day, sum(cost) FROM scratch GROUP BY day;
            """)
        let info = ProcedureChecker(schemas: schemas).check(
            fileAt: project.root.appendingPathComponent("procedures/roll.sql"), path: "procedures/roll.sql")
        #expect(info.diagnostics.isEmpty, "\(info.diagnostics)")
        #expect(info.reads == ["usage", "daily"])
        #expect(info.writes == ["daily"])
        #expect(info.parameters == ["day"])
    }

    @Test func anUnknownColumnIsReportedAtItsLineAndColumn() throws {
        let (schemas, project) = try catalog()
        defer { project.remove() }
        try project.write("procedures/bad.sql", "-- totals\nSELECT day,\n       sum(costs)\nFROM usage GROUP BY day;\n")
        let info = ProcedureChecker(schemas: schemas).check(
            fileAt: project.root.appendingPathComponent("procedures/bad.sql"), path: "procedures/bad.sql")
        #expect(
            info.diagnostics.map(\.description) == [
                "procedures/bad.sql:3:12: error: the SQL does not prepare against the tables in schemas/: no such column: costs [invalid-procedure]"
            ])
    }

    @Test func whatRunsRefuseIsReportedAtItsStatement() throws {
        let (schemas, project) = try catalog()
        defer { project.remove() }
        let refused: [(String, String)] = [
            ("ATTACH DATABASE 'other.sqlite' AS other;", "may not ATTACH or DETACH"),
            ("PRAGMA writable_schema = ON;", "may not use PRAGMA writable_schema"),
            ("DELETE FROM main.usage;", "may not delete from the published table usage directly"),
            ("UPDATE main.usage SET cost = 0;", "may not update the published table usage directly"),
            ("CREATE TABLE kept (x INTEGER);", "only TEMP tables"),
            ("CREATE INDEX main.usage_day ON usage (day);", "only TEMP tables"),
            ("CREATE TEMP TRIGGER t AFTER INSERT ON usage BEGIN SELECT 1; END;", "may not create or drop triggers"),
            ("BEGIN; DELETE FROM usage; COMMIT;", "may not begin, commit or roll back transactions"),
            ("SELECT load_extension('x');", "may not call load_extension()"),
            ("VACUUM main INTO '/tmp/copy.sqlite';", "may not VACUUM"),
        ]
        for (index, (sql, reason)) in refused.enumerated() {
            let path = "procedures/refused\(index).sql"
            try project.write(path, "-- a statement runs refuse\nSELECT day FROM usage;\n  \(sql)\n")
            let info = ProcedureChecker(schemas: schemas).check(fileAt: project.root.appendingPathComponent(path), path: path)
            let diagnostic = try #require(info.diagnostics.first, "\(sql) was not refused")
            #expect(diagnostic.rule == .procedureSandbox, "\(sql): \(diagnostic)")
            #expect(diagnostic.location == SourceLocation(file: path, line: 3, column: 3), "\(sql): \(diagnostic)")
            #expect(diagnostic.message.contains(reason), "\(sql): \(diagnostic.message)")
        }
        // What procedures do every day still passes: writes by plain name, TEMP tables, reading a table's shape.
        try project.write(
            "procedures/fine.sql",
            """
            CREATE TEMP TABLE scratch AS SELECT day, cost FROM usage;
            CREATE INDEX temp.scratch_day ON scratch (day);
            DELETE FROM usage WHERE day = '2026-01-01';
            INSERT INTO usage (day, cost) SELECT day, cost FROM scratch;
            SELECT name FROM pragma_table_info('usage');
            """)
        let fine = ProcedureChecker(schemas: schemas).check(
            fileAt: project.root.appendingPathComponent("procedures/fine.sql"), path: "procedures/fine.sql")
        #expect(fine.diagnostics.isEmpty, "\(fine.diagnostics)")
        #expect(fine.writes == ["usage"])
    }

    @Test func nothingAProcedureDoesOutlivesTheCheck() throws {
        let (schemas, project) = try catalog()
        defer { project.remove() }
        try project.write("procedures/make.sql", "CREATE TEMP TABLE made (x INTEGER);\nINSERT INTO made VALUES (1);\n")
        try project.write("procedures/use.sql", "SELECT x FROM made;\n")
        let checker = ProcedureChecker(schemas: schemas)
        #expect(checker.check(fileAt: project.root.appendingPathComponent("procedures/make.sql"), path: "procedures/make.sql").diagnostics.isEmpty)
        let later = checker.check(fileAt: project.root.appendingPathComponent("procedures/use.sql"), path: "procedures/use.sql")
        #expect(later.diagnostics.first?.message.contains("no such table: made") == true)
    }
}

struct ReporterTests {
    let report = LintReport(
        diagnostics: [
            Diagnostic(.unknownKey, at: SourceLocation(file: "pipelines/a,b.yml", line: 3, column: 5), "bad: 100%\nsecond line"),
            Diagnostic(.missingTimeout, at: SourceLocation(file: "pipelines/a.yml", line: 1, column: 1), "no timeout"),
        ], filesChecked: 2)

    @Test func textEndsWithCounts() {
        let text = LintOutputFormat.text.render(report)
        #expect(text.hasSuffix("2 files checked: 1 error, 1 warning\n"))
        #expect(text.hasPrefix("pipelines/a,b.yml:3:5: error: bad: 100%"))
    }

    @Test func githubCommandsEscapeTheirValues() {
        #expect(
            LintOutputFormat.github.render(report) == """
                ::error file=pipelines/a%2Cb.yml,line=3,col=5,title=sluice unknown-key::bad: 100%25%0Asecond line
                ::warning file=pipelines/a.yml,line=1,col=1,title=sluice missing-timeout::no timeout

                """)
    }

    @Test func jsonAndSarifAreDocumentsWithEveryDiagnostic() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(LintOutputFormat.json.render(report).utf8)) as? [String: Any])
        #expect(json["errors"] as? Int == 1)
        #expect((json["diagnostics"] as? [[String: Any]])?.first?["rule"] as? String == "unknown-key")

        let sarif = try #require(try JSONSerialization.jsonObject(with: Data(LintOutputFormat.sarif.render(report).utf8)) as? [String: Any])
        #expect(sarif["version"] as? String == "2.1.0")
        let run = try #require((sarif["runs"] as? [[String: Any]])?.first)
        let results = try #require(run["results"] as? [[String: Any]])
        #expect(results.map { $0["level"] as? String } == ["error", "warning"])
        let rules = try #require(((run["tool"] as? [String: Any])?["driver"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect(rules.count == LintRule.allCases.count)
        let index = try #require(results.first?["ruleIndex"] as? Int)
        #expect(rules[index]["id"] as? String == "unknown-key")
        let region = (((results.first?["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any])?["region"] as? [String: Any])
        #expect(region?["startLine"] as? Int == 3)
        #expect(region?["startColumn"] as? Int == 5)
    }
}

struct ProcessorRegistryTests {
    @Test func everyProcessorOfTheDesignIsRegisteredWithDocs() {
        let names = ProcessorEnvironment.standard.registry.names
        #expect(
            names == [
                "kms_decrypt", "validate_openai", "validate_anthropic", "validate_gcp", "validate_http",
                "ingest", "merge_dedupe", "aggregate", "sql", "validate_data", "notify",
            ])
        for spec in ProcessorEnvironment.standard.registry.specs {
            #expect(!spec.summary.isEmpty && !spec.description.isEmpty && !spec.outputs.isEmpty)
            #expect(spec.fields.allSatisfy { !$0.description.isEmpty })
            #expect(ProcessorDocs.page(spec).contains(spec.example.split(separator: "\n").first.map(String.init) ?? "?"))
        }
    }

    /// Each processor's documented example, put in a pipeline, must pass the file-level checks.
    @Test func everyDocumentedExampleIsValid() {
        for spec in ProcessorEnvironment.standard.registry.specs where spec.name != "notify" {
            var text = "pipeline: test_pipeline\ndefaults: { timeout: 1m }\nsteps:\n"
            text += spec.example.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n") + "\n"
            var result = loadPipeline(text)
            // Examples may name steps and secrets defined elsewhere; only those references may fail.
            result.diagnostics.removeAll { $0.rule == .unknownReference }
            #expect(result.diagnostics.isEmpty, "\(spec.name): \(result.diagnostics)")
        }
    }
}

struct CredentialPlacementTests {
    @Test func aCredentialNameMustFollowTheNamingRule() {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 1m }
            steps:
              - { id: good, uses: kms_decrypt, with: { credential: openai/admin_key, as: a } }
              - { id: bad, uses: kms_decrypt, with: { credential: "openai//admin key", as: b } }
            """)
        #expect(
            result.diagnostics.map(\.description) == [
                "pipelines/test_pipeline.yml:5:55: error: step 'bad' (kms_decrypt): 'credential': 'openai//admin key' is not a valid credential name: use segments of letters, digits, _, - and . separated by /, like openai/admin_key [invalid-value]"
            ])
    }

    @Test func aCredentialUnderAnUnknownKeyIsStillReported() {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 1m }
            openai_key: sk-proj-4fGhT9xQ2mLp8RzW1vNc7YbK3eJd
            steps:
              - id: tell
                uses: notify
                with: { url: "${{ env.HOOK }}", token: "Bearer abcdef0123456789abcdef" }
            """)
        #expect(
            result.diagnostics.map(\.description) == [
                "pipelines/test_pipeline.yml:3:1: error: pipeline has no key 'openai_key' (keys: pipeline, description, schedule, params, timeout, defaults, secrets, steps, on_failure) [unknown-key]",
                "pipelines/test_pipeline.yml:3:13: error: pipeline: 'openai_key' holds what looks like an OpenAI-style API key in plain text; store it with `sluice secrets put` and read it with kms_decrypt [plaintext-credential]",
                "pipelines/test_pipeline.yml:7:37: error: step 'tell' (notify) has no field 'token' (fields: url, format, message, link, request_timeout) [unknown-field]",
                "pipelines/test_pipeline.yml:7:45: error: step 'tell' (notify): 'token' holds what looks like a bearer token in plain text; store it with `sluice secrets put` and read it with kms_decrypt [plaintext-credential]",
            ])
    }
}
