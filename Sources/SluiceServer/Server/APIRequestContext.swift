import Hummingbird
import SluiceEngine
import SluiceStorage

/// What a request carries through the middleware to its handler: its request id and, past
/// the token check, the token's record.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Accepted from `X-Request-Id` or generated; in the response, every error body and the
    /// run the request starts.
    public var requestID: String = ""
    /// The authenticated token, for the routes behind `TokenAuthMiddleware`.
    public var token: APITokenRecord?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies are read with `APIServer`'s own limit; this is only Hummingbird's decoding cap.
    public var maxUploadSize: Int { ServerConfiguration.defaultMaxBodyBytes }

    /// The token's org, if it is `org`'s; else 403 (the caller holds a token, for another org).
    func requireOrg(_ org: String) throws(APIError) -> String {
        guard let token, token.scope == .api, let tokenOrg = token.org else {
            throw APIError.forbidden("this token can't use the API of an org")
        }
        guard tokenOrg == org else {
            throw APIError.forbidden("this token belongs to another org; it can't access org '\(org.prefix(64))'")
        }
        return tokenOrg
    }

    /// The org of the token (routes that name no org, like `/v1/runs/{id}`).
    func tokenOrg() throws(APIError) -> String {
        guard let token, token.scope == .api, let org = token.org else {
            throw APIError.forbidden("this token can't use the API of an org")
        }
        return org
    }
}
