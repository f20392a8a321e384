import Foundation
import Testing

@testable import SluiceModel

/// `untrusted-secret-destination`: in a step that carries a secret, the fields that decide
/// where the request goes must be the author's or the operator's choice. The fixture
/// (Fixtures/lint/project/pipelines/untrusted_secret_destination.yml) pins the messages;
/// these pin where the rule stays quiet and which fields it guards.
struct UntrustedSecretDestinationTests {
    func findings(_ text: String) -> [String] {
        loadPipeline(text).diagnostics.filter { $0.rule == .untrustedSecretDestination }.map(\.description)
    }

    @Test func envAndLiteralDestinationsAreFineInStepsThatCarryASecret() {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 5m }
            params:
              day: { type: date, default: "2026-03-01" }
            steps:
              - id: key
                uses: kms_decrypt
                with: { credential: openai/admin_key, as: openai_key }
              - id: sa
                uses: kms_decrypt
                with: { credential: gcp/sa, as: gcp_sa }
              - id: check
                uses: validate_openai
                with: { api_key: "${{ secrets.openai_key }}", base_url: "${{ env.OPENAI_BASE_URL || 'https://api.openai.com' }}" }
              - id: check_gcp
                uses: validate_gcp
                with:
                  service_account_json: "${{ secrets.gcp_sa }}"
                  token_url: "${{ env.GCP_TOKEN_URL }}"
                  resource_manager_url: https://cloudresourcemanager.googleapis.com
              - id: check_http
                uses: validate_http
                with: { url: "https://api.example.com/v1/${{ run.org }}/me", secret: "${{ secrets.openai_key }}" }
              - id: load
                uses: ingest
                with:
                  source:
                    format: http
                    url: "${{ env.USAGE_BASE_URL || 'https://llm-gateway.example.com' }}/v1/usage?day=${{ run.logical_date }}"
                    headers: { Authorization: "Bearer ${{ secrets.openai_key }}", X-Day: "${{ params.day }}" }
                  table: usage_raw
                  schema: schemas/usage_raw.json
            """)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
    }

    @Test func aCredentialFromTheEnvironmentIsCarriedToo() {
        let found = findings(
            """
            pipeline: test_pipeline
            defaults: { timeout: 5m }
            params:
              base: { type: string, default: "https://api.example.com" }
            steps:
              - id: load
                uses: ingest
                with:
                  source:
                    format: http
                    url: "${{ params.base }}/v1/usage"
                    headers: { X-Api-Token: "${{ env.API_TOKEN }}" }
                  table: usage_raw
                  schema: schemas/usage_raw.json
            """)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.contains("'source.url' decides where the step sends env.API_TOKEN, but it reads params.base") == true, "\(found)")
    }

    @Test func aParamURLIsFineInAStepThatCarriesNoSecret() {
        #expect(
            findings(
                """
                pipeline: test_pipeline
                defaults: { timeout: 5m }
                params:
                  feed: { type: string, default: "https://feeds.example.com" }
                  hook: { type: string }
                steps:
                  - id: load
                    uses: ingest
                    with:
                      source: { format: http, url: "${{ params.feed }}/v1/prices", headers: { Accept: application/json } }
                      table: prices_raw
                      schema: schemas/prices_raw.json
                  - id: tell
                    uses: notify
                    with: { url: "${{ params.hook }}", message: "${{ steps.load.outputs.rows_read }} prices" }
                """) == [])
    }

    @Test func aRequestIDOrAFailureInAHandlersURLIsRefusedWhenTheHandlerCarriesASecret() {
        #expect(
            findings(
                """
                pipeline: test_pipeline
                defaults: { timeout: 5m }
                steps:
                  - id: key
                    uses: kms_decrypt
                    with: { credential: slack/hook_path, as: hook_path }
                on_failure:
                  - uses: notify
                    with: { url: "https://hooks.${{ run.request_id }}/${{ secrets.hook_path }}?why=${{ run.error }}" }
                """) == [
                    "pipelines/test_pipeline.yml:9:18: error: on_failure handler 1 (notify): 'url' decides where the step sends secrets.hook_path, "
                        + "but it reads run.request_id (the caller of the API chooses it in X-Request-Id) and run.error (it can quote the data or "
                        + "the answer that failed); take it from the operator's environment or write it in the file, e.g. "
                        + "${{ env.URL || 'https://…' }} (|| gives the first non-empty value) [untrusted-secret-destination]"
                ])
    }

    @Test func everyFieldThatAddressesARequestIsADestination() {
        func field(_ spec: ProcessorSpec, _ name: String, variant: String? = nil) -> FieldSpec? {
            if let variant {
                guard case .variants(_, let shapes) = spec.fields.first(where: { $0.name == "source" })?.type else { return nil }
                return shapes[variant]?.first { $0.name == name }
            }
            return spec.fields.first { $0.name == name }
        }
        #expect(field(.validateOpenAI, "base_url")?.destination == true)
        #expect(field(.validateAnthropic, "base_url")?.destination == true)
        #expect(field(.validateGCP, "token_url")?.destination == true)
        #expect(field(.validateGCP, "resource_manager_url")?.destination == true)
        #expect(field(.validateHTTP, "url")?.destination == true)
        #expect(field(.ingest, "url", variant: "http")?.destination == true)
        #expect(field(.notify, "url")?.destination == true)
        #expect(field(.validateOpenAI, "organization")?.destination == false)
        #expect(field(.ingest, "headers", variant: "http")?.destination == false)
    }
}
