/// How a value from a user's file appears inside a message: quoted, on one line, at most 60
/// characters, and hidden entirely when it looks like a credential, so that an error about a
/// misplaced API key never prints the key. A run's live secrets (and pieces of them) are
/// masked before the value is cut, so a cut never leaves a piece the redactor can't recognise.
public func shown(_ value: some StringProtocol) -> String {
    let text = SecretRedactor.shared.redactLiveValues(String(value))
    if CredentialDetector.scan(text) != nil { return "(a value that looks like a credential, not shown)" }
    var result = ""
    var count = 0
    for scalar in text.unicodeScalars {
        if count == 60 {
            result += "…"
            break
        }
        switch scalar {
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        count += 1
    }
    return "'\(result)'"
}
