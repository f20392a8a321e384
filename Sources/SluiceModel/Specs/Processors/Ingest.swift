extension ProcessorSpec {
    static let fileSourceFields: [FieldSpec] = [
        FieldSpec(
            "path", .string, .required, description: "File to read, relative to the project; gzip-compressed is read as it is.",
            example: "examples/data/openai_usage_${{ run.logical_date }}.csv")
    ]

    /// Streams a source into a run-scoped staging table.
    public static let ingest = ProcessorSpec(
        name: "ingest",
        summary: "Streams CSV, JSON Lines, JSON arrays, an HTTP API or a SQL query into a staging table typed by a schema.",
        description: """
            Reads the source in batches (memory stays bounded by `batch_size`), types every value \
            by the table's schema, and writes into a run-scoped staging table that becomes visible \
            only when the run publishes. Bad rows fail the step, are skipped, or are quarantined \
            with their line and reason, per `on_bad_row`. An HTTP source can paginate and resume \
            from a cursor that commits with the data; a `link_header` next page is followed only \
            on the scheme, host and port of `url` (else http_link_other_origin), since every page \
            carries the headers.
            """,
        fields: [
            FieldSpec(
                "source",
                .variants(
                    discriminator: "format",
                    [
                        "csv": fileSourceFields + [
                            FieldSpec("delimiter", .string, .defaultValue(","), description: "Field separator (one character)."),
                            FieldSpec("header", .boolean, .defaultValue("true"), description: "Whether the first line names the columns."),
                        ],
                        "jsonl": fileSourceFields,
                        "json": fileSourceFields + [
                            FieldSpec(
                                "items", .string, description: "JSON pointer to the array of records, if not the document itself.",
                                example: "/data")
                        ],
                        "http": [
                            FieldSpec(
                                "url", .string, .required, secret: .allowed, destination: true,
                                description: "First page to fetch; later pages stay on its scheme, host and port."),
                            FieldSpec("method", .enumeration(["GET", "POST"]), .defaultValue("GET"), description: "HTTP method."),
                            FieldSpec(
                                "headers", .map(.string, anyKeys: true), secret: .allowed,
                                description: "Request headers; values may carry secrets.",
                                example: "{ Authorization: \"Bearer ${{ secrets.openai_key }}\" }"),
                            FieldSpec("items", .string, .defaultValue("/data"), description: "JSON pointer to the records in each page."),
                            FieldSpec(
                                "pagination",
                                .object([
                                    FieldSpec(
                                        "type", .enumeration(["none", "cursor", "page", "link_header"]), .defaultValue("none"),
                                        description: "How the next page is found."),
                                    FieldSpec(
                                        "cursor_path", .string, description: "JSON pointer to the next cursor in a page.",
                                        example: "/next_page"),
                                    FieldSpec("cursor_param", .string, description: "Query parameter that carries the cursor."),
                                    FieldSpec("page_param", .string, .defaultValue("page"), description: "Query parameter for page numbers."),
                                    FieldSpec("page_size", .integer(1...100_000), description: "Records per page to ask for."),
                                    FieldSpec(
                                        "max_pages", .integer(1...1_000_000), .defaultValue("10000"),
                                        description: "The most pages to fetch; `on_limit` says what happens when a next page remains."),
                                    FieldSpec(
                                        "on_limit", .enumeration(["fail", "warn"]), .defaultValue("fail"),
                                        description:
                                            "When `max_pages` pages were read and the API still has a next page: fail the step (`page_limit_reached`, nothing published), or keep what was read and log a warning."
                                    ),
                                ]), description: "How pages follow each other."),
                            FieldSpec(
                                "request_timeout", .duration, .defaultValue("30s"),
                                description: "How long to wait for one page's whole answer before the attempt fails (transient)."),
                            FieldSpec(
                                "incremental",
                                .object([
                                    FieldSpec(
                                        "column", .identifier, .required, role: .columns(ofTablesAt: ["table"]),
                                        description: "Column whose largest value is the cursor."),
                                    FieldSpec("param", .string, .required, description: "Query parameter that receives the stored cursor."),
                                    FieldSpec("initial", .string, description: "Cursor for the very first run."),
                                ]), description: "Resume from the last committed cursor; the cursor commits with the data."),
                        ],
                        "sql": [
                            FieldSpec(
                                "procedure", .string, .required, role: .procedureFile,
                                description: "Query in procedures/ whose rows are ingested.", example: "procedures/recent_usage.sql"),
                            FieldSpec("params", .map(.scalar), description: "Named parameters bound to the query."),
                        ],
                    ]), .required, description: "Where rows come from; `format` picks the shape."),
            FieldSpec(
                "table", .identifier, .required, role: .writesTable,
                description: "Staging table the rows land in.", example: "genai_usage_raw"),
            FieldSpec(
                "schema", .string, .required, role: .schemaFile,
                description: "Schema file that types the table.", example: "schemas/genai_usage_raw.json"),
            FieldSpec(
                "columns",
                .map(
                    .shortOrObject(
                        .string,
                        [
                            FieldSpec("from", .string, description: "Source field name, where it differs from the column's."),
                            FieldSpec(
                                "format", .timeFormat,
                                description: "How the source writes a DATE, TIMESTAMP or DATETIME, when not ISO 8601 (strftime notation).",
                                example: "\"%m/%d/%Y\""),
                            FieldSpec(
                                "timezone", .timezone, description: "Zone of TIMESTAMP values written without one (default UTC).",
                                example: "America/New_York"),
                        ])),
                description:
                    "Schema column → source field name where they differ, or `{ from, format, timezone }` to also say how the source writes its dates and times (overrides the schema file's `format`).",
                example: "{ charge_day: { from: ChargePeriodStart, format: \"%m/%d/%Y\" } }"),
            FieldSpec(
                "on_bad_row", .enumeration(["fail", "skip", "quarantine"]), .defaultValue("fail"),
                description: "What a row that does not fit the schema does: fail the step, be skipped (counted), or be kept with its reason."),
            FieldSpec(
                "max_bad_rows", .countOrPercent, .defaultValue("10%"),
                description:
                    "Most bad rows (skipped or quarantined) the step accepts, as a count or a share of the rows read; past it the step fails with `too_many_bad_rows`, and so does a source whose every row is bad."
            ),
            FieldSpec(
                "batch_size", .integer(1...1_000_000), .defaultValue("10000"),
                description: "Rows per insert batch; bounds memory."),
        ],
        outputs: [
            OutputSpec("rows_read", "integer", "Rows read from the source."),
            OutputSpec("rows_written", "integer", "Rows written to the staging table."),
            OutputSpec("rows_skipped", "integer", "Bad rows skipped."),
            OutputSpec("rows_quarantined", "integer", "Bad rows quarantined."),
            OutputSpec("bytes_read", "integer", "Bytes read from the source (a gzip file's after decompressing; 0 for sql)."),
            OutputSpec("pages_read", "integer", "Pages fetched from an HTTP source (0 for other sources)."),
        ],
        example: """
            - id: load_usage
              uses: ingest
              with:
                source: { format: csv, path: "examples/data/openai_usage.csv" }
                table: genai_usage_raw
                schema: schemas/genai_usage_raw.json
                on_bad_row: quarantine
            """,
        capabilities: [.warehouse, .http, .stepRecords],
        ingestedRowsOutput: "rows_written"
    )
}
