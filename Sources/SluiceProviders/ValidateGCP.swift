import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `validate_gcp`: exchanges a JWT signed with the service account's key for an access token
/// and, when `required_permissions` are given, asks which of them the account holds on
/// `project`. Missing permissions make the outcome `partially_valid`; the step still succeeds.
public struct ValidateGCPProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateGCP }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let settings = ValidatorSettings(step, spec)
        let json = try settings.secret("service_account_json")
        var secrets = [json]
        do {
            let account = try ServiceAccountKey(json: json)
            let timeout = try settings.timeout()
            let tokenURL: URL
            if let configured = try settings.optionalURL("token_url") {
                tokenURL = configured
            } else if let uri = account.tokenURI {
                tokenURL = try ValidatorSettings.checkedURL(uri, field: "token_uri of service_account_json", at: step.config.location)
            } else {
                throw StepFailure.config("the service account has no token_uri; set 'token_url'", at: step.config.location)
            }
            let assertion = try account.assertion(scopes: try settings.texts("scopes"), audience: tokenURL.absoluteString, issuedAt: Date())
            secrets.append(assertion)

            var tokenRequest = ProviderRequest(provider: "Google's token endpoint", method: .POST, url: tokenURL, timeout: timeout)
            tokenRequest.headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
            tokenRequest.destination = settings.destination("token_url")
            tokenRequest.body = Data(
                ("grant_type=" + ValidateHTTPProcessor.queryEncoded("urn:ietf:params:oauth:grant-type:jwt-bearer")
                    + "&assertion=" + ValidateHTTPProcessor.queryEncoded(assertion)).utf8)
            let tokenResponse = try await ProviderHTTP.send(tokenRequest, logger: step.logger)
            guard tokenResponse.isSuccess else { throw Self.tokenFailure(tokenResponse) }
            guard let token = tokenResponse.jsonObject?["access_token"] as? String, !token.isEmpty else {
                throw tokenResponse.badBody("JSON with an access_token")
            }
            secrets.append(token)

            var required: [String] = []
            for permission in try settings.texts("required_permissions") where !required.contains(permission) {
                required.append(permission)
            }
            guard !required.isEmpty else {
                return ValidatorOutcome.valid.outputs(httpStatus: tokenResponse.status, extra: ["missing_permissions": .string("")])
            }
            let project = try settings.text("project")
            guard
                let segment = project.addingPercentEncoding(
                    withAllowedCharacters: ValidateHTTPProcessor.unreserved.union(CharacterSet(charactersIn: ":")))
            else {
                throw StepFailure.config("'project' is not a project id", at: step.config["project"]?.location)
            }
            var testRequest = ProviderRequest(
                provider: "Cloud Resource Manager", method: .POST,
                url: try settings.url("resource_manager_url", appending: "/v1/projects/\(segment):testIamPermissions"),
                timeout: timeout)
            testRequest.headers = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json"), ("Accept", "application/json")]
            testRequest.destination = settings.destination("resource_manager_url")
            testRequest.body = try JSONSerialization.data(withJSONObject: ["permissions": required])
            let answer = try await ProviderHTTP.send(testRequest, logger: step.logger)
            let granted: [String]
            switch answer.status {
            case 200...299:
                guard let object = answer.jsonObject else { throw answer.badBody("JSON") }
                // Google leaves `permissions` out when the account holds none of them.
                granted = object["permissions"] as? [String] ?? []
            case 403:
                // The account can't see the project at all: it holds none of the permissions.
                step.logger.warning(
                    "testIamPermissions refused: counting every permission as missing",
                    metadata: [
                        "provider": "Cloud Resource Manager", "http_status": "403", "detail": "\(answer.errorDetail ?? "")",
                    ])
                granted = []
            default:
                throw answer.failure(checking: "the service account's token")
            }
            let missing = required.filter { !granted.contains($0) }
            let outcome: ValidatorOutcome = missing.isEmpty ? .valid : .partiallyValid
            return outcome.outputs(httpStatus: answer.status, extra: ["missing_permissions": .string(missing.joined(separator: ","))])
        } catch let failure as StepFailure {
            throw failure.masking(secrets)
        }
    }

    /// A token endpoint's refusal. `invalid_grant` means the key no longer works (disabled,
    /// deleted, expired, or a clock far off); `invalid_client` and `unauthorized_client`, like
    /// 401 and 403, that it never did.
    static func tokenFailure(_ response: ProviderResponse) -> StepFailure {
        let detail = response.errorDetail.map { " (\($0))" } ?? ""
        switch response.oauthError {
        case "invalid_grant":
            return .validator(
                .credentialExpired,
                """
                \(response.provider) refused the service account's signed JWT: HTTP \(response.status)\(detail); its key is \
                disabled, deleted or expired (or this machine's clock is off)
                """)
        case "invalid_client", "unauthorized_client":
            return .validator(.credentialInvalid, "\(response.provider) refused the service account: HTTP \(response.status)\(detail)")
        default:
            return response.failure(checking: "the service account")
        }
    }
}
