import Hummingbird
import Logging
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Turns every error a handler throws into the JSON error body with the request id: an
/// `APIError` as it is, Hummingbird's own errors by their status (an unknown path is 404, a
/// known path with another method 405), anything else 500 without details, logged
/// (redacted) with the request id so the two can be matched.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let routes: RouteTable
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if error.status == .internalServerError {
                context.logger.error("internal error: \(SecretRedactor.shared.redact(error.message))")
                return APIError.internalError.response(requestID: context.requestID)
            }
            return error.response(requestID: context.requestID)
        } catch let error as any HTTPResponseError {
            return translate(error.status, request: request).response(requestID: context.requestID)
        } catch {
            context.logger.error("internal error: \(SecretRedactor.shared.redact(String(describing: error)))")
            return APIError.internalError.response(requestID: context.requestID)
        }
    }

    private func translate(_ status: HTTPResponse.Status, request: Request) -> APIError {
        let path = String(request.uri.path.prefix(200))
        switch status {
        case .notFound:
            let allowed = routes.methods(forPath: request.uri.path)
            if !allowed.isEmpty {
                var headers = HTTPFields()
                headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
                return APIError(
                    .methodNotAllowed, "method_not_allowed",
                    "\(path) does not take \(request.method.rawValue); it takes \(allowed.map(\.rawValue).joined(separator: ", "))",
                    headers: headers)
            }
            return APIError.notFound("not_found", "no such endpoint: \(request.method.rawValue) \(path); see /openapi.json")
        case .contentTooLarge:
            return APIError.bodyTooLarge(limit: maxBodyBytes)
        default:
            return APIError(status, "http_\(status.code)", status.reasonPhrase)
        }
    }
}
