import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `validate_anthropic`: lists the models (`check: models`) or asks for one token
/// (`check: messages`) with the key in `x-api-key`.
public struct ValidateAnthropicProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateAnthropic }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let settings = ValidatorSettings(step, spec)
        let key = try settings.headerSafeSecret("api_key")
        do {
            let check = try settings.text("check")
            let timeout = try settings.timeout()
            var request: ProviderRequest
            switch check {
            case "models":
                request = ProviderRequest(
                    provider: "Anthropic", method: .GET, url: try settings.url("base_url", appending: "/v1/models"),
                    timeout: timeout)
            case "messages":
                request = ProviderRequest(
                    provider: "Anthropic", method: .POST, url: try settings.url("base_url", appending: "/v1/messages"),
                    timeout: timeout)
                let body: [String: Any] = [
                    "model": try settings.text("model"),
                    "max_tokens": 1,
                    "messages": [["role": "user", "content": "ping"]],
                ]
                request.body = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
                request.headers.append(("content-type", "application/json"))
            default:
                throw StepFailure.config("'check' must be models or messages, not \(shown(check))", at: step.config["check"]?.location)
            }
            request.destination = settings.destination("base_url")
            request.headers += [("x-api-key", key), ("anthropic-version", try settings.text("api_version")), ("accept", "application/json")]
            let response = try await ProviderHTTP.send(request, logger: step.logger)
            guard response.isSuccess else { throw response.failure(checking: "the key") }
            guard let json = response.jsonObject else { throw response.badBody("JSON") }
            if check == "models", !(json["data"] is [Any]) { throw response.badBody("a JSON models list") }
            return ValidatorOutcome.valid.outputs(httpStatus: response.status)
        } catch let failure as StepFailure {
            throw failure.masking([key])
        }
    }
}
