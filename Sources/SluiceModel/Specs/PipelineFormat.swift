/// The pipeline file format, declared with the same field specs as processors, so that one
/// validator checks both and the editor JSON Schema and docs come from one place.
public enum PipelineFormat {
    public static let paramTypes = ["string", "integer", "number", "boolean", "date", "duration"]

    public static let retry = FieldSpec(
        "retry",
        .object([
            FieldSpec("attempts", .integer(1...100), .defaultValue("1"), description: "Tries in all, the first included."),
            FieldSpec(
                "backoff", .enumeration(["exponential", "fixed"]), .defaultValue("exponential"),
                description: "How the delay grows between tries."),
            FieldSpec("initial_delay", .duration, .defaultValue("1s"), description: "Delay before the second try."),
            FieldSpec("max_delay", .duration, .defaultValue("1m"), description: "Longest delay between tries."),
            FieldSpec("jitter", .boolean, .defaultValue("true"), description: "Randomise delays so retries don't align."),
        ]), description: "Retries for transient errors (timeouts, 429, 5xx, a locked database); permanent errors never retry.")

    public static let timeout = FieldSpec(
        "timeout", .duration,
        description: "Longest the step may run; it is cancelled, and abandoned if it ignores cancellation.", example: "10m")

    public static let limits = FieldSpec(
        "limits", .object(StepLimits.fields),
        description:
            "What the step may consume before it stops with `budget_exceeded`, publishing nothing; the org's `limits` in sluice.yml apply too, the lower wins.",
        example: "{ max_rows: 5000000, max_requests: 200 }")

    public static let stepFields: [FieldSpec] = [
        FieldSpec(
            "id", .identifier, .required, description: "Unique step name; other steps' `needs` and `steps.<id>.outputs` use it.",
            example: "load_usage"),
        FieldSpec(
            "uses", .string, .required, description: "The processor that runs the step (`sluice processors` lists them).",
            example: "ingest"),
        FieldSpec("description", .string, description: "What the step is for."),
        FieldSpec(
            "needs", .list(.identifier), role: .stepReference,
            description: "Steps that must succeed first. Reads of tables other steps write add edges by themselves."),
        FieldSpec("with", .processorConfig, description: "The processor's fields."),
        timeout,
        retry,
        limits,
    ]

    public static let handlerFields: [FieldSpec] = [
        FieldSpec("id", .identifier, description: "Name for the handler in run history."),
        FieldSpec("uses", .string, .required, description: "The processor, usually notify.", example: "notify"),
        FieldSpec("with", .processorConfig, description: "The processor's fields; may read `run.failed_step`, `run.error_code`, `run.error`."),
        timeout,
        retry,
    ]

    public static let paramFields: [FieldSpec] = [
        FieldSpec("type", .enumeration(paramTypes), .defaultValue("string"), description: "Value type."),
        FieldSpec("default", .scalar, description: "Value when the run doesn't give one; may use `${{ run.* }}` and `${{ env.* }}`."),
        FieldSpec("required", .boolean, .defaultValue("false"), description: "Whether a run must give a value (no default)."),
        FieldSpec("pattern", .string, description: "Regular expression a string value must match in full."),
        FieldSpec("values", .list(.scalar), description: "The only values allowed."),
        FieldSpec("description", .string, description: "What the param is for."),
    ]

    public static let topLevel: [FieldSpec] = [
        FieldSpec(
            "pipeline", .identifier, .required, description: "The pipeline's id; must match the file name.",
            example: "openai_usage_daily"),
        FieldSpec("description", .string, description: "What the pipeline does."),
        FieldSpec(
            "schedule",
            .object([
                FieldSpec(
                    "cron", .cron, .required, description: "Five-field cron or @hourly, @daily, @weekly, @monthly, @yearly.",
                    example: "15 2 * * *"),
                FieldSpec("timezone", .timezone, .defaultValue("UTC"), description: "IANA timezone the cron is read in."),
                FieldSpec(
                    "catchup", .duration, description: "Run missed fire times up to this far back (without it, only the latest one).", example: "7d"),
                FieldSpec("max_active_runs", .integer(1...1_000), .defaultValue("1"), description: "Runs of this pipeline at once."),
            ]), description: "When the scheduler runs the pipeline."),
        FieldSpec("params", .map(.object(paramFields)), description: "Inputs a run can set (`--param k=v`), read as `${{ params.k }}`."),
        FieldSpec(
            "timeout", .duration,
            description:
                "Longest the whole run may take, its steps and the wait for tables other runs hold: past it, running steps are cancelled and the run fails with `run_timed_out`, publishing nothing.",
            example: "2h"),
        FieldSpec(
            "defaults",
            .object([
                timeout,
                retry,
                FieldSpec("max_parallel", .integer(1...256), .defaultValue("4"), description: "Steps run at once."),
            ]), description: "Settings every step inherits."),
        FieldSpec(
            "secrets",
            .object([
                FieldSpec("ttl", .duration, .defaultValue("15m"), description: "How long decrypted secrets live unless a step says otherwise.")
            ]), description: "Secret handling for the run."),
        FieldSpec("steps", .list(.object(stepFields)), .required, description: "The steps; order in the file does not matter, the DAG does."),
        FieldSpec(
            "on_failure", .list(.object(handlerFields)),
            description:
                "Handlers run once, in order, when the run fails (not when it is cancelled), with the failure in `run.failed_step`, `run.error_code`, `run.error`."
        ),
    ]

    /// Fields of `run.*` that expressions may read.
    public static let runFields: [(name: String, description: String)] = [
        ("id", "The run's id."),
        ("logical_date", "The day (YYYY-MM-DD) the run is for; for scheduled runs, the interval it covers."),
        ("logical_time", "The instant the run is for, ISO 8601."),
        ("pipeline", "The pipeline id."),
        ("org", "The org (tenant) the run belongs to."),
        ("trigger", "schedule, api, webhook, cli or backfill."),
        ("request_id", "The HTTP request that started the run, if any."),
        ("attempt", "Which try of the current step this is."),
    ]

    /// Fields of `run.*` that say why the run failed: set only for `on_failure` handlers, so
    /// lint refuses them anywhere else.
    public static let failureRunFields: [(name: String, description: String)] = [
        ("failed_step", "The id of the step that failed; empty when the run failed outside a step (publishing, the warehouse)."),
        (
            "error_code",
            "The failure's error code: the failed step's (`rate_limited`, `invalid_config` …), or `publish_failed`, `warehouse_unavailable`."
        ),
        ("error", "The failure's message, every secret masked."),
    ]
}
