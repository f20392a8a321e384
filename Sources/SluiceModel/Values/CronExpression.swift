import Foundation

/// A five-field cron expression (minute, hour, day of month, month, day of week) or one of
/// `@hourly @daily @weekly @monthly @yearly @annually`, parsed into the sets of values each
/// field allows. Lists, ranges, steps, month and weekday names; 0 and 7 both mean Sunday.
/// When both day fields are restricted, a day matches if either does (Vixie cron's rule).
///
/// An expression matches local wall-clock times; ``CronSchedule`` turns it into instants in
/// a time zone, including what happens when daylight saving time skips or repeats an hour.
public struct CronExpression: Hashable, Sendable, CustomStringConvertible {
    public var minutes: Set<Int>
    public var hours: Set<Int>
    public var daysOfMonth: Set<Int>
    public var months: Set<Int>
    /// 0 = Sunday … 6 = Saturday (a written 7 is stored as 0).
    public var daysOfWeek: Set<Int>
    public var dayOfMonthRestricted: Bool
    public var dayOfWeekRestricted: Bool
    /// The hour field is written without `*` (`2`, `9-17`), so it names hours of the local
    /// clock; with `*` or `*/n` the expression keeps time by the hour, however the clock is
    /// set. This decides what happens in daylight saving time changes (see ``CronSchedule``).
    public var hourRestricted: Bool
    public var source: String
    /// Where the day-of-month field starts in `source` (0 for a shorthand), for messages.
    var dayOfMonthOffset: Int

    public var description: String { source }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// Offset (in characters) into the expression where the problem starts.
        public var offset: Int
    }

    private struct Field {
        let name: String
        let range: ClosedRange<Int>
        let names: [String: Int]
    }

    private static let fields: [Field] = [
        Field(name: "minute", range: 0...59, names: [:]),
        Field(name: "hour", range: 0...23, names: [:]),
        Field(name: "day of month", range: 1...31, names: [:]),
        Field(
            name: "month", range: 1...12,
            names: [
                "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
                "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
            ]),
        Field(
            name: "day of week", range: 0...7,
            names: [
                "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
            ]),
    ]

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        source = trimmed
        var body = trimmed
        if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else {
                throw ParseError(
                    description:
                        "unknown cron shorthand \(shown(trimmed)); use @hourly, @daily (@midnight), @weekly, @monthly or @yearly (@annually)",
                    offset: 0)
            }
            body = expansion
        }
        // Split on spaces, remembering where each field starts for error positions.
        var parts: [(text: Substring, offset: Int)] = []
        var index = body.startIndex
        while index < body.endIndex {
            if body[index] == " " || body[index] == "\t" {
                index = body.index(after: index)
                continue
            }
            let start = index
            while index < body.endIndex, body[index] != " ", body[index] != "\t" { index = body.index(after: index) }
            parts.append((body[start..<index], body.distance(from: body.startIndex, to: start)))
        }
        guard parts.count == 5 else {
            throw ParseError(
                description: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has \(parts.count)",
                offset: 0)
        }
        var sets: [Set<Int>] = []
        for (position, part) in parts.enumerated() {
            sets.append(try Self.parseField(part.text, Self.fields[position], offset: part.offset))
        }
        minutes = sets[0]
        hours = sets[1]
        daysOfMonth = sets[2]
        months = sets[3]
        daysOfWeek = Set(sets[4].map { $0 == 7 ? 0 : $0 })
        dayOfMonthRestricted = !parts[2].text.hasPrefix("*")
        dayOfWeekRestricted = !parts[4].text.hasPrefix("*")
        hourRestricted = !parts[1].text.hasPrefix("*")
        dayOfMonthOffset = body == trimmed ? parts[2].offset : 0
    }

    private static func parseField(_ text: Substring, _ field: Field, offset: Int) throws(ParseError) -> Set<Int> {
        var values = Set<Int>()
        var itemOffset = offset
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            defer { itemOffset += item.count + 1 }
            func fail(_ why: String) -> ParseError {
                ParseError(description: "\(field.name) field \(shown(text)): \(why)", offset: itemOffset)
            }
            guard !item.isEmpty else { throw fail("empty list item") }
            let pieces = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw fail("step \(shown(pieces[1])) must be a positive number") }
                step = parsed
            }
            let rangeText = pieces[0]
            var low: Int
            var high: Int
            if rangeText == "*" {
                (low, high) = (field.range.lowerBound, field.range.upperBound)
            } else {
                let bounds = rangeText.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                guard let first = value(bounds[0], field) else {
                    throw fail(
                        "\(shown(bounds[0])) is not a valid \(field.name) (\(field.range.lowerBound)-\(field.range.upperBound)\(field.names.isEmpty ? "" : " or a name"))"
                    )
                }
                low = first
                high = first
                if bounds.count == 2 {
                    guard let last = value(bounds[1], field) else {
                        throw fail("\(shown(bounds[1])) is not a valid \(field.name) (\(field.range.lowerBound)-\(field.range.upperBound))")
                    }
                    high = last
                } else if pieces.count == 2 {
                    // A step from a single value runs to the end of the field, as in cronie:
                    // `5/15` is `5-59/15`, and in day of week `1/2` reaches 7 (Sunday) too.
                    high = field.range.upperBound
                }
                guard low <= high else { throw fail("range \(rangeText) runs backwards") }
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    private static func value(_ text: Substring, _ field: Field) -> Int? {
        if let number = Int(text), field.range.contains(number) { return number }
        return field.names[text.lowercased()]
    }
}
