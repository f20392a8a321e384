extension ProcessorSpec {
    static let validatorOutputs = [
        OutputSpec(
            "status", "string",
            "valid or partially_valid; the other outcomes (invalid, rate_limited, unavailable, expired) fail the step, and its stored reason starts with the outcome."
        ),
        OutputSpec("http_status", "integer", "The provider's HTTP status (of the last request)."),
    ]

    /// How long a validator waits for a provider when its step sets no `request_timeout`: the
    /// one place this default lives (the field's documented default is formatted from it).
    public static let defaultRequestTimeout: Duration = .seconds(10)

    static func timeoutField() -> FieldSpec {
        FieldSpec(
            "request_timeout", .duration, .defaultValue(DurationText.format(defaultRequestTimeout)),
            description: "How long to wait for the provider's whole answer before the check counts as unavailable.")
    }

    /// How every validator's answers become outcomes; the codes are listed in
    /// docs/pipeline-format.md ("Validator outcomes and error codes").
    static let validatorOutcomes = """
        Outcomes: 2xx is `valid` (the step succeeds with status and http_status). 401 and 403 are \
        `invalid`: the step fails with credential_invalid and is not retried. 429 is `rate_limited`, \
        not invalid: a transient failure (rate_limited) retried no sooner than Retry-After. 5xx, a \
        timeout, a refused or dropped connection are `unavailable`: transient (provider_unavailable). \
        A success whose body is not the JSON expected is provider_bad_response (transient); any other \
        status is provider_unexpected_status (permanent). Redirects are not followed, so a key never \
        travels to another address.
        """

    /// Checks an OpenAI API key.
    public static let validateOpenAI = ProcessorSpec(
        name: "validate_openai",
        summary: "Checks an OpenAI API key against the API (valid, invalid, rate limited, unavailable).",
        description: """
            Calls `GET {base_url}/v1/models` with the key as a bearer token (and OpenAI-Organization \
            when `organization` is set). The base URL is configurable for proxies and tests.
            """ + "\n\n" + validatorOutcomes,
        fields: [
            FieldSpec(
                "api_key", .string, .required, secret: .required,
                description: "The key, from the vault.", example: "${{ secrets.openai_key }}"),
            FieldSpec(
                "base_url", .string, .defaultValue("https://api.openai.com"), destination: true,
                description: "API base URL."),
            FieldSpec("organization", .string, description: "Optional OpenAI organization id sent as OpenAI-Organization."),
            timeoutField(),
        ],
        outputs: validatorOutputs,
        example: """
            - id: validate_key
              uses: validate_openai
              needs: [decrypt_key]
              with: { api_key: "${{ secrets.openai_key }}" }
            """,
        capabilities: [.http]
    )

    /// Checks an Anthropic API key.
    public static let validateAnthropic = ProcessorSpec(
        name: "validate_anthropic",
        summary: "Checks an Anthropic API key (models list or a one-token Messages call).",
        description: """
            Sends the key as `x-api-key` with `anthropic-version`: `check: models` calls \
            `GET {base_url}/v1/models`; `check: messages` calls `POST {base_url}/v1/messages` with a \
            one-token request to `model` (it costs a token, and proves the key may generate). \
            The tokens the call spends (the answer's `usage`) are kept with the run and counted \
            against the org's `llm_budget` (sluice.yml `limits`): a call that could take the \
            month's spend past it is not sent, and the step fails with `budget_exceeded`.
            """ + "\n\n" + validatorOutcomes,
        fields: [
            FieldSpec(
                "api_key", .string, .required, secret: .required,
                description: "The key, from the vault.", example: "${{ secrets.anthropic_key }}"),
            FieldSpec(
                "base_url", .string, .defaultValue("https://api.anthropic.com"), destination: true,
                description: "API base URL."),
            FieldSpec("api_version", .string, .defaultValue("2023-06-01"), description: "The anthropic-version header."),
            FieldSpec(
                "check", .enumeration(["models", "messages"]), .defaultValue("models"),
                description: "Which endpoint proves the key works."),
            FieldSpec(
                "model", .string, .defaultValue("claude-haiku-4-5"), defaultNote: "for `check: messages`",
                description: "The model of the one-token request of `check: messages`."),
            timeoutField(),
        ],
        outputs: validatorOutputs + [
            OutputSpec("tokens_spent", "integer", "Tokens the `check: messages` call spent, input and output (0 for `check: models`).")
        ],
        example: """
            - id: validate_anthropic
              uses: validate_anthropic
              needs: [decrypt_anthropic]
              with: { api_key: "${{ secrets.anthropic_key }}" }
            """,
        capabilities: [.http, .stepRecords]
    )

    /// Checks a GCP service account.
    public static let validateGCP = ProcessorSpec(
        name: "validate_gcp",
        summary: "Checks a GCP service-account key by exchanging a signed JWT for a token; optionally tests permissions.",
        description: """
            Signs an RS256 JWT with the service account's private key and exchanges it at the token \
            endpoint (`token_url`, else the JSON's token_uri). With `required_permissions` and \
            `project`, asks `POST {resource_manager_url}/v1/projects/{project}:testIamPermissions`; when \
            some are missing the step still succeeds with status `partially_valid` and \
            missing_permissions (a 403 there counts every permission as missing). The token endpoint's \
            invalid_grant (key disabled, deleted or expired) is `expired`: credential_expired, not \
            retried. A service-account JSON that can't be read is credential_malformed.
            """ + "\n\n" + validatorOutcomes,
        fields: [
            FieldSpec(
                "service_account_json", .string, .required, secret: .required,
                description: "The service-account JSON, from the vault.", example: "${{ secrets.gcp_sa }}"),
            FieldSpec(
                "token_url", .string, destination: true, defaultNote: "the key's `token_uri`",
                description:
                    "OAuth token endpoint; by default the service account's token_uri (Google's keys say https://oauth2.googleapis.com/token). A key without one needs this field."
            ),
            FieldSpec(
                "scopes", .list(.string), .defaultValue("[https://www.googleapis.com/auth/cloud-platform]"),
                description: "OAuth scopes to request."),
            FieldSpec("project", .string, description: "Project whose IAM permissions are tested."),
            FieldSpec(
                "required_permissions", .list(.string),
                description: "Permissions the account must hold, e.g. bigquery.jobs.create."),
            FieldSpec(
                "resource_manager_url", .string, .defaultValue("https://cloudresourcemanager.googleapis.com"), destination: true,
                description: "Base URL for testIamPermissions."),
            timeoutField(),
        ],
        rules: [.required("project", when: "required_permissions", equals: ["*"])],
        outputs: validatorOutputs + [
            OutputSpec("missing_permissions", "string", "Comma-separated permissions the account lacks.")
        ],
        example: """
            - id: validate_sa
              uses: validate_gcp
              needs: [decrypt_sa]
              with:
                service_account_json: "${{ secrets.gcp_sa }}"
                project: finops-prod
                required_permissions: [bigquery.jobs.create]
            """,
        capabilities: [.http]
    )

    /// Checks any credential against an HTTP endpoint.
    public static let validateHTTP = ProcessorSpec(
        name: "validate_http",
        summary: "Checks a credential against any HTTP endpoint: where the secret goes and which status means valid.",
        description: """
            Sends one request with the secret as a bearer token, a header or a query parameter. A \
            status in `expected_status` is valid; the others are classified like the provider \
            validators' (its body is not read as JSON). Only `secret_in: query` puts the secret into \
            the URL; logs and errors show the URL without its query.
            """ + "\n\n" + validatorOutcomes,
        fields: [
            FieldSpec(
                "url", .string, .required, destination: true, description: "Endpoint to call.",
                example: "https://api.example.com/v1/me"),
            FieldSpec("method", .enumeration(["GET", "POST", "HEAD"]), .defaultValue("GET"), description: "HTTP method."),
            FieldSpec(
                "secret", .string, .required, secret: .required,
                description: "The credential, from the vault.", example: "${{ secrets.vendor_token }}"),
            FieldSpec(
                "secret_in", .enumeration(["bearer", "header", "query"]), .defaultValue("bearer"),
                description: "Where the secret goes."),
            FieldSpec("header_name", .string, .defaultValue("Authorization"), description: "Header for `secret_in: header`."),
            FieldSpec("query_param", .string, description: "Query parameter for `secret_in: query`."),
            FieldSpec(
                "expected_status", .list(.integer(100...599)), .defaultValue("[200]"),
                description: "Statuses that mean valid."),
            timeoutField(),
        ],
        rules: [.required("query_param", when: "secret_in", equals: ["query"])],
        outputs: validatorOutputs,
        example: """
            - id: validate_vendor
              uses: validate_http
              needs: [decrypt_vendor]
              with: { url: "https://api.example.com/v1/me", secret: "${{ secrets.vendor_token }}" }
            """,
        capabilities: [.http]
    )
}
