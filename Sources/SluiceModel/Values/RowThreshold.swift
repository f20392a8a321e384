import Foundation

/// How many rows may go wrong before a step fails: a count (`100`) or a share of the rows
/// read (`5%`). `ingest`'s `max_bad_rows` is one.
public enum RowThreshold: Sendable, Hashable, CustomStringConvertible {
    case count(Int)
    /// A percentage, 0–100.
    case percent(Double)

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `100`, `0`, `5%`, `0.5%`.
    public init(parsing text: String) throws(Problem) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            let number = trimmed.dropLast()
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(number),
                (0...100).contains(value)
            else { throw Problem(description: "\(shown(text)) is not a percentage from 0% to 100%") }
            self = .percent(value)
        } else {
            guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(trimmed) else {
                throw Problem(description: "\(shown(text)) is not a count of rows (like 100) or a percentage (like 5%)")
            }
            self = .count(value)
        }
    }

    /// Whether `bad` rows out of `read` pass the threshold.
    public func isExceeded(bad: Int, of read: Int) -> Bool {
        switch self {
        case .count(let limit): bad > limit
        case .percent(let share): read > 0 && Double(bad) * 100 > share * Double(read)
        }
    }

    public var description: String {
        switch self {
        case .count(let limit): "\(limit)"
        case .percent(let share): share == share.rounded() ? "\(Int(share))%" : "\(share)%"
        }
    }
}
