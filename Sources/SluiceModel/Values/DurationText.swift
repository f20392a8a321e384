/// The one duration syntax of pipeline files: a whole number and a unit, `500ms`, `30s`,
/// `10m`, `2h`, `7d`, or several of them together (`1h30m`).
public enum DurationText {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// Parses `text` into a `Duration`. Negative durations can't be written; zero (`0s`) is
    /// refused unless `allowZero`.
    public static func parse(_ text: String, allowZero: Bool = false) throws(ParseError) -> Duration {
        let expected = "expected a duration like 500ms, 30s, 10m, 2h or 7d"
        guard !text.isEmpty else { throw ParseError(description: "empty duration; \(expected)") }
        var total: Int64 = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let amount = Int64(digits) else {
                throw ParseError(description: "\(shown(text)) is not a duration; \(expected)")
            }
            rest = rest.dropFirst(digits.count)
            let unitText = rest.prefix { $0.isASCII && $0.isLetter }
            guard let unit = units.first(where: { $0.suffix == unitText }) else {
                let hint = unitText.isEmpty ? "a unit is missing after \(digits)" : "unknown unit \(shown(unitText))"
                throw ParseError(description: "\(shown(text)) is not a duration (\(hint)); \(expected)")
            }
            rest = rest.dropFirst(unitText.count)
            let (product, overflow) = amount.multipliedReportingOverflow(by: unit.milliseconds)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow, !overflow2 else { throw ParseError(description: "\(shown(text)) is too long a duration") }
            total = sum
        }
        guard total > 0 || allowZero else { throw ParseError(description: "\(shown(text)) is zero; a duration must be positive") }
        return .milliseconds(total)
    }

    /// Formats a duration back into the same syntax, largest units first (`1h30m`).
    public static func format(_ duration: Duration) -> String {
        var milliseconds = duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        var text = ""
        for unit in units.reversed() where milliseconds >= unit.milliseconds {
            text += "\(milliseconds / unit.milliseconds)\(unit.suffix)"
            milliseconds %= unit.milliseconds
        }
        return text
    }
}

extension Duration {
    /// The duration in seconds, as `Date` and `TimeInterval` arithmetic wants it.
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
