extension ProcessorSpec {
    /// Group-by with measures and lookup joins.
    public static let aggregate = ProcessorSpec(
        name: "aggregate",
        summary: "Group-by with measures and lookup joins, declared in YAML (checked against schemas) or given as a SQL procedure.",
        description: """
            Compiles `group_by`, `measures`, `join` and `where` into one statement whose every \
            identifier is checked against the tables' schemas, or runs `procedure`. `mode` decides \
            how results land: replace the partitions they cover, merge on the group-by key, or \
            replace the table.
            """,
        fields: [
            FieldSpec("from", .identifier, .required, role: .readsTable, description: "Table to aggregate.", example: "genai_usage"),
            FieldSpec(
                "join",
                .list(
                    .object([
                        FieldSpec("table", .identifier, .required, role: .readsTable, description: "Lookup table.", example: "genai_pricing"),
                        FieldSpec(
                            "on", .list(.identifier), .required, role: .sharedColumns(ofTablesAt: ["from", ".table"]),
                            description: "Columns both tables share.", example: "[provider, model]"),
                        FieldSpec("type", .enumeration(["left", "inner"]), .defaultValue("left"), description: "Join type."),
                    ])), description: "Lookup joins, one or a list."),
            FieldSpec(
                "where", .string, role: .sqlOver(tablesAt: ["from", "join.table"]),
                description: "Row filter, a SQL expression over the columns.", example: "usage_date >= :since"),
            FieldSpec(
                "group_by", .list(.identifier), role: .columns(ofTablesAt: ["from", "join.table"]),
                description: "Columns to group by.", example: "[usage_date, org_slug, provider, model]"),
            FieldSpec(
                "measures", .map(.string), role: .sqlOver(tablesAt: ["from", "join.table"]),
                description: "Output column → aggregate SQL expression.", example: "{ requests: \"count(*)\" }"),
            FieldSpec(
                "procedure", .string, role: .procedureFile,
                description: "A SQL procedure instead of group_by and measures.", example: "procedures/daily_costs.sql"),
            FieldSpec("params", .map(.scalar), description: "Named parameters for `where` or the procedure."),
            FieldSpec("into", .identifier, .required, role: .writesTable, description: "Result table.", example: "genai_costs_daily"),
            FieldSpec(
                "mode", .enumeration(["replace_partitions", "merge", "replace"]), .defaultValue("replace"),
                description: "How results land in `into`."),
            FieldSpec(
                "partition_by", .identifier, role: .columns(ofTablesAt: ["from", "join.table"]),
                description: "Group-by column whose partitions are replaced (replace_partitions).", example: "usage_date"),
        ],
        rules: [
            .exactlyOne(of: ["procedure", "measures"]),
            .required("group_by", when: "measures", equals: ["*"]),
            .required("partition_by", when: "mode", equals: ["replace_partitions"]),
            .memberOf("partition_by", list: "group_by"),
        ],
        outputs: [
            OutputSpec("rows_written", "integer", "Result rows written.")
        ],
        example: """
            - id: daily_costs
              uses: aggregate
              with:
                from: genai_usage
                join: { table: genai_pricing, on: [provider, model] }
                group_by: [usage_date, org_slug, provider, model]
                measures:
                  requests: count(*)
                  cost_usd: sum(input_tokens * input_price_per_1m / 1e6 + output_tokens * output_price_per_1m / 1e6)
                into: genai_costs_daily
                mode: replace_partitions
                partition_by: usage_date
            """,
        resultColumns: { config, _ in
            guard let measures = config["measures"]?.mapping else { return nil }
            let groups = config["group_by"].map { $0.sequence ?? [$0] } ?? []
            return groups.compactMap(\.scalarText) + measures.compactMap(\.key.scalarText)
        },
        derivesFromTables: true,
        capabilities: [.warehouse]
    )
}
