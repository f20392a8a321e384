/// Every check `sluice lint` makes, with a stable id that appears in its output, in SARIF
/// and in the README's rule table. Adding a rule means adding a case here, a fixture under
/// `Tests/SluiceModelTests/Fixtures/lint/`, and a row in the README.
public enum LintRule: String, CaseIterable, Sendable, Codable {
    case missingPath = "missing-path"
    case yamlSyntax = "yaml-syntax"
    case inputLimit = "input-limit"
    case duplicateKey = "duplicate-key"
    case notAMapping = "not-a-mapping"
    case unknownKey = "unknown-key"
    case unknownField = "unknown-field"
    case missingField = "missing-field"
    case wrongType = "wrong-type"
    case invalidValue = "invalid-value"
    case invalidIdentifier = "invalid-identifier"
    case duplicateStepId = "duplicate-step-id"
    case unknownNeed = "unknown-need"
    case cycle = "cycle"
    case unknownProcessor = "unknown-processor"
    case invalidCron = "invalid-cron"
    case cronNeverFires = "cron-never-fires"
    case invalidTimezone = "invalid-timezone"
    case invalidDuration = "invalid-duration"
    case invalidParam = "invalid-param"
    case expressionSyntax = "expression-syntax"
    case unknownReference = "unknown-reference"
    case secretInPlainField = "secret-in-plain-field"
    case plaintextCredential = "plaintext-credential"
    case untrustedSecretDestination = "untrusted-secret-destination"
    case paramDrivenURL = "param-driven-url"
    case missingSchema = "missing-schema"
    case invalidSchema = "invalid-schema"
    case conflictingSchema = "conflicting-schema"
    case missingProcedure = "missing-procedure"
    case invalidProcedure = "invalid-procedure"
    case procedureSandbox = "procedure-sandbox"
    case unproducedTable = "unproduced-table"
    case unknownColumn = "unknown-column"
    case pipelineNameMismatch = "pipeline-name-mismatch"
    case missingTimeout = "missing-timeout"

    public var defaultSeverity: Severity {
        switch self {
        case .missingTimeout, .cronNeverFires, .paramDrivenURL: .warning
        default: .error
        }
    }

    /// One line for people: what the rule catches.
    public var summary: String {
        switch self {
        case .missingPath: "A file or folder given to `sluice lint` does not exist."
        case .yamlSyntax: "The file is not valid YAML (or not UTF-8 text)."
        case .inputLimit:
            "The file is larger, deeper or expands (through aliases) to more values than a pipeline file may: 1 MiB, 200 levels, 100,000 values or twice the file's bytes."
        case .duplicateKey: "A mapping names the same key twice."
        case .notAMapping: "The file's top level is not a mapping (a list, a scalar or nothing)."
        case .unknownKey: "A key the pipeline format does not have (with a \"did you mean\")."
        case .unknownField: "A field in a step's `with` that its processor does not have (with a \"did you mean\")."
        case .missingField: "A required key or processor field is missing."
        case .wrongType: "A value has the wrong type (a list where a string belongs, a word where a number belongs)."
        case .invalidValue: "A value outside what the field accepts (an enum value, a range, a pattern)."
        case .invalidIdentifier: "A pipeline, step, table, column or param name that is not a plain identifier."
        case .duplicateStepId: "Two steps have the same id."
        case .unknownNeed: "`needs` names a step that does not exist."
        case .cycle: "The steps depend on each other in a circle (the cycle is printed)."
        case .unknownProcessor: "`uses` names a processor that does not exist."
        case .invalidCron: "A schedule's cron expression is malformed."
        case .cronNeverFires: "A schedule's cron expression names no date that exists, like February 30, so it never runs (warning)."
        case .invalidTimezone: "A timezone that is not an IANA name."
        case .invalidDuration: "A duration that is not like 500ms, 30s, 10m, 2h or 7d."
        case .invalidParam: "A param whose type, default or pattern do not agree."
        case .expressionSyntax: "A `${{ }}` expression that does not parse."
        case .unknownReference: "A `${{ }}` expression names a param, step output, secret or run field that does not exist."
        case .secretInPlainField: "A secret flows into a field that its processor does not mark as secret, or a secret field holds a literal."
        case .untrustedSecretDestination:
            "In a step that carries a secret, a field that decides where the request goes (a base URL, an endpoint) reads params, step outputs or another value a run's caller or data chooses."
        case .paramDrivenURL:
            "A field that decides where a request goes reads `params.*`, so whoever starts a run through the API or a webhook chooses the host; runs refuse loopback, private and link-local addresses for it unless `network.allow` lists them (warning)."
        case .plaintextCredential: "A literal that looks like a credential: an API key, a private key, a password inside a URL or DSN."
        case .missingSchema: "A referenced schema file does not exist."
        case .invalidSchema: "A schema file is not a valid table schema."
        case .conflictingSchema: "Two schema files describe one table differently."
        case .missingProcedure: "A referenced SQL procedure does not exist."
        case .invalidProcedure: "A procedure's SQL fails to prepare against the tables in `schemas/` (unknown table or column, syntax)."
        case .procedureSandbox:
            "A procedure does what runs refuse: ATTACH or DETACH, a PRAGMA that sets, writing a published table as `main.<table>`, tables, views or indexes outside TEMP, triggers, its own transactions, functions that reach files."
        case .unproducedTable: "A step reads a table that no step writes and no schema declares."
        case .unknownColumn: "A key, latest_by, group_by, measure or join names a column its table does not have."
        case .pipelineNameMismatch: "The `pipeline:` id differs from the file name."
        case .missingTimeout: "A step has no timeout, neither its own nor from `defaults` (warning)."
        }
    }
}
