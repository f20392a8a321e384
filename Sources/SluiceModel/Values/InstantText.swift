import Foundation

/// Points in time as people type them on the command line: ISO 8601 dates and times,
/// `2026-03-29`, `2026-03-29T02:30`, `2026-03-29 02:30:15`, with or without a UTC offset
/// (`Z`, `+02:00`, `-0500`).
public enum InstantText {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// Offset (in characters) into the text where the problem starts.
        public var offset: Int
    }

    /// Parses `text`. Without an offset the time is read on `timeZone`'s clock, as cron
    /// expressions are: a time the clock skips means the end of the gap, a time it shows
    /// twice means the first. A date alone means its midnight.
    public static func parse(_ text: String, in timeZone: TimeZone) throws(ParseError) -> Date {
        let characters = Array(text)
        var position = 0
        let example = "e.g. 2026-03-29, 2026-03-29T02:30, 2026-03-29T00:30:00Z or 2026-03-29T02:30+02:00"

        func fail(_ why: String, at offset: Int) -> ParseError {
            ParseError(description: "\(shown(text)) is not an ISO 8601 time: \(why) (\(example))", offset: offset)
        }
        func expectation(_ what: String) -> ParseError {
            fail(
                position < characters.count ? "expected \(what), not \(shown(String(characters[position])))" : "expected \(what) after the end",
                at: position)
        }
        func number(_ digits: Int, _ what: String) throws(ParseError) -> (value: Int, offset: Int) {
            let start = position
            var value = 0
            for _ in 0..<digits {
                guard position < characters.count, let digit = characters[position].wholeNumberValue, characters[position].isASCII else {
                    position = start
                    throw expectation("\(digits) digits of \(what)")
                }
                value = value * 10 + digit
                position += 1
            }
            return (value, start)
        }
        func skip(_ allowed: Set<Character>, _ what: String) throws(ParseError) {
            guard position < characters.count, allowed.contains(characters[position]) else { throw expectation(what) }
            position += 1
        }
        func next(in allowed: Set<Character>) -> Bool {
            position < characters.count && allowed.contains(characters[position])
        }

        let year = try number(4, "the year")
        try skip(["-"], "'-' after the year")
        let month = try number(2, "the month")
        try skip(["-"], "'-' after the month")
        let day = try number(2, "the day")
        guard (1...12).contains(month.value) else { throw fail("month \(month.value) is not 01-12", at: month.offset) }
        guard (1...CalendarDate.daysIn(month: month.value, year: year.value)).contains(day.value) else {
            throw fail(
                "\(CalendarDate(year: year.value, month: month.value, day: 1).description.dropLast(3)) has no day \(day.value)", at: day.offset)
        }
        var seconds = 0
        var fraction = 0.0
        if next(in: ["T", "t", " "]) {
            position += 1
            let hour = try number(2, "the hour")
            try skip([":"], "':' after the hour")
            let minute = try number(2, "the minute")
            guard hour.value < 24 else { throw fail("hour \(hour.value) is not 00-23", at: hour.offset) }
            guard minute.value < 60 else { throw fail("minute \(minute.value) is not 00-59", at: minute.offset) }
            seconds = hour.value * 3_600 + minute.value * 60
            if next(in: [":"]) {
                position += 1
                let second = try number(2, "the second")
                guard second.value < 60 else { throw fail("second \(second.value) is not 00-59", at: second.offset) }
                seconds += second.value
                if next(in: [".", ","]) {
                    position += 1
                    let start = position
                    while position < characters.count, characters[position].isASCII, characters[position].isNumber { position += 1 }
                    guard position > start else { throw expectation("digits of a fraction of a second") }
                    fraction = Double("0." + String(characters[start..<position])) ?? 0
                }
            }
        }
        var offset: Int?
        if next(in: ["Z", "z"]) {
            position += 1
            offset = 0
        } else if next(in: ["+", "-"]) {
            let sign = characters[position] == "-" ? -1 : 1
            position += 1
            let hours = try number(2, "the offset's hours")
            var minutes = 0
            if next(in: [":"]) { position += 1 }
            if position < characters.count { minutes = try number(2, "the offset's minutes").value }
            guard hours.value <= 18, minutes < 60 else { throw fail("offset hours must be 00-18 and minutes 00-59", at: hours.offset) }
            offset = sign * (hours.value * 3_600 + minutes * 60)
        }
        guard position == characters.count else { throw expectation("the end, a time after 'T' or an offset like Z or +02:00") }

        let local = CalendarDate(year: year.value, month: month.value, day: day.value).daysSinceEpoch * 86_400 + seconds
        let instant = offset.map { local - $0 } ?? LocalClock(timeZone: timeZone).firstInstant(reading: local)
        return Date(timeIntervalSince1970: Double(instant) + fraction)
    }
}
