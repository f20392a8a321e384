/// The one check for stored credential names (`openai/admin_key`): one or more segments
/// separated by `/`, each of ASCII letters, digits, `_`, `-` and `.` (but not `.` or `..`
/// alone), at most 128 characters. Orgs are `Identifier`s.
public enum CredentialName {
    public static let maxLength = 128

    public static func isValid(_ name: String) -> Bool {
        problem(with: name) == nil
    }

    /// Why a name is refused, for messages.
    public static func problem(with name: String) -> String? {
        let rule = "use segments of letters, digits, _, - and . separated by /, like openai/admin_key"
        if name.isEmpty { return "a credential name can't be empty" }
        if name.utf8.count > maxLength { return "'\(name.prefix(20))…' is longer than \(maxLength) characters" }
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            let valid =
                !segment.isEmpty && segment != "." && segment != ".."
                && segment.utf8.allSatisfy { byte in
                    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                }
            if !valid { return "\(shown(name)) is not a valid credential name: \(rule)" }
        }
        return nil
    }
}
