import Foundation
import SluiceEngine
import SluiceProviders
import Testing

@testable import SluiceModel

/// Every fixture under Fixtures/lint/<project>/pipelines, linted alone with a fresh linter,
/// must give exactly these diagnostics: message, rule id and position.
struct LintFixtureTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var project: String
        var file: String
        var expected: [String]

        init(_ project: String, _ file: String, _ expected: [String]) {
            self.project = project
            self.file = file
            self.expected = expected
        }

        var testDescription: String { "\(project)/\(file)" }
    }

    static let cases: [Case] = [
        Case(
            "project", "cron_never_fires.yml",
            [
                "pipelines/cron_never_fires.yml:4:14: warning: pipeline: 'schedule.cron': '0 6 31 apr,jun *' never fires: April and June have no day 31 [cron-never-fires]"
            ]),
        Case(
            "project", "cycle.yml",
            [
                "pipelines/cycle.yml:4:9: error: steps depend on each other in a circle: a → b (needs) → c (needs) → a (needs) [cycle]",
                "pipelines/cycle.yml:18:13: error: step 'd' needs itself [cycle]",
            ]),
        Case(
            "project", "duplicate_key.yml",
            [
                "pipelines/duplicate_key.yml:10:1: error: duplicate key 'defaults'; it was already given at 2:1 [duplicate-key]"
            ]),
        Case(
            "project", "duplicate_step_id.yml",
            [
                "pipelines/duplicate_step_id.yml:10:9: error: step id 'load' is used twice; the first is at 4:9 [duplicate-step-id]"
            ]),
        Case(
            "project", "expression_syntax.yml",
            [
                "pipelines/expression_syntax.yml:9:60: error: step 'load' (ingest): 'source.path': the expression is empty or ends too early [expression-syntax]",
                "pipelines/expression_syntax.yml:14:51: error: step 'tell' (notify): 'message': unknown function 'shout' (functions: date_add, lower, trim, upper) [expression-syntax]",
                "pipelines/expression_syntax.yml:14:81: error: step 'tell' (notify): 'link': '${{' is not closed by '}}' [expression-syntax]",
            ]),
        Case(
            "project", "input_limit.yml",
            [
                "pipelines/input_limit.yml:2:207: error: values nest deeper than 200 levels; pipeline files may not [input-limit]"
            ]),
        Case(
            "project", "invalid_cron.yml",
            [
                "pipelines/invalid_cron.yml:4:12: error: pipeline: 'schedule.cron': hour field '25': '25' is not a valid hour (0-23) [invalid-cron]"
            ]),
        Case(
            "project", "invalid_duration.yml",
            [
                "pipelines/invalid_duration.yml:2:22: error: pipeline: 'defaults.timeout': '10 minutes' is not a duration (a unit is missing after 10); expected a duration like 500ms, 30s, 10m, 2h or 7d [invalid-duration]",
                "pipelines/invalid_duration.yml:3:17: error: pipeline: 'secrets.ttl': '0s' is zero; a duration must be positive [invalid-duration]",
                "pipelines/invalid_duration.yml:5:9: warning: step 'load' has no timeout; set `timeout:` on it or in `defaults`, or a hung source can hold the run forever [missing-timeout]",
                "pipelines/invalid_duration.yml:11:14: error: step 'load': 'timeout': '5x' is not a duration (unknown unit 'x'); expected a duration like 500ms, 30s, 10m, 2h or 7d [invalid-duration]",
            ]),
        Case(
            "project", "invalid_identifier.yml",
            [
                "pipelines/invalid_identifier.yml:4:9: error: step 'load-events': 'id': 'load-events' is not a valid name: use letters, digits and _, not starting with a digit [invalid-identifier]",
                "pipelines/invalid_identifier.yml:8:14: error: step 'load-events' (ingest): 'table': 'events raw' is not a valid name: use letters, digits and _, not starting with a digit [invalid-identifier]",
            ]),
        Case(
            "project", "invalid_param.yml",
            [
                "pipelines/invalid_param.yml:4:31: error: param 'day': '2026-02-30' is not a YYYY-MM-DD date [invalid-param]",
                "pipelines/invalid_param.yml:5:36: error: param 'region': default 'eu' is not one of its values [invalid-param]",
                "pipelines/invalid_param.yml:6:34: error: param 'code': 'AB-1' does not match its pattern [a-z]+ [invalid-param]",
                "pipelines/invalid_param.yml:7:51: error: param 'must' is required and has a default; a required param must be given by each run, so drop one of them [invalid-param]",
            ]),
        Case(
            "project", "invalid_procedure.yml",
            [
                "pipelines/invalid_procedure.yml:9:35: error: procedure 'procedures/broken.sql' does not prepare; see procedures/broken.sql:3:8 [invalid-procedure]",
                "pipelines/invalid_procedure.yml:12:24: error: procedures/rollup.sql uses :day, but step 'roll' gives no params.day [missing-field]",
                "procedures/broken.sql:3:8: error: the SQL does not prepare against the tables in schemas/: no such column: amount_usd [invalid-procedure]",
            ]),
        Case(
            "project", "invalid_timezone.yml",
            [
                "pipelines/invalid_timezone.yml:5:13: error: pipeline: 'schedule.timezone': 'America/New_Yrok' is not an IANA timezone; did you mean 'America/New_York'? (e.g. UTC, Europe/Berlin, America/New_York) [invalid-timezone]"
            ]),
        Case(
            "project", "invalid_value.yml",
            [
                "pipelines/invalid_value.yml:12:19: error: step 'load' (ingest): 'on_bad_row' must be one of fail, skip, quarantine, not 'explode' [invalid-value]",
                "pipelines/invalid_value.yml:13:19: error: step 'load' (ingest): 'batch_size' must be between 1 and 1000000, not 0 [invalid-value]",
                "pipelines/invalid_value.yml:16:25: error: step 'key' (kms_decrypt): 'credential' must be a literal credential name, like openai/admin_key; expressions are not allowed here, so no param, env or step output chooses which credential is decrypted [invalid-value]",
            ]),
        Case(
            "project", "missing_field.yml",
            [
                "pipelines/missing_field.yml:12:11: error: step 'dedupe' (merge_dedupe) is missing required 'key' [missing-field]",
                "pipelines/missing_field.yml:12:11: error: step 'dedupe' (merge_dedupe) needs 'latest_by' when strategy is latest_wins [missing-field]",
                "pipelines/missing_field.yml:13:5: error: step 3 is missing required 'id' [missing-field]",
            ]),
        Case(
            "project", "missing_procedure.yml",
            [
                "pipelines/missing_procedure.yml:6:24: error: procedure file 'procedures/rolup.sql' does not exist; did you mean 'procedures/rollup.sql'? [missing-procedure]"
            ]),
        Case(
            "project", "missing_schema.yml",
            [
                "pipelines/missing_schema.yml:9:15: error: schema file 'schemas/event_raw.json' does not exist; did you mean 'schemas/events_raw.json'? [missing-schema]"
            ]),
        Case(
            "project", "missing_timeout.yml",
            [
                "pipelines/missing_timeout.yml:3:9: warning: step 'load' has no timeout; set `timeout:` on it or in `defaults`, or a hung source can hold the run forever [missing-timeout]"
            ]),
        Case(
            "project", "not_a_mapping.yml",
            [
                "pipelines/not_a_mapping.yml:1:1: error: a pipeline file must be a mapping with `pipeline:` and `steps:`, but this one is a list [not-a-mapping]"
            ]),
        Case(
            "project", "param_driven_url.yml",
            [
                "pipelines/param_driven_url.yml:10:36: warning: step 'load' (ingest): 'source.url' reads params.feed, so whoever starts a run through the API or a webhook chooses where the request goes; runs refuse loopback, private and link-local addresses for it unless sluice.yml lists them under network.allow. Take it from env or write it in the file if the caller should not choose [param-driven-url]",
                "pipelines/param_driven_url.yml:16:18: warning: step 'tell' (notify): 'url' reads params.hook, so whoever starts a run through the API or a webhook chooses where the request goes; runs refuse loopback, private and link-local addresses for it unless sluice.yml lists them under network.allow. Take it from env or write it in the file if the caller should not choose [param-driven-url]",
            ]),
        Case(
            "project", "pipeline_name_mismatch.yml",
            [
                "pipelines/pipeline_name_mismatch.yml:1:11: error: pipeline id 'name_mismatch' differs from its file name 'pipeline_name_mismatch'; name the file name_mismatch.yml or the pipeline pipeline_name_mismatch [pipeline-name-mismatch]"
            ]),
        Case(
            "project", "plaintext_credential.yml",
            [
                "pipelines/plaintext_credential.yml:3:20: error: pipeline: 'description' holds what looks like an OpenAI-style API key in plain text; store it with `sluice secrets put` and read it with kms_decrypt [plaintext-credential]",
                "pipelines/plaintext_credential.yml:8:25: error: step 'tell' (notify): 'url' holds what looks like a password inside a URL or DSN in plain text; store it with `sluice secrets put` and read it with kms_decrypt [plaintext-credential]",
                "pipelines/plaintext_credential.yml:9:16: error: step 'tell' (notify): 'message' holds what looks like a private key in plain text; store it with `sluice secrets put` and read it with kms_decrypt [plaintext-credential]",
            ]),
        Case(
            "project", "procedure_sandbox.yml",
            [
                "pipelines/procedure_sandbox.yml:6:24: error: procedure 'procedures/escape.sql' does what runs refuse; see procedures/escape.sql:2:1 [procedure-sandbox]",
                "procedures/escape.sql:2:1: error: procedures run sandboxed, and this statement is refused: it may not ATTACH or DETACH databases: a run reads only its own org's tables [procedure-sandbox]",
            ]),
        Case(
            "project", "secret_in_plain_field.yml",
            [
                "pipelines/secret_in_plain_field.yml:9:22: error: step 'check' (validate_openai): 'api_key' is a credential and must come from the vault as ${{ secrets.<name> }}, not a literal [secret-in-plain-field]",
                "pipelines/secret_in_plain_field.yml:12:58: error: step 'tell' (notify): 'message' is not a secret field, so secrets.openai_key could leak into logs or tables; only fields marked secret take secrets [secret-in-plain-field]",
            ]),
        Case(
            "project", "target_schema_mismatch.yml",
            [
                "pipelines/target_schema_mismatch.yml:12:13: error: step 'daily' writes 'refunds' into 'events_daily', but schemas/events_daily.json has no such column [conflicting-schema]",
                "pipelines/target_schema_mismatch.yml:14:21: error: step 'daily' (aggregate): 'partition_by' must be one of the group_by columns (day, org), not 'event_ts' [invalid-value]",
            ]),
        Case(
            "project", "unknown_column.yml",
            [
                "pipelines/unknown_column.yml:12:51: error: step 'dedupe': 'key': column 'event_idd' is not in table 'events_raw'; did you mean 'event_id'? [unknown-column]",
                "pipelines/unknown_column.yml:12:74: error: step 'dedupe': 'latest_by': column 'event_time' is not in table 'events_raw'; did you mean 'event_id'? [unknown-column]",
                "pipelines/unknown_column.yml:17:39: error: step 'per_org': 'join.on': column 'region' is not in tables 'events', 'rates' [unknown-column]",
                "pipelines/unknown_column.yml:18:23: error: step 'per_org': 'group_by': column 'orgs' is not in tables 'events', 'rates'; did you mean 'org'? [unknown-column]",
                "pipelines/unknown_column.yml:20:29: error: step 'per_org': 'measures.total': column 'rte' is not in tables 'events', 'rates'; did you mean 'rate'? [unknown-column]",
                "pipelines/unknown_column.yml:26:42: error: step 'test': 'checks.column': column 'totl' is not in table 'per_org'; did you mean 'total'? [unknown-column]",
            ]),
        Case(
            "project", "unknown_field.yml",
            [
                "pipelines/unknown_field.yml:10:7: error: step 'load' (ingest) has no field 'on_bad_rows'; did you mean 'on_bad_row'? (fields: source, table, schema, columns, on_bad_row, max_bad_rows, batch_size) [unknown-field]"
            ]),
        Case(
            "project", "unknown_key.yml",
            [
                "pipelines/unknown_key.yml:3:1: error: pipeline has no key 'descripton'; did you mean 'description'? (keys: pipeline, description, schedule, params, timeout, defaults, secrets, steps, on_failure) [unknown-key]",
                "pipelines/unknown_key.yml:11:5: error: step 'load' has no key 'retries' (keys: id, uses, description, needs, with, timeout, retry, limits) [unknown-key]",
            ]),
        Case(
            "project", "unknown_need.yml",
            [
                "pipelines/unknown_need.yml:12:13: error: step 'dedupe' needs 'lod', which is not a step of this pipeline; did you mean 'load'? [unknown-need]"
            ]),
        Case(
            "project", "unknown_processor.yml",
            [
                "pipelines/unknown_processor.yml:5:11: error: unknown processor 'injest'; did you mean 'ingest'? (`sluice processors` lists them) [unknown-processor]"
            ]),
        Case(
            "project", "unknown_reference.yml",
            [
                "pipelines/unknown_reference.yml:4:36: error: pipeline: 'params.day.default': 'params.other': a param default may read only run.* and env.* [unknown-reference]",
                "pipelines/unknown_reference.yml:16:21: error: step 'tell' (notify): 'message': unknown param 'dya'; did you mean 'day'? [unknown-reference]",
                "pipelines/unknown_reference.yml:16:39: error: step 'tell' (notify): 'message': run has no field 'logical_day'; did you mean 'logical_date'? (run fields: id, logical_date, logical_time, pipeline, org, trigger, request_id, attempt) [unknown-reference]",
                "pipelines/unknown_reference.yml:16:62: error: step 'tell' (notify): 'message': step 'load' has no output 'rows' (its outputs: rows_read, rows_written, rows_skipped, rows_quarantined, bytes_read, pages_read) [unknown-reference]",
                "pipelines/unknown_reference.yml:16:93: error: step 'tell' (notify): 'message': unknown step 'nope' [unknown-reference]",
                "pipelines/unknown_reference.yml:16:121: error: step 'tell' (notify): 'message': no step decrypts secret 'missing'; add a kms_decrypt step with `as: missing` [unknown-reference]",
                "pipelines/unknown_reference.yml:16:144: error: step 'tell' (notify): 'message': unknown name 'config'; expressions read params, run, env, steps, secrets [unknown-reference]",
            ]),
        Case(
            "project", "unproduced_table.yml",
            [
                "pipelines/unproduced_table.yml:7:13: error: step 'daily' reads table 'event', which no step of this pipeline writes and no file in schemas/ declares; did you mean 'events'? [unproduced-table]"
            ]),
        Case(
            "project", "untrusted_secret_destination.yml",
            [
                "pipelines/untrusted_secret_destination.yml:12:61: error: step 'check' (validate_openai): 'base_url' decides where the step sends secrets.openai_key, but it reads params.base (a param: whoever starts a run sets it, with an API token or a webhook payload); take it from the operator's environment or write it in the file, e.g. ${{ env.BASE || 'https://api.openai.com' }} (|| gives the first non-empty value) [untrusted-secret-destination]",
                "pipelines/untrusted_secret_destination.yml:18:14: error: step 'load' (ingest): 'source.url' decides where the step sends secrets.openai_key, but it reads params.usage_base_url (a param: whoever starts a run sets it, with an API token or a webhook payload) and steps.check.outputs.status (a step output: the data that step read can shape it); take it from the operator's environment or write it in the file, e.g. ${{ env.USAGE_BASE_URL || 'https://llm-gateway.example.com' }} (|| gives the first non-empty value) [untrusted-secret-destination]",
            ]),
        Case("project", "valid_pipeline.yml", []),
        Case(
            "project", "wrong_type.yml",
            [
                "pipelines/wrong_type.yml:10:19: error: step 'load' (ingest): 'batch_size' must be an integer, not 'lots' [wrong-type]",
                "pipelines/wrong_type.yml:13:12: error: step 'dedupe': 'needs' must be a name, not a mapping [wrong-type]",
                "pipelines/wrong_type.yml:14:92: error: step 'dedupe' (merge_dedupe): 'lineage' must be true or false, not 'maybe' [wrong-type]",
            ]),
        Case(
            "project", "yaml_syntax.yml",
            [
                "pipelines/yaml_syntax.yml:3:3: error: did not find expected node content (while parsing a flow node started at 3:3) [yaml-syntax]"
            ]),
        Case(
            "invalid_schema", "load_payments.yml",
            [
                "schemas/notes.json:3:19: error: not valid JSON: did not find expected ',' or '}' (while parsing a flow mapping started at 3:3) [invalid-schema]",
                "schemas/payments.json:3:19: error: primary_key column 'payment_id' is not a field [invalid-schema]",
                "schemas/payments.json:5:3: error: unknown key 'clustering' in a table schema (keys: description, fields, partition_by, primary_key, table) [invalid-schema]",
                "schemas/payments.json:8:32: error: field 'amount': unknown type 'MONEY' (types: STRING, INT64, FLOAT64, NUMERIC, BIGNUMERIC, BOOL, DATE, TIMESTAMP, DATETIME, TIME, BYTES, JSON) [invalid-schema]",
                "schemas/payments.json:9:47: error: field 'org': mode must be NULLABLE, REQUIRED or REPEATED, not 'OPTIONAL' [invalid-schema]",
                "schemas/payments.json:10:14: error: column 'org' is declared twice; the first is at 9:14 [invalid-schema]",
            ]),
        Case(
            "conflicting_schema", "check_costs.yml",
            [
                "schemas/usage/costs.json:1:1: error: table 'costs' is also described by schemas/billing/costs.json, differently: column 'cost' is FLOAT64 NULLABLE in schemas/billing/costs.json but NUMERIC NULLABLE in schemas/usage/costs.json [conflicting-schema]"
            ]),
    ]

    @Test(arguments: cases)
    func fixtureGivesExactlyItsDiagnostics(_ fixture: Case) {
        let root = fixtures.appendingPathComponent("lint/\(fixture.project)")
        let linter = Linter(projectRoot: root, registry: ProcessorEnvironment.standard.registry)
        let report = linter.lint(paths: ["pipelines/\(fixture.file)"])
        #expect(report.filesChecked == 1)
        #expect(report.diagnostics.map(\.description) == fixture.expected)
    }

    @Test func everyRuleHasAFixture() {
        // missing-path has no file to be a fixture; aMissingPathIsReported covers it.
        let covered = Set(["missing-path"]).union(
            Self.cases.flatMap(\.expected).compactMap { line -> String? in
                guard let open = line.lastIndex(of: "["), line.hasSuffix("]") else { return nil }
                return String(line[line.index(after: open)..<line.index(before: line.endIndex)])
            })
        for rule in LintRule.allCases {
            #expect(covered.contains(rule.rawValue), "no fixture shows rule \(rule.rawValue)")
        }
    }

    @Test func everyFixtureFileIsListed() throws {
        for project in ["project", "invalid_schema", "conflicting_schema"] {
            let folder = fixtures.appendingPathComponent("lint/\(project)/pipelines")
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yml") }
            for file in files {
                #expect(Self.cases.contains { $0.project == project && $0.file == file }, "\(project)/\(file) has no expectation")
            }
        }
    }

    /// Enough files to be linted on every core at once (`Linter.filesPerWorker` a core): the
    /// report is the one a single linter gives going through the files in turn, procedures
    /// two pipelines share and schema problems included once.
    @Test func manyFilesLintedAtOnceReportWhatOneLinterReportsInTurn() throws {
        let project = try TemporaryProject()
        defer { project.remove() }
        let fixture = fixtures.appendingPathComponent("lint/project")
        for folder in ["pipelines", "procedures", "schemas"] {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent(folder), to: project.root.appendingPathComponent(folder))
        }
        try project.write("schemas/broken.json", "[{\"name\": \"id\"}]")
        let originals = try FileManager.default.contentsOfDirectory(atPath: fixture.appendingPathComponent("pipelines").path)
        for copy in 1...3 {
            for file in originals {
                try FileManager.default.copyItem(
                    at: fixture.appendingPathComponent("pipelines/\(file)"), to: project.root.appendingPathComponent("pipelines/copy\(copy)_\(file)"))
            }
        }
        let registry = ProcessorEnvironment.standard.registry
        let files = ProjectFiles.pipelineFiles(for: ["pipelines"], relativeTo: URL(fileURLWithPath: project.root.path, isDirectory: true)).files
        #expect(files.count >= 2 * Linter.filesPerWorker)

        let atOnce = Linter(projectRoot: project.root, registry: registry).lint(paths: ["pipelines"])
        let one = Linter(projectRoot: project.root, registry: registry)
        let inTurn = files.flatMap { one.lint(file: $0) }.sortedForReading()
        #expect(atOnce.filesChecked == files.count)
        #expect(atOnce.diagnostics.map(\.description) == inTurn.map(\.description))
        #expect(atOnce.diagnostics.filter { $0.location.file == "schemas/broken.json" }.count == 1)
        #expect(atOnce.diagnostics.contains { $0.location.file.hasPrefix("procedures/") }, "the shared procedures' problems are there")
    }

    @Test func aFileNamedTwiceIsLintedOnceAndSchemaProblemsAreReportedOnce() {
        let root = fixtures.appendingPathComponent("lint/invalid_schema")
        let report = Linter(projectRoot: root, registry: ProcessorEnvironment.standard.registry).lint(paths: [
            "pipelines", "pipelines/load_payments.yml", "./pipelines/",
        ])
        #expect(report.filesChecked == 1)
        let schemaProblems = report.diagnostics.filter { $0.location.file.hasPrefix("schemas/") }
        #expect(schemaProblems.count == 6)
        #expect(schemaProblems.count == Set(schemaProblems.map(\.description)).count)
    }

    @Test func schemaProblemsAreReportedWithoutAnyPipeline() throws {
        let project = try TemporaryProject()
        defer { project.remove() }
        try project.write("schemas/broken.json", "[{\"name\": \"id\"}]")
        try FileManager.default.createDirectory(at: project.root.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        let report = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).lint(paths: ["pipelines"])
        #expect(report.filesChecked == 0)
        #expect(report.diagnostics.map(\.description) == ["schemas/broken.json:1:2: error: field 'id' needs \"type\" [invalid-schema]"])
    }

    @Test func aMissingPathIsReported() {
        let report = Linter(projectRoot: fixtures.appendingPathComponent("lint/project"), registry: ProcessorEnvironment.standard.registry).lint(
            paths: ["pipelines/nope.yml"])
        #expect(report.diagnostics.map(\.description) == ["pipelines/nope.yml:1:1: error: no such file or folder [missing-path]"])
    }
}
