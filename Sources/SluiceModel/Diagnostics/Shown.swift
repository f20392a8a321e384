/// How a value from a user's file appears inside a message: quoted, on one line, at most 60
/// characters, and hidden entirely when it looks like a credential, so that an error about a
/// misplaced API key never prints the key. A run's live secrets (and pieces of them) are
/// masked before the value is cut, so a cut never leaves a piece the redactor can't recognise.
public func shown(_ value: some StringProtocol) -> String {
    let text = SecretRedactor.shared.redactLiveValues(String(value))
    if CredentialDetector.scan(text) != nil { return "(a value that looks like a credential, not shown)" }
    let scalars = text.unicodeScalars
    let cut = scalars.count > 60
    var kept = String.UnicodeScalarView()
    kept.append(contentsOf: scalars.prefix(60))
    return "'\(printable(String(kept)))\(cut ? "…" : "")'"
}

/// `text` with its control characters written out, so it reads as what it holds and does
/// nothing to the terminal that shows it: a param can't clear the screen or retitle the
/// window. C0 controls, DEL and C1 controls (ESC, which starts terminal sequences, among them)
/// become `\n`, `\r`, `\t` or `\u{1b}`, the one form every output of Sluice uses. With
/// `keepingLineBreaks`, line feeds and tabs stay as they are: for text of several lines whose
/// fields were laid out already.
public func printable(_ text: some StringProtocol, keepingLineBreaks: Bool = false) -> String {
    func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
    let text = String(text)
    guard text.unicodeScalars.contains(where: { isControl($0) && !(keepingLineBreaks && ($0 == "\n" || $0 == "\t")) }) else { return text }
    var result = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        guard isControl(scalar), !(keepingLineBreaks && (scalar == "\n" || scalar == "\t")) else {
            result.append(scalar)
            continue
        }
        switch scalar {
        case "\n": result.append(contentsOf: "\\n".unicodeScalars)
        case "\r": result.append(contentsOf: "\\r".unicodeScalars)
        case "\t": result.append(contentsOf: "\\t".unicodeScalars)
        default: result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
        }
    }
    return String(result)
}
