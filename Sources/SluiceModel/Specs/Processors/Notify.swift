extension ProcessorSpec {
    /// Posts a sanitized run summary.
    public static let notify = ProcessorSpec(
        name: "notify",
        summary: "Posts a sanitized run summary to a webhook (JSON or Slack format), retried with backoff.",
        description: """
            Sends pipeline, org, run id, the failed step and its error code and message, with every \
            secret value masked. Used in `on_failure`, or as a step.
            """,
        fields: [
            FieldSpec("url", .string, .required, secret: .allowed,
                      description: "Webhook URL; often itself a secret.", example: "${{ env.ALERT_WEBHOOK_URL }}"),
            FieldSpec("format", .enumeration(["json", "slack"]), .defaultValue("json"), description: "Body format."),
            FieldSpec("message", .string, description: "Extra text for the summary."),
            FieldSpec("link", .string, description: "Link to the run in your UI."),
            FieldSpec("request_timeout", .duration, .defaultValue("10s"), description: "Per-attempt timeout."),
        ],
        outputs: [
            OutputSpec("http_status", "integer", "The webhook's HTTP status."),
        ],
        example: """
            on_failure:
              - uses: notify
                with: { url: "${{ env.ALERT_WEBHOOK_URL }}", format: slack }
            """
    )
}
