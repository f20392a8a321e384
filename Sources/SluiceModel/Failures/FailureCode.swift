/// A failure's stable code: what scripts, tests, `on_failure` handlers (`run.error_code`) and
/// the API match on. A string underneath (the documented codes are those strings), with the
/// engine's codes as static members; a module that brings processors adds its own in an
/// extension (SluiceProviders does, for validators and notify), in the manner of GRDB's
/// `ResultCode`.
public struct FailureCode: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }

    public static let badResponse: FailureCode = "bad_response"
    public static let badRow: FailureCode = "bad_row"
    public static let budgetExceeded: FailureCode = "budget_exceeded"
    public static let credentialRefused: FailureCode = "credential_refused"
    public static let dataTestFailed: FailureCode = "data_test_failed"
    public static let databaseLocked: FailureCode = "database_locked"
    public static let destinationRefused: FailureCode = "destination_refused"
    public static let destinationUnresolved: FailureCode = "destination_unresolved"
    public static let duplicateColumn: FailureCode = "duplicate_column"
    public static let emptyInput: FailureCode = "empty_input"
    public static let httpError: FailureCode = "http_error"
    public static let httpLinkOtherOrigin: FailureCode = "http_link_other_origin"
    public static let httpUnauthorized: FailureCode = "http_unauthorized"
    public static let inputRefused: FailureCode = "input_refused"
    public static let invalidConfig: FailureCode = "invalid_config"
    public static let invalidUTF8: FailureCode = "invalid_utf8"
    /// An error that was not a `StepFailure`: a bug, or a library's error left unmapped.
    public static let error: FailureCode = "error"
    public static let invalidOrg: FailureCode = "invalid_org"
    public static let invalidParams: FailureCode = "invalid_params"
    public static let invalidProcedure: FailureCode = "invalid_procedure"
    public static let invalidRun: FailureCode = "invalid_run"
    public static let invalidSetting: FailureCode = "invalid_setting"
    public static let malformedCsv: FailureCode = "malformed_csv"
    public static let malformedJson: FailureCode = "malformed_json"
    public static let missingColumn: FailureCode = "missing_column"
    public static let missingInput: FailureCode = "missing_input"
    public static let missingItems: FailureCode = "missing_items"
    public static let missingProcedure: FailureCode = "missing_procedure"
    public static let missingSchema: FailureCode = "missing_schema"
    public static let missingTable: FailureCode = "missing_table"
    public static let noKeyring: FailureCode = "no_keyring"
    public static let noVault: FailureCode = "no_vault"
    public static let noWarehouse: FailureCode = "no_warehouse"
    public static let pageLimitReached: FailureCode = "page_limit_reached"
    public static let notResumable: FailureCode = "not_resumable"
    public static let nullKey: FailureCode = "null_key"
    public static let procedureFailed: FailureCode = "procedure_failed"
    public static let procedureRefused: FailureCode = "procedure_refused"
    public static let providerUnavailable: FailureCode = "provider_unavailable"
    public static let publishFailed: FailureCode = "publish_failed"
    public static let rateLimited: FailureCode = "rate_limited"
    /// A staged table breaks its schema: a REQUIRED column without a value, a primary key twice.
    public static let schemaViolated: FailureCode = "schema_violated"
    public static let recordTooLarge: FailureCode = "record_too_large"
    public static let secretExpired: FailureCode = "secret_expired"
    public static let secretMissing: FailureCode = "secret_missing"
    public static let stagingDamaged: FailureCode = "staging_damaged"
    /// The run's staging was taken over by another process (a worker continuing the run after
    /// this one's lease expired), or the run published already: this process stops quietly.
    public static let stagingSuperseded: FailureCode = "staging_superseded"
    public static let timedOut: FailureCode = "timed_out"
    public static let runTimedOut: FailureCode = "run_timed_out"
    public static let tooManyBadRows: FailureCode = "too_many_bad_rows"
    public static let unknownProcessor: FailureCode = "unknown_processor"
    public static let unknownRun: FailureCode = "unknown_run"
    public static let unreadableInput: FailureCode = "unreadable_input"
    public static let unsupportedSource: FailureCode = "unsupported_source"
    public static let warehouseCorrupt: FailureCode = "warehouse_corrupt"
    public static let warehouseFull: FailureCode = "warehouse_full"
    public static let warehouseUnavailable: FailureCode = "warehouse_unavailable"
}
