import Foundation
import Hummingbird
import SluiceEngine
import SluiceModel
import SluiceStorage

/// An error the API answers with: a status, a stable code for programs and a message for
/// people. It becomes `{"error": {"code", "message", "request_id"}}`; the message is
/// redacted and never carries internal details (paths, SQL, stack traces).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Extra response headers (`WWW-Authenticate`, `Allow`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    // MARK: The ones the API uses

    static func badRequest(_ code: String, _ message: String) -> APIError { APIError(.badRequest, code, message) }

    static func unauthenticated(_ message: String) -> APIError {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = #"Bearer realm="sluice""#
        return APIError(.unauthorized, "unauthenticated", message, headers: headers)
    }

    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, "forbidden", message) }

    static func notFound(_ code: String, _ message: String) -> APIError { APIError(.notFound, code, message) }

    static func conflict(_ code: String, _ message: String) -> APIError { APIError(.conflict, code, message) }

    static func unprocessable(_ code: String, _ message: String) -> APIError { APIError(.unprocessableContent, code, message) }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, "body_too_large", "the request body is larger than the limit of \(ByteSize(limit)); see docs/api.md#limits")
    }

    static func bodyTimeout(after limit: Duration) -> APIError {
        APIError(.requestTimeout, "body_timeout", "the request body did not arrive within \(DurationText.format(limit)); see docs/api.md#limits")
    }

    /// 429: the pipeline's `max_active_runs` runs of the org are pending or running, so no
    /// run is created; the client may try again (Retry-After says when it is worth it).
    static func activeRunsLimited(pipeline: String, org: String, active: Int) -> APIError {
        tooManyActive(
            "max_active_runs",
            "pipeline '\(pipeline)' has \(runCount(active)) pending or running in org '\(org)', "
                + "its schedule's max_active_runs; no run was created: try again when \(active == 1 ? "it ends" : "one ends")")
    }

    /// 429: the org has `active` runs pending or running, the server's limit per org.
    static func orgRunsLimited(org: String, active: Int) -> APIError {
        tooManyActive(
            "org_active_runs",
            "org '\(org)' has \(runCount(active)) pending or running, the most this server "
                + "starts for one org (sluice serve --max-active-runs-per-org); no run was created: try again when one ends")
    }

    /// The Retry-After of a refusal for too many active runs, in seconds.
    static let activeRunsRetryAfterSeconds = 30

    private static func tooManyActive(_ code: String, _ message: String) -> APIError {
        var headers = HTTPFields()
        headers[.retryAfter] = "\(activeRunsRetryAfterSeconds)"
        return APIError(.tooManyRequests, code, message, headers: headers)
    }

    private static func runCount(_ count: Int) -> String { count == 1 ? "1 run" : "\(count) runs" }

    static let internalError = APIError(
        .internalServerError, "internal_error",
        "the server failed to handle the request; quote the request id when reporting it")

    // MARK: As a response

    /// The JSON error body, redacted.
    func response(requestID: String) -> Response {
        let body: [String: [String: String]] = [
            "error": [
                "code": code,
                "message": SecretRedactor.shared.redact(message),
                "request_id": requestID,
            ]
        ]
        var response = JSONResponse.make(body, status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// A byte count in words: `1 MiB`, `512 KiB`, `300 bytes`.
struct ByteSize: CustomStringConvertible {
    var bytes: Int
    init(_ bytes: Int) { self.bytes = bytes }

    var description: String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
