import Foundation

/// How a source writes its dates and times, in strftime's notation: `%m/%d/%Y` for `9/9/2024`,
/// `%d.%m.%Y %H:%M` for `09.09.2024 14:05`. A schema column or ingest's `columns` declares one
/// for a DATE, TIMESTAMP or DATETIME column whose input is not ISO 8601.
///
/// | directive | reads |
/// |---|---|
/// | `%Y` | a four-digit year |
/// | `%y` | a two-digit year, 2000–2099 |
/// | `%m`, `%d`, `%e` | month, day: one or two digits |
/// | `%b`, `%B` | a month's English name, short or long, any case |
/// | `%H`, `%I` | hour: 0–23, or 1–12 with `%p` (AM/PM, any case) |
/// | `%M`, `%S` | minutes, seconds: one or two digits |
/// | `%f` | a fraction of a second: 1–9 digits, kept to microseconds |
/// | `%z` | `Z`, `UTC` or an offset `±HH:MM`, `±HHMM`, `±HH` |
/// | `%F`, `%T` | `%Y-%m-%d`, `%H:%M:%S` |
/// | `%%` | a percent sign |
///
/// Any other character must appear as written; a space also matches several spaces.
public struct TimeFormat: Sendable, Hashable, CustomStringConvertible {
    /// The format as declared.
    public let pattern: String
    private let pieces: [Piece]

    private enum Piece: Sendable, Hashable {
        case literal(UInt8)
        case spaces
        case year4, year2, month, monthName, day, hour24, hour12, minute, second, fraction, meridiem, zone
    }

    /// What a value read with the format holds.
    public struct Reading: Sendable, Hashable {
        public var date: CalendarDate
        /// Seconds since midnight.
        public var seconds: Int
        public var micros: Int
        /// The value's own UTC offset in seconds, when the format reads one (`%z`).
        public var offset: Int?
    }

    /// Why a format can't be used, with the character offset of the problem in `pattern`.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var description: String
    }

    public var description: String { pattern }

    /// Whether values carry their own UTC offset (`%z`).
    public var readsZone: Bool { pieces.contains(.zone) }

    /// Whether the format reads a time of day, not only a date.
    public var readsTime: Bool { pieces.contains { [.hour24, .hour12, .minute, .second, .fraction].contains($0) } }

    public init(_ pattern: String) throws(Problem) {
        self.pattern = pattern
        var pieces: [Piece] = []
        let characters = Array(pattern.utf8)
        var index = 0
        func problem(_ message: String) -> Problem {
            Problem(offset: String(decoding: characters[..<min(index, characters.count)], as: UTF8.self).count, description: message)
        }
        while index < characters.count {
            let byte = characters[index]
            if byte == UInt8(ascii: " ") {
                if pieces.last != .spaces { pieces.append(.spaces) }
                index += 1
                continue
            }
            guard byte == UInt8(ascii: "%") else {
                pieces.append(.literal(byte))
                index += 1
                continue
            }
            guard index + 1 < characters.count else { throw problem("the format ends in a lone %; write %% for a percent sign") }
            let directive = Character(UnicodeScalar(characters[index + 1]))
            switch directive {
            case "Y": pieces.append(.year4)
            case "y": pieces.append(.year2)
            case "m": pieces.append(.month)
            case "b", "B", "h": pieces.append(.monthName)
            case "d", "e": pieces.append(.day)
            case "H": pieces.append(.hour24)
            case "I": pieces.append(.hour12)
            case "M": pieces.append(.minute)
            case "S": pieces.append(.second)
            case "f": pieces.append(.fraction)
            case "p": pieces.append(.meridiem)
            case "z", "Z": pieces.append(.zone)
            case "F": pieces += [.year4, .literal(UInt8(ascii: "-")), .month, .literal(UInt8(ascii: "-")), .day]
            case "T": pieces += [.hour24, .literal(UInt8(ascii: ":")), .minute, .literal(UInt8(ascii: ":")), .second]
            case "%": pieces.append(.literal(UInt8(ascii: "%")))
            default:
                throw problem(
                    "%\(directive) is not a directive Sluice reads (it reads %Y %y %m %b %B %d %e %H %I %M %S %f %p %z %F %T and %%)")
            }
            index += 2
        }
        index = characters.count
        func count(_ kinds: Piece...) -> Int { pieces.filter(kinds.contains).count }
        for (kinds, name) in [
            ([Piece.year4, .year2], "year"), ([.month, .monthName], "month"), ([.day], "day"), ([.hour24, .hour12], "hour"),
            ([.minute], "minute"), ([.second], "second"), ([.fraction], "fraction"), ([.meridiem], "AM/PM"), ([.zone], "zone"),
        ] where pieces.filter(kinds.contains).count > 1 {
            throw problem("the format reads the \(name) twice")
        }
        guard count(.year4, .year2) == 1, count(.month, .monthName) == 1, count(.day) == 1 else {
            throw problem("the format must read a year (%Y or %y), a month (%m or %b) and a day (%d)")
        }
        if count(.hour12) == 1, count(.meridiem) == 0 { throw problem("%I (a 12-hour clock) needs %p (AM or PM)") }
        if count(.meridiem) == 1, count(.hour12) == 0 { throw problem("%p (AM or PM) goes with %I, not %H") }
        if count(.minute, .second, .fraction) > 0, count(.hour24, .hour12) == 0 { throw problem("the format reads minutes or seconds but no hour") }
        self.pieces = pieces
    }

    public static func == (lhs: TimeFormat, rhs: TimeFormat) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }

    private static let monthNames = [
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    ]

    /// Reads `bytes` whole; nil when they don't follow the format or name no real day or time.
    public func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Reading? {
        var index = 0
        var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0
        var pm: Bool?
        var offset: Int?
        func digits(min: Int, max: Int) -> Int? {
            var value = 0, taken = 0
            while taken < max, index < bytes.count, bytes[index] &- 0x30 < 10 {
                value = value * 10 + Int(bytes[index] &- 0x30)
                index += 1
                taken += 1
            }
            return taken >= min ? value : nil
        }
        func lowercaseLetters() -> String {
            var word = ""
            while index < bytes.count, (bytes[index] | 0x20) >= UInt8(ascii: "a"), (bytes[index] | 0x20) <= UInt8(ascii: "z") {
                word.unicodeScalars.append(UnicodeScalar(bytes[index] | 0x20))
                index += 1
            }
            return word
        }
        for piece in pieces {
            switch piece {
            case .literal(let byte):
                guard index < bytes.count, bytes[index] == byte else { return nil }
                index += 1
            case .spaces:
                guard index < bytes.count, bytes[index] == UInt8(ascii: " ") else { return nil }
                while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            case .year4:
                guard let value = digits(min: 4, max: 4), value >= 1 else { return nil }
                year = value
            case .year2:
                guard let value = digits(min: 2, max: 2) else { return nil }
                year = 2000 + value
            case .month:
                guard let value = digits(min: 1, max: 2) else { return nil }
                month = value
            case .monthName:
                let word = lowercaseLetters()
                guard word.count >= 3,
                    let found = Self.monthNames.firstIndex(where: { $0 == word || (word.count == 3 && $0.hasPrefix(word)) })
                else { return nil }
                month = found + 1
            case .day:
                guard let value = digits(min: 1, max: 2) else { return nil }
                day = value
            case .hour24, .hour12:
                guard let value = digits(min: 1, max: 2) else { return nil }
                hour = value
            case .minute:
                guard let value = digits(min: 1, max: 2), value < 60 else { return nil }
                minute = value
            case .second:
                guard let value = digits(min: 1, max: 2), value < 60 else { return nil }
                second = value
            case .fraction:
                // Up to nanoseconds (.NET and Azure write seven digits), kept to microseconds.
                let start = index
                guard var value = digits(min: 1, max: 9) else { return nil }
                let count = index - start
                if count > 6 {
                    for _ in 6..<count { value /= 10 }
                } else {
                    for _ in count..<6 { value *= 10 }
                }
                micros = value
            case .meridiem:
                switch lowercaseLetters() {
                case "am": pm = false
                case "pm": pm = true
                default: return nil
                }
            case .zone:
                guard let zone = Self.zone(bytes, at: &index) else { return nil }
                offset = zone
            }
        }
        guard index == bytes.count else { return nil }
        if let pm {
            guard (1...12).contains(hour) else { return nil }
            hour = hour % 12 + (pm ? 12 : 0)
        }
        guard (1...12).contains(month), day >= 1, day <= CalendarDate.daysIn(month: month, year: year), hour < 24 else { return nil }
        return Reading(
            date: CalendarDate(year: year, month: month, day: day), seconds: hour * 3600 + minute * 60 + second,
            micros: micros, offset: offset)
    }

    /// `Z`, `UTC`, or `±HH[:]MM` / `±HH`, at `index`; the offset in seconds.
    private static func zone(_ bytes: UnsafeBufferPointer<UInt8>, at index: inout Int) -> Int? {
        guard index < bytes.count else { return nil }
        let first = bytes[index]
        if first | 0x20 == UInt8(ascii: "z") {
            index += 1
            return 0
        }
        if first | 0x20 == UInt8(ascii: "u"), index + 3 <= bytes.count,
            bytes[index + 1] | 0x20 == UInt8(ascii: "t"), bytes[index + 2] | 0x20 == UInt8(ascii: "c")
        {
            index += 3
            return 0
        }
        guard first == UInt8(ascii: "+") || first == UInt8(ascii: "-") else { return nil }
        index += 1
        func two() -> Int? {
            guard index + 2 <= bytes.count, bytes[index] &- 0x30 < 10, bytes[index + 1] &- 0x30 < 10 else { return nil }
            defer { index += 2 }
            return Int(bytes[index] &- 0x30) * 10 + Int(bytes[index + 1] &- 0x30)
        }
        guard let hours = two(), hours < 24 else { return nil }
        var minutes = 0
        let colon = index < bytes.count && bytes[index] == UInt8(ascii: ":")
        if colon { index += 1 }
        if colon || (index < bytes.count && bytes[index] &- 0x30 < 10) {
            guard let value = two(), value < 60 else { return nil }
            minutes = value
        }
        return (hours * 60 + minutes) * 60 * (first == UInt8(ascii: "-") ? -1 : 1)
    }

    /// Why the format, with `timezone`, can't read a column of `type`; nil when it can.
    public func problem(for type: ColumnType, timezone: String?) -> String? {
        switch type {
        case .date:
            return timezone == nil ? nil : "a timezone applies to TIMESTAMP columns, not to a DATE"
        case .datetime:
            if readsZone { return "a DATETIME has no time zone, so its format can't read one (%z)" }
            return timezone == nil ? nil : "a timezone applies to TIMESTAMP columns, not to a DATETIME"
        case .timestamp:
            return nil
        default:
            return "a format applies to DATE, TIMESTAMP and DATETIME columns, not to \(type.rawValue)"
        }
    }

    /// Reads `text` whole (see `read(_:)`).
    public func read(_ text: String) -> Reading? {
        var text = text
        return text.withUTF8 { read($0) }
    }
}

extension TimeFormat.Reading {
    /// Seconds since 1970-01-01 00:00 UTC, the reading taken in `zone` when it carries no
    /// offset of its own. A local time that happens twice (the hour clocks go back) is its
    /// first occurrence; one the clocks skip is the instant they jump past it.
    public func instant(in zone: TimeZone) -> Int {
        let local = date.daysSinceEpoch * 86_400 + seconds
        if let offset { return local - offset }
        if zone.identifier == "GMT" || zone.identifier == "UTC" { return local }
        return LocalClock(timeZone: zone).firstInstant(reading: local)
    }
}
