/// The one check for names that reach SQL or key a DAG: pipeline ids, step ids, tables,
/// columns, params, secrets. ASCII letters, digits and `_`, not starting with a digit, at most
/// 63 characters (PostgreSQL's limit), so the same name works in every warehouse.
public enum Identifier {
    public static let maxLength = 63
    /// The same rule as a regular expression, for JSON Schema.
    public static let pattern = "^[A-Za-z_][A-Za-z0-9_]{0,62}$"

    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxLength else { return false }
        guard first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (0x30...0x39).contains($0) }
    }

    /// Why a name is refused, for messages.
    public static func problem(with name: String) -> String? {
        if isValid(name) { return nil }
        if name.isEmpty { return "a name can't be empty" }
        if name.utf8.count > maxLength { return "'\(name.prefix(20))…' is longer than \(maxLength) characters" }
        return "\(shown(name)) is not a valid name: use letters, digits and _, not starting with a digit"
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
