import Foundation
import SluiceModel
import Synchronization

/// Masks secrets in text before it leaves the process: log lines, stored step errors and
/// reasons, outputs, notifications and HTTP responses. It masks three things:
/// - every value a run holds in its vault (and the forms a value takes inside URLs, JSON
///   and HTTP Basic credentials), for as long as the run is registered;
/// - the value of an `Authorization` header or `authorization=` pair, whatever it is;
/// - anything that looks like a credential (`CredentialDetector`): provider keys, bearer
///   tokens, private keys, and passwords inside URLs and connection strings.
public final class SecretRedactor: Sendable {
    /// The one the log handler, the executor and the server share.
    public static let shared = SecretRedactor()

    public static let mask = "[redacted]"

    /// Live values by owner (a run id), and all of them longest first, kept sorted as values
    /// come and go rather than on every line redacted.
    private struct Live {
        var byOwner: [String: [String]] = [:]
        var longestFirst: [String] = []

        mutating func resort() {
            longestFirst = byOwner.values.flatMap { $0 }.sorted { $0.utf8.count > $1.utf8.count }
        }
    }

    private let live = Mutex(Live())

    public init() {}

    /// Starts masking `value` (and its encodings) for `owner`. Values shorter than 4 bytes
    /// would mask ordinary words, so they are refused earlier (kms_decrypt checks formats).
    public func register(_ value: String, owner: String) {
        guard value.utf8.count >= 4 else { return }
        var forms = [value]
        if let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != value { forms.append(encoded) }
        if let json = try? JSONEncoder().encode(value), case let quoted = String(decoding: json, as: UTF8.self),
           quoted.count > 2, case let escaped = String(quoted.dropFirst().dropLast()), escaped != value {
            forms.append(escaped)
        }
        forms.append(Data(value.utf8).base64EncodedString())
        live.withLock {
            $0.byOwner[owner, default: []].append(contentsOf: forms)
            $0.resort()
        }
    }

    /// Stops masking the values of `owner` (at the end of its run, once they are cleared).
    public func forget(owner: String) {
        live.withLock {
            $0.byOwner.removeValue(forKey: owner)
            $0.resort()
        }
    }

    /// Whether any value is registered (for tests).
    public var isEmpty: Bool { live.withLock { $0.longestFirst.isEmpty } }

    /// `text` with every secret masked.
    public func redact(_ text: String) -> String {
        var result = text
        for value in live.withLock({ $0.longestFirst }) where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        result = Self.maskAuthorization(result)
        let ranges = CredentialDetector.secretRanges(in: result).map(\.bytes).sorted { $0.lowerBound > $1.lowerBound }
        if !ranges.isEmpty {
            var bytes = Array(result.utf8)
            var lastStart = Int.max
            for range in ranges where range.upperBound <= lastStart {
                bytes.replaceSubrange(range, with: Self.mask.utf8)
                lastStart = range.lowerBound
            }
            result = String(decoding: bytes, as: UTF8.self)
        }
        return result
    }

    /// `Authorization: <anything>` up to the end of the line, and `authorization=<value>`.
    private static func maskAuthorization(_ text: String) -> String {
        guard text.range(of: "authorization", options: .caseInsensitive) != nil else { return text }
        var result = ""
        var rest = Substring(text)
        while let found = rest.range(of: "authorization", options: .caseInsensitive) {
            result += rest[..<found.upperBound]
            rest = rest[found.upperBound...]
            // The separator: `: `, `=`, `":"` (JSON), with spaces or quotes around it.
            let separator = rest.prefix { $0 == ":" || $0 == "=" || $0 == " " || $0 == "\"" || $0 == "'" }
            guard separator.contains(where: { $0 == ":" || $0 == "=" }) else { continue }
            result += separator
            rest = rest[separator.endIndex...]
            let value = rest.prefix { $0 != "\n" && $0 != "\r" && $0 != "\"" && $0 != "'" && $0 != "," && $0 != "}" && $0 != ")" && $0 != "&" }
            if !value.isEmpty { result += mask }
            rest = rest[value.endIndex...]
        }
        return result + rest
    }
}
