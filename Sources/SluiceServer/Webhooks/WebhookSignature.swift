import Crypto
import Foundation

/// Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 with the
/// secret's bytes over `<webhook-id>.<webhook-timestamp>.<body>`, base64; the
/// `webhook-signature` header holds one or more space-separated `v1,<base64>` entries (a
/// sender signs with each of its secrets while it rotates them). Secrets are `whsec_` and
/// base64 of random bytes.
public enum WebhookSignature {
    public static let secretPrefix = "whsec_"

    /// A deliveries' timestamp may be this much older than now…
    public static let maximumAge: TimeInterval = 5 * 60
    /// …or this much newer (clock skew).
    public static let maximumSkewAhead: TimeInterval = 60

    /// The HMAC key of a `whsec_…` secret; nil for anything else (no prefix, not base64,
    /// fewer than 16 or more than 128 bytes).
    public static func key(fromSecret text: some StringProtocol) -> SymmetricKey? {
        guard text.hasPrefix(secretPrefix), let bytes = Data(base64Encoded: String(text.dropFirst(secretPrefix.count))),
              (16...128).contains(bytes.count) else { return nil }
        return SymmetricKey(data: bytes)
    }

    /// A new secret: `whsec_` and 24 random bytes in base64 (what Standard Webhooks senders use).
    public static func newSecret() -> String {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: 192))
        return secretPrefix + key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// The `v1` signatures of a `webhook-signature` header, decoded; other versions and
    /// entries that are not base64 are ignored (at most 16 entries are looked at).
    static func signatures(in header: String) -> [Data] {
        header.split(separator: " ", omittingEmptySubsequences: true).prefix(16).compactMap { entry in
            guard entry.hasPrefix("v1,"), let bytes = Data(base64Encoded: String(entry.dropFirst(3))), bytes.count == 32 else { return nil }
            return bytes
        }
    }

    /// Whether any signature is the HMAC of the message under any key, compared in
    /// constant time.
    static func isValid(id: String, timestamp: String, body: Data, signatures: [Data], keys: [SymmetricKey]) -> Bool {
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        var valid = false
        // Every pair is checked, so the time taken does not say which one matched.
        for key in keys {
            for signature in signatures where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: key) {
                valid = true
            }
        }
        return valid
    }
}
