extension ProcessorSpec {
    static let checkCommon: [FieldSpec] = [
        FieldSpec("name", .identifier, description: "Name stored with the result; defaults to type and column."),
        FieldSpec(
            "severity", .enumeration(["error", "warn"]),
            description: "Overrides the step's severity for this check."),
    ]
    static let checkColumn = FieldSpec(
        "column", .identifier, .required, role: .columns(ofTablesAt: ["table"]),
        description: "Column checked.")

    /// Data tests whose results are stored per run.
    public static let validateData = ProcessorSpec(
        name: "validate_data",
        summary: "Data tests (not_null, unique, accepted_values, range, row_count, freshness, custom SQL), stored per run.",
        description: """
            Runs each check against the table (staged rows of this run included) and stores every \
            result with the run. A failing check fails the step unless its severity is warn.
            """,
        fields: [
            FieldSpec("table", .identifier, .required, role: .readsTable, description: "Table to test.", example: "genai_usage"),
            FieldSpec(
                "checks",
                .list(
                    .variants(
                        discriminator: "type",
                        [
                            "not_null": checkCommon + [checkColumn],
                            "unique": checkCommon + [
                                FieldSpec(
                                    "columns", .list(.identifier), .required, role: .columns(ofTablesAt: ["table"]),
                                    description: "Columns that together must be unique.")
                            ],
                            "accepted_values": checkCommon + [
                                checkColumn,
                                FieldSpec("values", .list(.scalar), .required, description: "The values allowed."),
                            ],
                            "range": checkCommon + [
                                checkColumn,
                                FieldSpec("min", .scalar, description: "Smallest value allowed."),
                                FieldSpec("max", .scalar, description: "Largest value allowed."),
                            ],
                            "row_count": checkCommon + [
                                FieldSpec("min", .integer(0...Int.max), description: "Fewest rows allowed."),
                                FieldSpec("max", .integer(0...Int.max), description: "Most rows allowed."),
                            ],
                            "freshness": checkCommon + [
                                checkColumn,
                                FieldSpec("max_age", .duration, .required, description: "Newest value may be at most this old."),
                            ],
                            "sql": checkCommon + [
                                FieldSpec(
                                    "procedure", .string, .required, role: .procedureFile,
                                    description: "A query returning the offending rows; the check passes when it returns none."),
                                FieldSpec("params", .map(.scalar), description: "Named parameters."),
                            ],
                        ])), .required, description: "The checks, each with a `type`."),
            FieldSpec(
                "severity", .enumeration(["error", "warn"]), .defaultValue("error"),
                description: "Whether failing checks fail the step (error) or only are recorded (warn)."),
        ],
        outputs: [
            OutputSpec("checks_passed", "integer", "Checks that passed."),
            OutputSpec("checks_failed", "integer", "Checks that failed."),
        ],
        example: """
            - id: test_usage
              uses: validate_data
              with:
                table: genai_usage
                checks:
                  - { type: not_null, column: request_id }
                  - { type: unique, columns: [request_id] }
                  - { type: range, column: input_tokens, min: 0 }
            """,
        capabilities: [.warehouse, .stepRecords]
    )
}
