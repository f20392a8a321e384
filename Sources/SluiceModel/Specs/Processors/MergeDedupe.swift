extension ProcessorSpec {
    /// Merges staged rows into a target table on a key.
    public static let mergeDedupe = ProcessorSpec(
        name: "merge_dedupe",
        summary: "Merges staged rows into a target on a key: latest wins, first wins, or whole partitions replaced.",
        description: """
            Duplicates within one batch collapse first (by `latest_by` for latest_wins). Rows whose \
            key is null are refused with a count, never merged silently. Adds lineage columns \
            x_run_id, x_pipeline and x_ingested_at unless `lineage: false`.
            """,
        fields: [
            FieldSpec(
                "from", .identifier, .required, role: .readsTable,
                description: "Staging table to merge from.", example: "genai_usage_raw"),
            FieldSpec(
                "into", .identifier, .required, role: .writesTable,
                description: "Target table.", example: "genai_usage"),
            FieldSpec(
                "key", .list(.identifier), .required, role: .columns(ofTablesAt: ["from"]),
                description: "Columns that identify a row.", example: "[request_id]"),
            FieldSpec(
                "strategy", .enumeration(["latest_wins", "first_wins", "replace_partitions"]), .defaultValue("latest_wins"),
                description: "How a key that exists already is resolved."),
            FieldSpec(
                "latest_by", .identifier, role: .columns(ofTablesAt: ["from"]),
                description: "Column whose larger value wins (latest_wins).", example: "request_ts"),
            FieldSpec(
                "partition_by", .identifier, role: .columns(ofTablesAt: ["from"]),
                description: "Column whose partitions are replaced whole (replace_partitions).", example: "usage_date"),
            FieldSpec(
                "lineage", .boolean, .defaultValue("true"),
                description: "Add x_run_id, x_pipeline and x_ingested_at."),
        ],
        rules: [
            .required("latest_by", when: "strategy", equals: ["latest_wins"]),
            .required("partition_by", when: "strategy", equals: ["replace_partitions"]),
        ],
        outputs: [
            OutputSpec("rows_inserted", "integer", "New keys."),
            OutputSpec("rows_updated", "integer", "Existing keys replaced by a newer row."),
            OutputSpec("rows_unchanged", "integer", "Rows that lost to what was there."),
            OutputSpec("duplicates_collapsed", "integer", "Rows dropped as duplicates inside the batch."),
        ],
        example: """
            - id: dedupe
              uses: merge_dedupe
              with: { from: genai_usage_raw, into: genai_usage, key: [request_id], latest_by: request_ts }
            """,
        resultColumns: { config, columnsOf in
            guard let from = config["from"]?.scalarText, let columns = columnsOf(from) else { return nil }
            let lineage = config["lineage"]?.bool ?? true
            return columns + (lineage ? lineageColumns.filter { !columns.contains($0) } : [])
        },
        capabilities: [.warehouse]
    )

    /// Columns merge_dedupe adds to every target unless `lineage: false`.
    public static let lineageColumns = ["x_run_id", "x_pipeline", "x_ingested_at"]
}
