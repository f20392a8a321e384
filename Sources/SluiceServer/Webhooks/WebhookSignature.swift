import Crypto
import Foundation

/// Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 with the
/// secret's bytes over `<webhook-id>.<webhook-timestamp>.<body>`, base64; the
/// `webhook-signature` header holds one or more space-separated `v1,<base64>` entries (a
/// sender signs with each of its secrets while it rotates them). Secrets are `whsec_` and
/// base64 of random bytes.
public enum WebhookSignature {
    public static let secretPrefix = "whsec_"

    /// A delivery's timestamp may be this many seconds older than now…
    public static let maximumAge: Int64 = 5 * 60
    /// …or this many newer (clock skew).
    public static let maximumSkewAhead: Int64 = 60

    /// How many whole seconds before `now` a delivery signed at `timestamp` (seconds since
    /// 1970) was signed; negative when it is ahead. `now` is taken in whole seconds, as the
    /// reference libraries take it, so a delivery exactly `maximumAge` old is accepted.
    public static func age(ofTimestamp timestamp: Int64, at now: Date) -> Int64 {
        Int64(now.timeIntervalSince1970.rounded(.down)) - timestamp
    }

    /// The HMAC key of a `whsec_…` secret; nil for anything else (no prefix, not base64,
    /// fewer than 16 or more than 128 bytes).
    public static func key(fromSecret text: some StringProtocol) -> SymmetricKey? {
        guard text.hasPrefix(secretPrefix), let bytes = Data(base64Encoded: String(text.dropFirst(secretPrefix.count))),
            (16...128).contains(bytes.count)
        else { return nil }
        return SymmetricKey(data: bytes)
    }

    /// A new secret: `whsec_` and 24 random bytes in base64 (what Standard Webhooks senders use).
    public static func newSecret() -> String {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: 192))
        return secretPrefix + key.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// The `v1` signatures of a `webhook-signature` header, decoded; other versions and
    /// entries that are not base64 are ignored. Every entry is read, as the reference
    /// libraries do: the header is bounded by the server's header size limit (80 KiB, some
    /// 1,700 entries), and an entry costs one 32-byte comparison (`isValid` computes the HMAC
    /// once per key, not once per entry).
    static func signatures(in header: String) -> [Data] {
        header.split(separator: " ", omittingEmptySubsequences: true).compactMap { entry in
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
        // Every pair is compared, so the time taken does not say which one matched.
        for key in keys {
            let expected = HMAC<SHA256>.authenticationCode(for: message, using: key)
            for signature in signatures where expected == signature {
                valid = true
            }
        }
        return valid
    }
}
