/// Finds literals that look like credentials: provider API keys, tokens, private keys, and
/// passwords inside URLs or DSNs. Matching is by hand-written prefix scans rather than regular
/// expressions, because it runs on every scalar of every file. It reports what kind of
/// credential it saw and where, never the value.
public enum CredentialDetector {
    public struct Finding: Equatable, Sendable {
        public var kind: String
        /// Character offset of the credential in the scanned text.
        public var offset: Int
    }

    private struct TokenPattern: Sendable {
        let prefix: String
        let kind: String
        let minimumTail: Int
        let tail: @Sendable (Character) -> Bool
        let prefixBytes: [UInt8]

        init(prefix: String, kind: String, minimumTail: Int, tail: @escaping @Sendable (Character) -> Bool) {
            self.prefix = prefix
            self.kind = kind
            self.minimumTail = minimumTail
            self.tail = tail
            prefixBytes = Array(prefix.utf8)
        }
    }

    private static func isTokenCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == "-")
    }

    private static func isUpperOrDigit(_ character: Character) -> Bool {
        character.isASCII && (character.isUppercase || character.isNumber)
    }

    private static let patterns: [TokenPattern] = [
        TokenPattern(prefix: "sk-ant-", kind: "an Anthropic API key", minimumTail: 20, tail: isTokenCharacter),
        TokenPattern(prefix: "sk-", kind: "an OpenAI-style API key", minimumTail: 20, tail: isTokenCharacter),
        TokenPattern(prefix: "sk_live_", kind: "a Stripe secret key", minimumTail: 16, tail: isTokenCharacter),
        TokenPattern(prefix: "rk_live_", kind: "a Stripe restricted key", minimumTail: 16, tail: isTokenCharacter),
        TokenPattern(prefix: "AKIA", kind: "an AWS access key id", minimumTail: 16, tail: isUpperOrDigit),
        TokenPattern(prefix: "ASIA", kind: "an AWS temporary access key id", minimumTail: 16, tail: isUpperOrDigit),
        TokenPattern(prefix: "AIza", kind: "a Google API key", minimumTail: 35, tail: isTokenCharacter),
        TokenPattern(prefix: "ghp_", kind: "a GitHub token", minimumTail: 30, tail: isTokenCharacter),
        TokenPattern(prefix: "gho_", kind: "a GitHub token", minimumTail: 30, tail: isTokenCharacter),
        TokenPattern(prefix: "ghs_", kind: "a GitHub token", minimumTail: 30, tail: isTokenCharacter),
        TokenPattern(prefix: "github_pat_", kind: "a GitHub token", minimumTail: 30, tail: isTokenCharacter),
        TokenPattern(prefix: "xoxb-", kind: "a Slack token", minimumTail: 10, tail: isTokenCharacter),
        TokenPattern(prefix: "xoxp-", kind: "a Slack token", minimumTail: 10, tail: isTokenCharacter),
        TokenPattern(prefix: "slc_", kind: "a Sluice API token", minimumTail: 40, tail: isTokenCharacter),
        TokenPattern(
            prefix: "whsec_", kind: "a webhook signing secret", minimumTail: 24,
            tail: {
                isTokenCharacter($0) || $0 == "+" || $0 == "/" || $0 == "="
            }),
        TokenPattern(
            prefix: "hooks.slack.com/services/", kind: "a Slack webhook URL", minimumTail: 20,
            tail: {
                isTokenCharacter($0) || $0 == "/"
            }),
        TokenPattern(
            prefix: "Bearer ", kind: "a bearer token", minimumTail: 16,
            tail: {
                isTokenCharacter($0) || $0 == "." || $0 == "~" || $0 == "+" || $0 == "/" || $0 == "="
            }),
    ]

    /// The first credential-like literal in `text`, if any.
    public static func scan(_ text: String) -> Finding? {
        // Most values are short words; skip them without looking closer.
        guard text.utf8.count >= 12 else { return nil }
        let bytes = Array(text.utf8)
        return matches(in: bytes, firstOnly: true).first.map {
            Finding(kind: $0.kind, offset: characterOffset($0.start, in: bytes))
        }
    }

    /// Every credential-like literal in `text`: its kind and the UTF-8 byte range of the part
    /// that is secret (the token after `Bearer `, the password in a URL or DSN, a whole key).
    public static func secretRanges(in text: String) -> [(kind: String, bytes: Range<Int>)] {
        guard text.utf8.count >= 12 else { return [] }
        return matches(in: Array(text.utf8), firstOnly: false).map { ($0.kind, $0.bytes) }
    }

    /// `start` is where the finding is reported (`Bearer …` at the word); `bytes` what is secret.
    private static func matches(in bytes: [UInt8], firstOnly: Bool) -> [(kind: String, bytes: Range<Int>, start: Int)] {
        var found: [(kind: String, bytes: Range<Int>, start: Int)] = []
        var from = 0
        while let start = find("-----BEGIN", in: bytes, from: from), let marker = find("PRIVATE KEY-----", in: bytes, from: start) {
            let end =
                find("-----END", in: bytes, from: marker).map { index in
                    (find("-----", in: bytes, from: index + 8) ?? index) + 5
                } ?? bytes.count
            found.append(("a private key", start..<min(end, bytes.count), start))
            if firstOnly { return found }
            from = max(end, start + 1)
        }
        for pattern in patterns {
            let prefix = pattern.prefixBytes
            var from = 0
            while let start = find(prefix, in: bytes, from: from) {
                from = start + 1
                // A prefix inside a longer word (`task-...`) is not a token start.
                if pattern.prefix != "hooks.slack.com/services/", start > 0,
                    isTokenCharacter(Character(Unicode.Scalar(bytes[start - 1])))
                {
                    continue
                }
                var end = start + prefix.count
                var digits = false
                while end < bytes.count, bytes[end] < 0x80, pattern.tail(Character(Unicode.Scalar(bytes[end]))) {
                    if (0x30...0x39).contains(bytes[end]) { digits = true }
                    end += 1
                }
                if end - start - prefix.count >= pattern.minimumTail, digits || pattern.prefix.hasPrefix("hooks") {
                    let secret = pattern.prefix == "Bearer " ? start + prefix.count : start
                    found.append((pattern.kind, secret..<end, start))
                    if firstOnly { return found }
                    from = end
                }
            }
        }
        if find("://", in: bytes, from: 0) != nil {
            for range in passwordsInURLs(bytes) {
                found.append(("a password inside a URL or DSN", range, range.lowerBound))
                if firstOnly { return found }
            }
        }
        for range in passwordsInDSN(bytes) {
            found.append(("a password inside a connection string", range, range.lowerBound))
            if firstOnly { return found }
        }
        return found
    }

    private static func find(_ needle: String, in bytes: [UInt8], from: Int) -> Int? {
        find(Array(needle.utf8), in: bytes, from: from)
    }

    /// Byte search; the values scanned are short, so a plain loop beats building indexes.
    private static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, bytes.count >= needle.count else { return nil }
        var index = from
        let last = bytes.count - needle.count
        while index <= last {
            if bytes[index] == first {
                var matched = true
                for offset in 1..<needle.count where bytes[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }

    private static func characterOffset(_ byteOffset: Int, in bytes: [UInt8]) -> Int {
        String(decoding: bytes[..<byteOffset], as: UTF8.self).count
    }

    /// `scheme://user:password@host`: the byte ranges of the passwords.
    private static func passwordsInURLs(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var from = 0
        while let scheme = find("://", in: bytes, from: from) {
            from = scheme + 3
            var end = from
            while end < bytes.count,
                ![
                    UInt8(ascii: "/"), UInt8(ascii: " "), UInt8(ascii: "?"), UInt8(ascii: "#"),
                    UInt8(ascii: "\n"), UInt8(ascii: "\""), UInt8(ascii: "'"),
                ].contains(bytes[end])
            { end += 1 }
            guard let at = bytes[from..<end].lastIndex(of: UInt8(ascii: "@")),
                let colon = bytes[from..<at].firstIndex(of: UInt8(ascii: ":"))
            else { continue }
            if isLiteralSecret(bytes[(colon + 1)..<at]) { ranges.append((colon + 1)..<at) }
        }
        return ranges
    }

    /// `password=...` in a libpq-style key/value DSN: the byte ranges of the values.
    private static func passwordsInDSN(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        for key in ["password=", "pwd=", "Password="] {
            var from = 0
            while let start = find(key, in: bytes, from: from) {
                from = start + 1
                if start > 0, isTokenCharacter(Character(Unicode.Scalar(bytes[start - 1]))) { continue }
                let valueStart = start + key.utf8.count
                var end = valueStart
                while end < bytes.count, ![UInt8(ascii: " "), UInt8(ascii: ";"), UInt8(ascii: "&"), UInt8(ascii: "\n")].contains(bytes[end]) {
                    end += 1
                }
                if isLiteralSecret(bytes[valueStart..<end]) { ranges.append(valueStart..<end) }
            }
        }
        return ranges
    }

    /// A password that is really written down: not empty, not an expression, not a mask.
    private static func isLiteralSecret(_ value: ArraySlice<UInt8>) -> Bool {
        guard !value.isEmpty, !value.starts(with: Array("${".utf8)) else { return false }
        return !value.allSatisfy { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "x") || $0 == UInt8(ascii: "X") }
    }
}
