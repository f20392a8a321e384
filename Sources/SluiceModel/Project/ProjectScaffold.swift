/// The files `sluice init` writes: a small project whose one pipeline ingests a CSV,
/// deduplicates it and rolls it up by day, and lints clean as written.
public struct ProjectScaffold: Sendable {
    public static let pipelineID = "daily_usage"

    public init() {}

    /// Relative path → content.
    public var files: [String: String] {
        [
            "pipelines/\(Self.pipelineID).yml": pipeline,
            "schemas/usage_raw.json": rawSchema,
            "schemas/usage.json": usageSchema,
            "schemas/usage_daily.json": dailySchema,
            "data/usage.csv": sampleData,
            ".gitignore": ".sluice/\n",
            ProjectSettings.fileName: settings,
            "README.md": readme,
        ]
    }

    private var pipeline: String {
        """
        pipeline: \(Self.pipelineID)
        description: Usage events, deduplicated by event id and rolled up per day and customer.
        schedule:
          cron: "0 3 * * *"
          timezone: UTC
        params:
          input: { type: string, default: data/usage.csv, description: CSV file to load }
        defaults:
          timeout: 5m
          retry: { attempts: 3, backoff: exponential, initial_delay: 2s, max_delay: 30s }
        steps:
          - id: load
            uses: ingest
            with:
              source: { format: csv, path: "${{ params.input }}" }
              table: usage_raw
              schema: schemas/usage_raw.json
              on_bad_row: quarantine
          - id: dedupe
            uses: merge_dedupe
            with: { from: usage_raw, into: usage, key: [event_id], latest_by: event_ts }
          - id: daily
            uses: aggregate
            with:
              from: usage
              group_by: [usage_date, customer]
              measures:
                events: count(*)
                quantity: sum(quantity)
              into: usage_daily
              mode: replace_partitions
              partition_by: usage_date
          - id: check
            uses: validate_data
            with:
              table: usage_daily
              checks:
                - { type: not_null, column: customer }
                - { type: range, column: quantity, min: 0 }

        """
    }

    private var rawSchema: String {
        """
        [
          {"name": "event_id", "type": "STRING", "mode": "REQUIRED", "description": "Unique id of the usage event."},
          {"name": "event_ts", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "When the event happened (UTC)."},
          {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "Day of the event."},
          {"name": "customer", "type": "STRING", "mode": "REQUIRED", "description": "Customer the usage belongs to."},
          {"name": "quantity", "type": "NUMERIC", "mode": "REQUIRED", "description": "Units used."}
        ]

        """
    }

    private var usageSchema: String {
        """
        {
          "table": "usage",
          "description": "Usage events, one row per event id, latest version wins.",
          "primary_key": ["event_id"],
          "partition_by": "usage_date",
          "fields": [
            {"name": "event_id", "type": "STRING", "mode": "REQUIRED", "description": "Unique id of the usage event."},
            {"name": "event_ts", "type": "TIMESTAMP", "mode": "REQUIRED", "description": "When the event happened (UTC)."},
            {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "Day of the event."},
            {"name": "customer", "type": "STRING", "mode": "REQUIRED", "description": "Customer the usage belongs to."},
            {"name": "quantity", "type": "NUMERIC", "mode": "REQUIRED", "description": "Units used."},
            {"name": "x_run_id", "type": "STRING", "description": "Run that last wrote the row."},
            {"name": "x_pipeline", "type": "STRING", "description": "Pipeline that last wrote the row."},
            {"name": "x_ingested_at", "type": "TIMESTAMP", "description": "When the row was last written."}
          ]
        }

        """
    }

    private var dailySchema: String {
        """
        {
          "table": "usage_daily",
          "description": "Usage per day and customer.",
          "primary_key": ["usage_date", "customer"],
          "partition_by": "usage_date",
          "fields": [
            {"name": "usage_date", "type": "DATE", "mode": "REQUIRED", "description": "Day."},
            {"name": "customer", "type": "STRING", "mode": "REQUIRED", "description": "Customer."},
            {"name": "events", "type": "INT64", "mode": "REQUIRED", "description": "Events that day."},
            {"name": "quantity", "type": "NUMERIC", "mode": "REQUIRED", "description": "Units used that day."}
          ]
        }

        """
    }

    private var sampleData: String {
        """
        event_id,event_ts,usage_date,customer,quantity
        e-0001,2026-01-05T09:15:00Z,2026-01-05,acme,12
        e-0002,2026-01-05T10:02:00Z,2026-01-05,globex,3.5
        e-0003,2026-01-05T11:40:00Z,2026-01-05,acme,7
        e-0002,2026-01-05T12:00:00Z,2026-01-05,globex,4.5
        e-0004,2026-01-06T08:30:00Z,2026-01-06,initech,20

        """
    }

    private var settings: String {
        """
        # Project settings. An environment variable SLUICE_<NAME> overrides each (SLUICE_ORGS=a,b).
        orgs: [default]   # the orgs (tenants) `sluice scheduler` creates scheduled runs for
        # public_url: https://sluice.example.com   # where `sluice serve` is reached; notify links runs there
        # inputs: { root: "data/{org}" }   # each org's input folder; with {org}, no org reads another's
        # network: { allow: [10.0.0.0/8] }   # private addresses that URLs from API/webhook params may reach

        """
    }

    private var readme: String {
        """
        # A Sluice project

        - `pipelines/` — one pipeline per file; `sluice plan \(Self.pipelineID)` shows its DAG.
        - `schemas/` — table schemas (BigQuery JSON schema format, optionally with table options).
        - `data/` — sample input.
        - `sluice.yml` — project settings: the orgs scheduled runs are created for, and where the server is reached.

        Run the pipeline now with `sluice run \(Self.pipelineID)`; `sluice scheduler` runs it at
        its cron time (`sluice scheduler --once` looks once and exits).

        Check everything with `sluice lint`; `sluice processors` lists what steps can use.

        """
    }
}
