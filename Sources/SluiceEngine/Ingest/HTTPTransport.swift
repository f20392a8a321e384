import Foundation
import SluiceModel
import SluiceStorage

/// One HTTP request, as sources and validators describe it.
public struct HTTPRequestSpec: Sendable {
    public var method: String
    public var url: URL
    public var headers: [(name: String, value: String)]
    public var body: Data?
    public var timeout: Duration
    /// Set when the run's caller chose the URL: the transport resolves the host, refuses
    /// non-public addresses that are not allow-listed, and connects to the address it checked.
    /// Its messages then quote nothing of the answer's body.
    public var destination: DestinationCheck?

    public init(
        method: String = "GET", url: URL, headers: [(name: String, value: String)] = [], body: Data? = nil,
        timeout: Duration = .seconds(30), destination: DestinationCheck? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.destination = destination
    }

    /// The URL as messages show it: scheme, host, port and path, never the query (which may
    /// carry a key) or user info.
    public var shownURL: String { HTTPRequestSpec.shown(url) }

    public static func shown(_ url: URL) -> String {
        guard var parts = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "(a URL)" }
        parts.user = nil
        parts.password = nil
        parts.query = nil
        parts.fragment = nil
        return parts.string ?? "(a URL)"
    }
}

/// A whole response: status, headers and body (bounded by the transport).
public struct HTTPResponseData: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data

    public init(status: Int, headers: [(name: String, value: String)], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Sends HTTP requests for the engine's processors. SluiceProviders implements it with
/// AsyncHTTPClient; the engine itself has no HTTP client. A transport throws a transient
/// `StepFailure` (`provider_unavailable`) for timeouts, refused and dropped connections, and
/// honours a request's `destination` check.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequestSpec) async throws -> HTTPResponseData
}

/// What an HTTP status means for a step: success, or a failure that says whether retrying
/// can help. One mapping for every processor that calls an API.
public enum HTTPOutcome {
    /// nil for 2xx; else the failure. 429 and 5xx are transient (429 with its `Retry-After`);
    /// 401 and 403 are permanent (`http_unauthorized`); other statuses are permanent.
    public static func failure(for response: HTTPResponseData, request: HTTPRequestSpec, what: String) -> StepFailure? {
        switch response.status {
        case 200..<300:
            return nil
        case 401, 403:
            return StepFailure(.httpUnauthorized, "\(what): \(request.shownURL) answered \(response.status): the credential was refused")
        case 429:
            return StepFailure(
                .rateLimited, "\(what): \(request.shownURL) answered 429 (rate limited)", transient: true,
                retryAfter: RetryAfter.wait(response.header("Retry-After")))
        case 500..<600:
            return StepFailure(
                .providerUnavailable, "\(what): \(request.shownURL) answered \(response.status)", transient: true,
                retryAfter: RetryAfter.wait(response.header("Retry-After")))
        default:
            return StepFailure(.httpError, "\(what): \(request.shownURL) answered \(response.status)")
        }
    }

}
