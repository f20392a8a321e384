import Foundation
import Synchronization
import _CryptoExtras

/// Google's OAuth token endpoint and Cloud Resource Manager's testIamPermissions in one fake
/// server. The token endpoint checks the JWT the way Google does: RS256 signature against the
/// service account's public key, issuer, audience, scope and lifetime. Whatever it finds wrong
/// it records in `problems` and refuses.
final class FakeGoogle: Sendable {
    static let accessToken = "ya29.FAKE-access-token-0123456789"
    static let project = "finops-test"

    let server: FakeProviderServer
    private let found: Locked<[String]>

    var problems: [String] { found.value }
    var tokenURL: String { server.baseURL + "/token" }
    var tokenRequests: [RecordedRequest] { server.requests.filter { $0.path == "/token" } }
    var permissionRequests: [RecordedRequest] { server.requests.filter { $0.path.hasSuffix(":testIamPermissions") } }

    /// `held` are the permissions the account has on the project; `token` and `permissions`
    /// replace the fake's own answers (an error, a slow or broken answer).
    init(
        held: [String] = [], expectedScope: String = "https://www.googleapis.com/auth/cloud-platform",
        token: ScriptedResponse? = nil, permissions: ScriptedResponse? = nil
    ) async throws {
        let found = Locked([String]())
        self.found = found
        let publicKey = FakeKeys.serviceAccountKey.publicKey
        let address = Locked("")
        server = try await FakeProviderServer.start { request, _ in
            let tokenURL = address.value
            if request.path == "/token" {
                let problems = FakeGoogle.check(request, publicKey: publicKey, audience: tokenURL, scope: expectedScope)
                found.update { $0 += problems }
                if let token { return token }
                if let problem = problems.first {
                    return .json(400, #"{"error":"invalid_request","error_description":"fake Google refused: \#(problem)"}"#)
                }
                return .json(200, #"{"access_token":"\#(FakeGoogle.accessToken)","expires_in":3599,"token_type":"Bearer"}"#)
            }
            if request.path == "/v1/projects/\(FakeGoogle.project):testIamPermissions" {
                if request.values("Authorization") != ["Bearer \(FakeGoogle.accessToken)"] {
                    found.update { $0.append("testIamPermissions without the access token") }
                    return .json(
                        401, #"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#)
                }
                if let permissions { return permissions }
                let asked = ((try? JSONSerialization.jsonObject(with: request.body)) as? [String: [String]])?["permissions"] ?? []
                let granted = asked.filter(held.contains)
                // Like Google: no `permissions` key at all when none is held.
                if granted.isEmpty { return .json(200, "{}") }
                let data = try! JSONSerialization.data(withJSONObject: ["permissions": granted])
                return .json(200, String(decoding: data, as: UTF8.self))
            }
            return .json(404, #"{"error":{"code":404,"message":"Not Found","status":"NOT_FOUND"}}"#)
        }
        address.value = server.baseURL + "/token"
    }

    func stop() async { await server.stop() }

    /// What is wrong with a token request, as Google would see it.
    static func check(_ request: RecordedRequest, publicKey: _RSA.Signing.PublicKey, audience: String, scope: String) -> [String] {
        var problems: [String] = []
        if request.method != "POST" { problems.append("method \(request.method)") }
        if request.values("Content-Type") != ["application/x-www-form-urlencoded"] {
            problems.append("content type \(request.values("Content-Type"))")
        }
        var form: [String: String] = [:]
        for pair in request.bodyText.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            form[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        if form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer" { problems.append("grant_type \(form["grant_type"] ?? "none")") }
        let pieces = (form["assertion"] ?? "").split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard pieces.count == 3, let headerData = base64URLDecode(pieces[0]), let claimsData = base64URLDecode(pieces[1]),
            let signature = base64URLDecode(pieces[2]),
            let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any],
            let claims = (try? JSONSerialization.jsonObject(with: claimsData)) as? [String: Any]
        else {
            return problems + ["the assertion is not a JWT"]
        }
        if header["alg"] as? String != "RS256" { problems.append("alg \(header["alg"] ?? "none")") }
        if header["kid"] as? String != "0123456789abcdef0123456789abcdef01234567" { problems.append("kid") }
        let signed = Data((pieces[0] + "." + pieces[1]).utf8)
        if !publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: signed, padding: .insecurePKCS1v1_5) {
            problems.append("Invalid JWT Signature.")
        }
        if claims["iss"] as? String != FakeKeys.clientEmail { problems.append("iss \(claims["iss"] ?? "none")") }
        if claims["aud"] as? String != audience { problems.append("aud \(claims["aud"] ?? "none"), expected \(audience)") }
        if claims["scope"] as? String != scope { problems.append("scope \(claims["scope"] ?? "none")") }
        let now = Int(Date().timeIntervalSince1970)
        if let iat = claims["iat"] as? Int, let exp = claims["exp"] as? Int {
            if abs(iat - now) > 60 { problems.append("iat \(iat) is not now (\(now))") }
            if exp - iat != 3600 { problems.append("exp - iat is \(exp - iat)") }
        } else {
            problems.append("iat or exp missing")
        }
        return problems
    }

    static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// A value shared between a test and a fake server's script.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }

    func update(_ change: (inout Value) -> Void) { mutex.withLock { change(&$0) } }
}
