import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `validate_openai`: lists the models with the key. A list means the key works.
public struct ValidateOpenAIProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateOpenAI }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let settings = ValidatorSettings(step, spec)
        let key = try settings.headerSafeSecret("api_key")
        do {
            var request = ProviderRequest(
                provider: "OpenAI", method: .GET, url: try settings.url("base_url", appending: "/v1/models"),
                timeout: try settings.timeout())
            request.headers = [("Authorization", "Bearer \(key)"), ("Accept", "application/json")]
            request.destination = settings.destination("base_url")
            if let organization = settings.optionalText("organization"), !organization.isEmpty {
                request.headers.append(("OpenAI-Organization", organization))
            }
            let response = try await ProviderHTTP.send(request, logger: step.logger)
            guard response.isSuccess else { throw response.failure(checking: "the key") }
            guard response.jsonObject?["data"] is [Any] else { throw response.badBody("a JSON models list") }
            return ValidatorOutcome.valid.outputs(httpStatus: response.status)
        } catch let failure as StepFailure {
            throw failure.masking([key])
        }
    }
}
