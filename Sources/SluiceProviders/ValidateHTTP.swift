import Foundation
import NIOHTTP1
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `validate_http`: one request to any endpoint, with the secret as a bearer token, a header or
/// a query parameter; a status in `expected_status` means valid.
public struct ValidateHTTPProcessor: Processor {
    public init() {}

    public var spec: ProcessorSpec { .validateHTTP }

    public func run(_ step: StepContext) async throws -> [String: ExpressionValue] {
        let settings = ValidatorSettings(step, spec)
        let secret = try settings.headerSafeSecret("secret")
        do {
            var url = try settings.url("url")
            let methodName = try settings.text("method")
            guard ["GET", "POST", "HEAD"].contains(methodName) else {
                throw StepFailure.config("'method' must be GET, POST or HEAD, not \(shown(methodName))", at: step.config["method"]?.location)
            }
            var expected: [Int] = []
            for text in try settings.texts("expected_status") {
                guard let status = Int(text), (100...599).contains(status) else {
                    throw StepFailure.config(
                        "'expected_status' holds \(shown(text)), not an HTTP status", at: step.config["expected_status"]?.location)
                }
                expected.append(status)
            }
            var headers: [(name: String, value: String)] = []
            switch try settings.text("secret_in") {
            case "bearer":
                headers.append(("Authorization", "Bearer \(secret)"))
            case "header":
                let name = try settings.text("header_name")
                guard !name.isEmpty, name.unicodeScalars.allSatisfy({ Self.tokenCharacters.contains($0) }) else {
                    throw StepFailure.config(
                        "'header_name' must be a header name (letters, digits, -), not \(shown(name))",
                        at: step.config["header_name"]?.location)
                }
                headers.append((name, secret))
            case "query":
                let parameter = try settings.text("query_param")
                guard var parts = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
                    throw StepFailure.config("'url' can't take a query parameter", at: step.config["url"]?.location)
                }
                parts.percentEncodedQuery =
                    (parts.percentEncodedQuery.map { $0 + "&" } ?? "")
                    + Self.queryEncoded(parameter) + "=" + Self.queryEncoded(secret)
                guard let withSecret = parts.url else {
                    throw StepFailure.config("'url' can't take a query parameter", at: step.config["url"]?.location)
                }
                url = withSecret
            case let other:
                throw StepFailure.config("'secret_in' must be bearer, header or query, not \(shown(other))", at: step.config["secret_in"]?.location)
            }
            let host = url.host ?? "the endpoint"
            var request = ProviderRequest(
                provider: host, method: HTTPMethod(rawValue: methodName), url: url, headers: headers,
                timeout: try settings.timeout())
            request.destination = settings.destination("url")
            let response = try await ProviderHTTP.send(request, logger: step.logger)
            if expected.contains(response.status) { return ValidatorOutcome.valid.outputs(httpStatus: response.status) }
            if response.isSuccess {
                // A success that is not the expected one says nothing about the secret either.
                throw StepFailure.validator(
                    .providerUnexpectedStatus,
                    """
                    \(host) (\(request.shownURL)) answered HTTP \(response.status), not one of expected_status \
                    (\(expected.map(String.init).joined(separator: ", ")))
                    """)
            }
            throw response.failure(checking: "the secret")
        } catch let failure as StepFailure {
            throw failure.masking([secret])
        }
    }

    /// RFC 9110 token characters, what a header name may hold.
    static let tokenCharacters = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~").union(
        CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))

    /// Percent-encoding for a query name or value: only unreserved characters stay as they are.
    static func queryEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
}
