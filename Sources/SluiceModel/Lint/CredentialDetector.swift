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
        TokenPattern(prefix: "hooks.slack.com/services/", kind: "a Slack webhook URL", minimumTail: 20, tail: {
            isTokenCharacter($0) || $0 == "/"
        }),
        TokenPattern(prefix: "Bearer ", kind: "a bearer token", minimumTail: 16, tail: {
            isTokenCharacter($0) || $0 == "." || $0 == "~" || $0 == "+" || $0 == "/" || $0 == "="
        }),
    ]

    /// The first credential-like literal in `text`, if any.
    public static func scan(_ text: String) -> Finding? {
        // Most values are short words; skip them without looking closer.
        guard text.utf8.count >= 12 else { return nil }
        let bytes = Array(text.utf8)
        if let start = find("-----BEGIN", in: bytes, from: 0), find("PRIVATE KEY-----", in: bytes, from: start) != nil {
            return Finding(kind: "a private key", offset: characterOffset(start, in: bytes))
        }
        for pattern in patterns {
            let prefix = pattern.prefixBytes
            var from = 0
            while let start = find(prefix, in: bytes, from: from) {
                from = start + 1
                // A prefix inside a longer word (`task-...`) is not a token start.
                if pattern.prefix != "hooks.slack.com/services/", start > 0,
                   isTokenCharacter(Character(Unicode.Scalar(bytes[start - 1]))) { continue }
                var end = start + prefix.count
                var digits = false
                while end < bytes.count, bytes[end] < 0x80, pattern.tail(Character(Unicode.Scalar(bytes[end]))) {
                    if (0x30...0x39).contains(bytes[end]) { digits = true }
                    end += 1
                }
                if end - start - prefix.count >= pattern.minimumTail, digits || pattern.prefix.hasPrefix("hooks") {
                    return Finding(kind: pattern.kind, offset: characterOffset(start, in: bytes))
                }
            }
        }
        if find("://", in: bytes, from: 0) != nil, let offset = passwordInURL(text) {
            return Finding(kind: "a password inside a URL or DSN", offset: offset)
        }
        if (find("password=", in: bytes, from: 0) ?? find("pwd=", in: bytes, from: 0) ?? find("Password=", in: bytes, from: 0)) != nil,
           let offset = passwordInDSN(text) {
            return Finding(kind: "a password inside a connection string", offset: offset)
        }
        return nil
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

    /// `scheme://user:password@host`: the offset of the password.
    private static func passwordInURL(_ text: String) -> Int? {
        var searchStart = text.startIndex
        while let scheme = text.range(of: "://", range: searchStart..<text.endIndex) {
            searchStart = scheme.upperBound
            let authority = text[scheme.upperBound...].prefix { $0 != "/" && $0 != " " && $0 != "?" && $0 != "#" }
            guard let at = authority.lastIndex(of: "@") else { continue }
            let userInfo = authority[..<at]
            guard let colon = userInfo.firstIndex(of: ":") else { continue }
            let password = userInfo[userInfo.index(after: colon)...]
            if isLiteralSecret(password) {
                return text.distance(from: text.startIndex, to: password.startIndex)
            }
        }
        return nil
    }

    /// `password=...` in a libpq-style key/value DSN.
    private static func passwordInDSN(_ text: String) -> Int? {
        for key in ["password=", "pwd=", "Password="] {
            guard let range = text.range(of: key) else { continue }
            if range.lowerBound > text.startIndex, isTokenCharacter(text[text.index(before: range.lowerBound)]) { continue }
            let value = text[range.upperBound...].prefix { $0 != " " && $0 != ";" && $0 != "&" }
            if isLiteralSecret(value) {
                return text.distance(from: text.startIndex, to: value.startIndex)
            }
        }
        return nil
    }

    /// A password that is really written down: not empty, not an expression, not a mask.
    private static func isLiteralSecret(_ value: Substring) -> Bool {
        guard !value.isEmpty, !value.hasPrefix("${{"), !value.hasPrefix("${") else { return false }
        return !value.allSatisfy { $0 == "*" || $0 == "x" || $0 == "X" }
    }
}
