import Foundation

/// What a credential is for, which decides the format its value must have and the metadata
/// it may carry. Checked before anything is sealed; the checks' messages describe what is
/// wrong (a prefix, a field, a character position), never the value.
public enum CredentialProvider: String, Sendable, CaseIterable, Codable {
    /// `sk-…` API keys (project, service-account and admin keys).
    case openai
    /// `sk-ant-…` API and admin keys.
    case anthropic
    /// A service-account key file (JSON with `"type": "service_account"`).
    case gcp
    /// Anything non-empty: passwords, tokens, connection strings.
    case generic

    /// The provider called `name`; an unknown one is `provider_unknown`.
    public init(named name: String) throws(SecretsError) {
        guard let provider = CredentialProvider(rawValue: name) else {
            let known = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw SecretsError(.providerUnknown, "unknown provider '\(name.prefix(40))'; known providers: \(known)")
        }
        self = provider
    }

    static let minimumKeyTail = 20
    static let maximumKeyLength = 512
    static let serviceAccountFields = ["project_id", "private_key_id", "private_key", "client_email", "client_id", "token_uri"]

    /// Refuses an empty or whitespace-only value, then checks the provider's format.
    public func check(_ value: SecretBytes) throws(SecretsError) {
        try value.withBytes { bytes throws(SecretsError) in
            guard !Self.isBlank(bytes) else {
                throw SecretsError(.valueEmpty, "the value is empty or only whitespace; nothing was stored")
            }
            guard bytes.count <= CredentialEnvelope.maximumValueSize else {
                throw SecretsError(
                    .valueTooLarge, "the value is \(bytes.count) bytes; a credential holds at most \(CredentialEnvelope.maximumValueSize)")
            }
            switch self {
            case .openai:
                if Self.hasPrefix(bytes, "sk-ant-") {
                    throw SecretsError(.valueFormat, "the value looks like an Anthropic key (sk-ant-…), not an OpenAI key; use --provider anthropic")
                }
                try Self.checkAPIKey(bytes, prefix: "sk-", provider: "an OpenAI key")
            case .anthropic:
                try Self.checkAPIKey(bytes, prefix: "sk-ant-", provider: "an Anthropic key")
            case .gcp:
                try Self.checkServiceAccount(bytes)
            case .generic:
                break
            }
        }
    }

    private static func checkAPIKey(_ bytes: UnsafeRawBufferPointer, prefix: String, provider: String) throws(SecretsError) {
        let expected = "\(provider) is '\(prefix)' followed by at least \(minimumKeyTail) letters, digits, '-' or '_'"
        guard hasPrefix(bytes, prefix) else {
            throw SecretsError(.valueFormat, "the value does not start with '\(prefix)'; \(expected)")
        }
        guard bytes.count <= maximumKeyLength else {
            throw SecretsError(.valueFormat, "the value is \(bytes.count) bytes, longer than any API key; \(expected)")
        }
        for index in prefix.utf8.count..<bytes.count {
            let byte = bytes[index]
            let allowed =
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            guard allowed else {
                let what = isASCIIWhitespace(byte) ? "whitespace" : "a character that can't be in a key"
                throw SecretsError(.valueFormat, "the value has \(what) at byte \(index + 1); \(expected)")
            }
        }
        guard bytes.count - prefix.utf8.count >= minimumKeyTail else {
            throw SecretsError(.valueFormat, "the value is only \(bytes.count) characters; \(expected)")
        }
    }

    private static func checkServiceAccount(_ bytes: UnsafeRawBufferPointer) throws(SecretsError) {
        let expected = "a GCP service-account key file (JSON with \"type\": \"service_account\" and \(serviceAccountFields.joined(separator: ", ")))"
        // Foundation copies the key into its objects here; they are released at the end of this
        // call. The copy this function makes is zeroed.
        var copy = Data(bytes)
        defer { copy.resetBytes(in: 0..<copy.count) }
        guard let object = (try? JSONSerialization.jsonObject(with: copy)) as? [String: Any] else {
            throw SecretsError(.valueFormat, "the value is not a JSON object; expected \(expected)")
        }
        guard let type = object["type"] as? String else {
            throw SecretsError(.valueFormat, "the JSON has no \"type\"; expected \(expected)")
        }
        guard type == "service_account" else {
            let shownType = type.count <= 32 && type.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_") }) ? "'\(type)'" : "another value"
            throw SecretsError(.valueFormat, "the JSON's \"type\" is \(shownType), not \"service_account\"; expected \(expected)")
        }
        let missing = serviceAccountFields.filter { ((object[$0] as? String) ?? "").trimmingCharacters(in: .whitespaces).isEmpty }
        guard missing.isEmpty else {
            throw SecretsError(
                .valueFormat, "the service-account JSON lacks \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) (each a non-empty string)")
        }
        let privateKey = object["private_key"] as! String
        guard privateKey.contains("-----BEGIN PRIVATE KEY-----"), privateKey.contains("-----END PRIVATE KEY-----") else {
            throw SecretsError(.valueFormat, "the service-account JSON's \"private_key\" is not a PEM private key (BEGIN/END PRIVATE KEY)")
        }
        guard (object["client_email"] as! String).contains("@") else {
            throw SecretsError(.valueFormat, "the service-account JSON's \"client_email\" is not an email address")
        }
        guard (object["token_uri"] as! String).hasPrefix("https://") else {
            throw SecretsError(.valueFormat, "the service-account JSON's \"token_uri\" is not an https URL")
        }
    }

    // MARK: Bytes

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: String) -> Bool {
        let prefixBytes = Array(prefix.utf8)
        guard bytes.count >= prefixBytes.count else { return false }
        return prefixBytes.indices.allSatisfy { bytes[$0] == prefixBytes[$0] }
    }

    private static func isASCIIWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    /// Empty, or nothing but whitespace (ASCII or Unicode, such as no-break spaces).
    static func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.allSatisfy(isASCIIWhitespace) { return true }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): if !scalar.properties.isWhitespace { return false }
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}

extension SecretBytes {
    /// The value without one final newline (`\n` or `\r\n`), which `echo`, heredocs and
    /// editors add to what is read from standard input or a file.
    public func droppingFinalNewline() -> SecretBytes {
        withBytes { bytes in
            var end = bytes.count
            if end > 0, bytes[end - 1] == 0x0A {
                end -= 1
                if end > 0, bytes[end - 1] == 0x0D { end -= 1 }
            }
            return SecretBytes(bytes[0..<end])
        }
    }
}
