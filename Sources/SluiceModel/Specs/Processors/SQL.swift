extension ProcessorSpec {
    /// Runs a SQL procedure.
    public static let sql = ProcessorSpec(
        name: "sql",
        summary: "Runs a procedure from procedures/ with bound named parameters.",
        description: """
            The procedure's statements run inside the run's transaction scope; `:name` parameters \
            are bound from `params`, never spliced. The tables it reads and writes (found by \
            preparing it) become DAG edges.
            """,
        fields: [
            FieldSpec(
                "procedure", .string, .required, role: .procedureFile,
                description: "SQL file in procedures/.", example: "procedures/focus_costs.sql"),
            FieldSpec("params", .map(.scalar), description: "Named parameters.", example: "{ billing_day: \"${{ run.logical_date }}\" }"),
        ],
        outputs: [
            OutputSpec("rows_affected", "integer", "Rows the statements changed.")
        ],
        example: """
            - id: build_focus
              uses: sql
              with:
                procedure: procedures/focus_costs.sql
                params: { billing_day: "${{ run.logical_date }}" }
            """,
        derivesFromTables: true,
        capabilities: [.warehouse]
    )
}
