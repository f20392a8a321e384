import Foundation
import Logging
import NIOHTTP1
import SluiceEngine
import SluiceStorage

/// The engine's `HTTPTransport` (what `ingest` with `format: http` fetches pages through) on
/// the validators' client: no redirects, one timeout over the whole answer, and no answer
/// turned into a transient `provider_unavailable`.
public struct ProviderHTTPTransport: HTTPTransport {
    /// Pages can be larger than a credential check's answer.
    public static let maxPageBytes = 64 << 20

    public var logger: Logger

    public init(logger: Logger = Logger(label: "sluice.http")) {
        self.logger = logger
    }

    public func send(_ request: HTTPRequestSpec) async throws -> HTTPResponseData {
        var outgoing = ProviderRequest(
            provider: request.url.host ?? "the API", method: HTTPMethod(rawValue: request.method),
            url: request.url, headers: request.headers, body: request.body, timeout: request.timeout)
        outgoing.maxBodyBytes = Self.maxPageBytes
        outgoing.destination = request.destination
        let response = try await ProviderHTTP.send(outgoing, logger: logger)
        return HTTPResponseData(status: response.status, headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
    }
}
