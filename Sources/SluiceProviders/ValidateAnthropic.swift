import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `validate_anthropic`: lists the models (`check: models`) or asks for one token
/// (`check: messages`) with the key in `x-api-key`.
public struct ValidateAnthropicProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateAnthropic }

    /// The answer's length: one token.
    static let maxTokens = 1

    /// The most tokens the call can spend, for the budget's check before it is sent: its body's
    /// bytes (no tokenizer makes more tokens than bytes) plus room for the API's own framing,
    /// and the answer's `max_tokens`.
    static func mostTokens(of request: ProviderRequest) -> Int {
        (request.body?.count ?? 0) + 32 + maxTokens
    }

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
                    "max_tokens": Self.maxTokens,
                    "messages": [["role": "user", "content": "ping"]],
                ]
                request.body = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
                request.headers.append(("content-type", "application/json"))
            default:
                throw StepFailure.config("'check' must be models or messages, not \(shown(check))", at: step.config["check"]?.location)
            }
            request.destination = settings.destination("base_url")
            request.headers += [("x-api-key", key), ("anthropic-version", try settings.text("api_version")), ("accept", "application/json")]
            guard check == "messages" else {
                let response = try await ProviderHTTP.send(request, logger: step.logger)
                guard response.isSuccess else { throw response.failure(checking: "the key") }
                guard response.jsonObject?["data"] is [Any] else { throw response.badBody("a JSON models list") }
                return ValidatorOutcome.valid.outputs(httpStatus: response.status, extra: ["tokens_spent": .number(0)])
            }
            // The most the call can spend is held against the org's budget until what it spent
            // is kept; a call that gets no answer may still have cost that much, so it counts.
            let budget = LLMBudget(step), model = try settings.text("model"), most = Self.mostTokens(of: request)
            let hold = try await budget.admit(upTo: most)
            defer { hold.release() }
            let response: ProviderResponse
            do {
                response = try await ProviderHTTP.send(request, logger: step.logger)
            } catch let failure as StepFailure where failure.code == FailureCode(.providerUnavailable) {
                try await budget.record(LLMUsage(model: model, tokens: most))
                throw failure
            }
            guard response.isSuccess else { throw response.failure(checking: "the key") }
            let usage = response.jsonObject?["usage"] as? [String: Any]
            let input = (usage?["input_tokens"] as? NSNumber)?.intValue, output = (usage?["output_tokens"] as? NSNumber)?.intValue
            // An answer without usage still cost something: the most the call could have.
            let spent = input.map { $0 + (output ?? Self.maxTokens) } ?? most
            try await budget.record(LLMUsage(model: model, tokens: spent))
            guard response.jsonObject != nil else { throw response.badBody("JSON") }
            return ValidatorOutcome.valid.outputs(httpStatus: response.status, extra: ["tokens_spent": .number(Double(spent))])
        } catch let failure as StepFailure {
            throw failure.masking([key])
        }
    }
}
