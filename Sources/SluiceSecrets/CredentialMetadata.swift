import Foundation

/// What a person may say about a credential (who owns it, what it is for), stored in clear
/// next to the sealed value. A flat JSON object of at most `maximumSize` bytes whose fields
/// follow the provider's schema; `generic` takes any field names.
public enum CredentialMetadata {
    public static let maximumSize = 4096
    static let maximumStringLength = 256

    /// A field's rule: its type and, for strings, a required prefix.
    enum Rule: Sendable {
        case string(prefix: String?)
        case boolean
        case number

        var expected: String {
            switch self {
            case .string(let prefix?): "a string starting with '\(prefix)'"
            case .string: "a string"
            case .boolean: "true or false"
            case .number: "a number"
            }
        }
    }

    /// Fields every provider takes.
    static let common: [String: Rule] = [
        "description": .string(prefix: nil),
        "owner": .string(prefix: nil),
        "environment": .string(prefix: nil),
        "ticket": .string(prefix: nil),
    ]

    /// Fields each provider adds; nil means any field name.
    static func schema(for provider: CredentialProvider) -> [String: Rule]? {
        switch provider {
        case .openai:
            common.merging(["organization": .string(prefix: "org-"), "project": .string(prefix: "proj_"), "admin": .boolean]) { $1 }
        case .anthropic:
            common.merging(["workspace": .string(prefix: nil), "organization": .string(prefix: nil), "admin": .boolean]) { $1 }
        case .gcp:
            common.merging(["project_id": .string(prefix: nil), "scopes": .string(prefix: nil)]) { $1 }
        case .generic:
            nil
        }
    }

    /// Checks `text` (a JSON object, or nil for none) against the provider's schema and
    /// returns it in a canonical form (sorted keys, no spaces) for storage.
    public static func validate(_ text: String?, provider: CredentialProvider) throws(SecretsError) -> String {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return "{}" }
        guard text.utf8.count <= maximumSize else {
            throw SecretsError(.metadataTooLarge, "metadata is \(text.utf8.count) bytes; at most \(maximumSize) are allowed")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw SecretsError(.metadataInvalid, "metadata must be a JSON object, like {\"owner\": \"data-team\"}")
        }
        let schema = schema(for: provider)
        for key in object.keys.sorted() {
            guard isFieldName(key) else {
                throw SecretsError(
                    .metadataInvalid,
                    "metadata field '\(key.prefix(40))' is not a valid name: use lowercase letters, digits and _, starting with a letter, at most 64")
            }
            let value = object[key]!
            if let schema {
                guard let rule = schema[key] else {
                    throw SecretsError(
                        .metadataInvalid,
                        "metadata field '\(key)' is not one a \(provider.rawValue) credential takes; allowed: \(schema.keys.sorted().joined(separator: ", "))"
                    )
                }
                guard matches(value, rule) else {
                    throw SecretsError(.metadataInvalid, "metadata field '\(key)' must be \(rule.expected)")
                }
            } else {
                guard value is String || value is NSNumber else {
                    throw SecretsError(.metadataInvalid, "metadata field '\(key)' must be a string, number or true/false, not a list, object or null")
                }
            }
            if let string = value as? String, string.count > maximumStringLength {
                throw SecretsError(.metadataInvalid, "metadata field '\(key)' is longer than \(maximumStringLength) characters")
            }
        }
        guard let canonical = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw SecretsError(.metadataInvalid, "metadata can't be written back as JSON")
        }
        return String(decoding: canonical, as: UTF8.self)
    }

    /// The field names of stored metadata, for listings (which never show the values).
    public static func fieldNames(of text: String) -> [String] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any])?.keys.sorted() ?? []
    }

    private static func matches(_ value: Any, _ rule: Rule) -> Bool {
        switch rule {
        case .string(let prefix):
            guard let string = value as? String, !string.isEmpty else { return false }
            return prefix.map { string.hasPrefix($0) } ?? true
        case .boolean:
            return isBoolean(value)
        case .number:
            return value is NSNumber && !isBoolean(value)
        }
    }

    private static func isBoolean(_ value: Any) -> Bool {
        // JSONSerialization gives booleans as NSNumber; on Linux `value is Bool` is also true for 0 and 1.
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c" || type(of: number) == type(of: NSNumber(value: true))
    }

    private static func isFieldName(_ name: String) -> Bool {
        guard let first = name.utf8.first, (0x61...0x7A).contains(first), name.utf8.count <= 64 else { return false }
        return name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") }
    }
}
