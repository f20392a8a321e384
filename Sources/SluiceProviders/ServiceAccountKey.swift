import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import _CryptoExtras

/// A GCP service-account key file (`"type": "service_account"`), read from the vault. Problems
/// are named by field; the JSON and its private key are never quoted.
struct ServiceAccountKey: Sendable {
    var clientEmail: String
    var privateKeyID: String?
    var privateKey: _RSA.Signing.PrivateKey
    var tokenURI: String?

    init(json text: String) throws(StepFailure) {
        func malformed(_ problem: String) -> StepFailure {
            .validator(
                .credentialMalformed,
                "'service_account_json' \(problem) (the value is not shown); download a new key file for the service account")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw malformed("is not a JSON object")
        }
        guard let type = object["type"] as? String else { throw malformed("has no 'type'") }
        guard type == "service_account" else {
            throw malformed("has type \(shown(type)), not service_account")
        }
        guard let email = object["client_email"] as? String, !email.isEmpty else { throw malformed("has no 'client_email'") }
        guard let pem = object["private_key"] as? String, !pem.isEmpty else { throw malformed("has no 'private_key'") }
        do {
            privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw malformed("has a 'private_key' that is not an RSA private key (PEM, 2048 bits or more)")
        }
        clientEmail = email
        privateKeyID = object["private_key_id"] as? String
        tokenURI = object["token_uri"] as? String
    }

    /// The signed JWT that asks `audience` (the token endpoint) for an access token with
    /// `scopes`, valid for an hour from `issuedAt` (RFC 7523, Google's service-account flow).
    func assertion(scopes: [String], audience: String, issuedAt: Date) throws -> String {
        let iat = Int(issuedAt.timeIntervalSince1970)
        var header: [String: Any] = ["alg": "RS256", "typ": "JWT"]
        if let privateKeyID, !privateKeyID.isEmpty { header["kid"] = privateKeyID }
        let claims: [String: Any] = [
            "iss": clientEmail, "scope": scopes.joined(separator: " "), "aud": audience, "iat": iat, "exp": iat + 3600,
        ]
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        let signingInput =
            Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: options)) + "."
            + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims, options: options))
        let signature = try privateKey.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }
}

/// Base64 with the URL alphabet and no padding, as JWTs use it.
enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
