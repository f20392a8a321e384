import Foundation
import Hummingbird
import SluiceEngine
import SluiceStorage

/// The token check in front of every route but `/healthz`: `Authorization: Bearer slc_…`,
/// valid and unrevoked, with one of `scopes`. A missing header and one that is not `Bearer`
/// each get a 401 that says so; malformed, unknown and revoked tokens and wrong secrets all
/// get one and the same 401, which tells a prober nothing. A valid token of the wrong scope
/// gets 403.
struct TokenAuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let tokens: APITokens
    let scopes: Set<APITokenScope>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            // (Not "Authorization: Bearer …" in the text: the redactor masks whatever follows that.)
            throw APIError.unauthenticated(
                "this endpoint needs a token: send it in the Authorization header as 'Bearer slc_…' (create one with `sluice tokens create ORG`)")
        }
        let scheme = "bearer "
        guard header.utf8.count > scheme.utf8.count, header.prefix(scheme.count).lowercased() == scheme else {
            throw APIError.unauthenticated("the Authorization header must be 'Bearer <token>'")
        }
        let text = header.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
        guard let record = try await tokens.authenticate(text) else {
            context.logger.notice("refused a request with an invalid token")
            throw APIError.unauthenticated("the token is not valid (unknown, malformed or revoked)")
        }
        guard scopes.contains(record.scope) else {
            throw APIError.forbidden(
                record.scope == .metrics
                    ? "a metrics token can only read /metrics and /openapi.json"
                    : "this endpoint needs a metrics token (`sluice tokens create --metrics`)")
        }
        var context = context
        context.token = record
        context.logger[metadataKey: "token_id"] = "\(record.id)"
        return try await next(request, context)
    }
}
