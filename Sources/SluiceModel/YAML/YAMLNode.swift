/// A YAML value with the place it was written, so every later check can point at it.
///
/// Scalars keep whether they were quoted: `"123"` is text, `123` is a number. Plain scalars
/// resolve by the YAML 1.2 core schema (`yes` and `on` stay text).
public struct YAMLNode: Sendable, Hashable {
    public indirect enum Value: Sendable, Hashable {
        case scalar(String, quoted: Bool)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public var value: Value
    public var location: SourceLocation
    /// The scalar's text stands verbatim in the file right at `location` (after an opening
    /// quote): no escapes, folding or line breaks, so a character offset in the text is a
    /// column offset in the file.
    public var verbatim: Bool

    public init(_ value: Value, at location: SourceLocation, verbatim: Bool = false) {
        self.value = value
        self.location = location
        self.verbatim = verbatim
    }

    // MARK: Shape

    public var scalarText: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    public var isQuoted: Bool {
        if case .scalar(_, let quoted) = value { return quoted }
        return false
    }

    public var sequence: [YAMLNode]? {
        if case .sequence(let items) = value { return items }
        return nil
    }

    public var mapping: [YAMLPair]? {
        if case .mapping(let pairs) = value { return pairs }
        return nil
    }

    /// The value under `key` in a mapping, or nil.
    public subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key.scalarText == key }?.value
    }

    /// A plain `~`, `null`, `Null`, `NULL` or an empty plain scalar.
    public var isNull: Bool {
        guard case .scalar(let text, quoted: false) = value else { return false }
        return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    /// A plain scalar read as a YAML 1.2 boolean.
    public var bool: Bool? {
        guard case .scalar(let text, quoted: false) = value else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    /// A plain scalar read as a YAML 1.2 integer (decimal, `0x`, `0o`).
    public var int: Int? {
        guard case .scalar(let text, quoted: false) = value else { return nil }
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        return Int(text)
    }

    /// A plain scalar read as a number (integers included).
    public var double: Double? {
        guard case .scalar(let text, quoted: false) = value else { return nil }
        if let int { return Double(int) }
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        default: break
        }
        guard text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true else { return nil }
        return Double(text)
    }

    /// What kind of value this is, in words for error messages.
    public var kindDescription: String {
        switch value {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let text, let quoted):
            if quoted { return "a string" }
            if isNull { return "null" }
            if bool != nil { return "a boolean" }
            if int != nil { return "an integer" }
            if double != nil { return "a number" }
            return text.isEmpty ? "an empty value" : "a string"
        }
    }
}

/// One `key: value` entry of a mapping, both with their places.
public struct YAMLPair: Sendable, Hashable {
    public var key: YAMLNode
    public var value: YAMLNode

    public init(key: YAMLNode, value: YAMLNode) {
        self.key = key
        self.value = value
    }
}
