extension ProcessorSpec {
    /// How `notify` retries when neither its step nor the pipeline's `defaults` set a policy:
    /// three tries, a second or two apart at first, so a webhook's brief outage loses no alert.
    public static let notifyRetry = RetryPolicy(
        attempts: 3, backoff: .exponential, initialDelay: .seconds(1),
        maxDelay: .seconds(30), jitter: true)

    /// The most characters of an error or a `message` a notification carries; longer text is cut
    /// and ends with `…`.
    public static let notifyTextLimit = 1_000

    /// Posts a sanitized run summary.
    public static let notify = ProcessorSpec(
        name: "notify",
        summary: "Posts a sanitized run summary to a webhook (JSON or Slack format), retried with backoff.",
        description: """
            Used in `on_failure` (or as a step), it POSTs one JSON document to `url`: the pipeline, \
            org, run id and logical date, and for a failed run the failed step, its error code and \
            its message. Every secret the run holds is masked in all of it, and the error and \
            `message` are cut at \(notifyTextLimit) characters. `format: json` sends the summary's \
            fields (pipeline, org, run_id, logical_date, state, failed_step, error_code, error, \
            failed_at, message, link, summary); `format: slack` sends `{"text": …}` for a Slack \
            incoming webhook. The URL is never logged or shown in messages (a Slack webhook URL is \
            a secret); messages name only its host.

            A 2xx answer succeeds with `http_status`. 429 (notify_rate_limited), 5xx, a timeout or \
            a refused or dropped connection (notify_unavailable) are transient: retried, no sooner \
            than Retry-After. Any other status, redirects included, is notify_rejected and not \
            retried; an empty or malformed `url` (an unset environment variable) is invalid_config. \
            With no `retry` on the step or in `defaults`, notify tries 3 times, 1s to 30s apart.
            """,
        fields: [
            FieldSpec(
                "url", .string, .required, secret: .allowed, destination: true,
                description: "Webhook URL (http or https); often itself a secret. Never logged.",
                example: "${{ env.ALERT_WEBHOOK_URL }}"),
            FieldSpec(
                "format", .enumeration(["json", "slack"]), .defaultValue("json"),
                description: "Body format: the summary's fields as JSON, or Slack's `{\"text\": …}`."),
            FieldSpec("message", .string, description: "Extra text for the summary (secrets masked, cut at \(notifyTextLimit) characters)."),
            FieldSpec(
                "link", .string,
                description:
                    "Link to the run in your UI; left out unless it is an absolute http or https URL. Default: <public_url>/v1/runs/<run id> when the project sets public_url (sluice.yml or SLUICE_PUBLIC_URL), else none."
            ),
            FieldSpec(
                "request_timeout", .duration, .defaultValue(DurationText.format(defaultRequestTimeout)),
                description: "How long one attempt waits for the webhook's whole answer."),
        ],
        outputs: [
            OutputSpec("http_status", "integer", "The webhook's HTTP status.")
        ],
        example: """
            on_failure:
              - uses: notify
                with: { url: "${{ env.ALERT_WEBHOOK_URL }}", format: slack }
            """,
        defaultRetry: notifyRetry,
        capabilities: [.http]
    )
}
