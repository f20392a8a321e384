import Foundation

extension CronExpression {
    /// Why no date can ever match, or nil when some date does. Only the day-of-month and
    /// month fields can rule every date out (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`): February 29
    /// counts, since leap years have it, and when both day fields are restricted any matching
    /// weekday will do.
    public var impossibility: Impossibility? {
        if dayOfMonthRestricted && dayOfWeekRestricted { return nil }
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let shortestDay = daysOfMonth.min() ?? 1
        if months.contains(where: { shortestDay <= longest[$0] }) { return nil }
        let monthNames = months.sorted().map { Self.monthNames[$0 - 1] }
        let days = daysOfMonth.sorted().map(String.init)
        let have = monthNames.count == 1 ? "has" : "have"
        return Impossibility(
            description: "never fires: \(Self.sentence(monthNames, "and")) \(have) no day \(Self.sentence(days, "or"))",
            offset: dayOfMonthOffset)
    }

    /// A cron expression that parses but names no date that exists.
    public struct Impossibility: CustomStringConvertible, Sendable {
        public var description: String
        /// Offset (in characters) into the expression of the day-of-month field.
        public var offset: Int
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ]

    private static func sentence(_ items: [String], _ conjunction: String) -> String {
        items.count < 2 ? items.joined() : items.dropLast().joined(separator: ", ") + " \(conjunction) " + items.last!
    }
}

/// Finds the local wall-clock times a cron expression names, field by field: an unmatched
/// month skips to the next allowed month, an unmatched day to the next day, an hour to the
/// next allowed hour; it never walks minute by minute.
///
/// Local times are whole seconds since 1970-01-01 00:00 on a clock without a time zone
/// (``LocalClock`` maps them to instants); matches fall on whole minutes.
struct CronMatcher: Sendable {
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    private let daysOfWeek: UInt64
    /// Both day fields restricted: a day matches if either does (Vixie cron).
    private let eitherDay: Bool

    init(_ expression: CronExpression) {
        func bits(_ values: Set<Int>) -> UInt64 { values.reduce(0) { $0 | 1 << UInt64($1) } }
        minutes = bits(expression.minutes)
        hours = bits(expression.hours)
        daysOfMonth = bits(expression.daysOfMonth)
        months = bits(expression.months)
        daysOfWeek = bits(expression.daysOfWeek)
        eitherDay = expression.dayOfMonthRestricted && expression.dayOfWeekRestricted
    }

    func matches(local: Int) -> Bool {
        let day = local.floorDivided(by: 86_400)
        let second = local - day * 86_400
        let date = CalendarDate(daysSinceEpoch: day)
        return second % 60 == 0 && months.has(date.month) && dayMatches(date, day)
            && hours.has(second / 3_600) && minutes.has(second / 60 % 60)
    }

    /// The first matching local time at or after `local` and before `limit`.
    func first(atOrAfter local: Int, before limit: Int) -> Int? {
        var day = local.ceilingDivided(by: 60).floorDivided(by: 1_440)
        var minuteOfDay = local.ceilingDivided(by: 60) - day * 1_440
        while day * 86_400 < limit {
            let date = CalendarDate(daysSinceEpoch: day)
            if !months.has(date.month) {
                let next = months.lowest(atOrAbove: date.month + 1).map { (date.year, $0) } ?? (date.year + 1, months.lowest(atOrAbove: 1)!)
                day = CalendarDate(year: next.0, month: next.1, day: 1).daysSinceEpoch
                minuteOfDay = 0
                continue
            }
            if dayMatches(date, day), let time = firstTime(atOrAfter: minuteOfDay) {
                let match = day * 86_400 + time * 60
                return match < limit ? match : nil
            }
            day += 1
            minuteOfDay = 0
        }
        return nil
    }

    /// The last matching local time at or before `local` and not before `limit`.
    func last(atOrBefore local: Int, notBefore limit: Int) -> Int? {
        var day = local.floorDivided(by: 60).floorDivided(by: 1_440)
        var minuteOfDay = local.floorDivided(by: 60) - day * 1_440
        while (day + 1) * 86_400 > limit {
            let date = CalendarDate(daysSinceEpoch: day)
            if !months.has(date.month) {
                let previous = months.highest(atOrBelow: date.month - 1).map { (date.year, $0) } ?? (date.year - 1, months.highest(atOrBelow: 12)!)
                day =
                    CalendarDate(
                        year: previous.0, month: previous.1,
                        day: CalendarDate.daysIn(month: previous.1, year: previous.0)
                    ).daysSinceEpoch
                minuteOfDay = 1_439
                continue
            }
            if dayMatches(date, day), let time = lastTime(atOrBefore: minuteOfDay) {
                let match = day * 86_400 + time * 60
                return match >= limit ? match : nil
            }
            day -= 1
            minuteOfDay = 1_439
        }
        return nil
    }

    private func dayMatches(_ date: CalendarDate, _ daysSinceEpoch: Int) -> Bool {
        // 1970-01-01 was a Thursday (4).
        let weekday = (daysSinceEpoch % 7 + 7 + 4) % 7
        let byMonthDay = daysOfMonth.has(date.day), byWeekday = daysOfWeek.has(weekday)
        return eitherDay ? byMonthDay || byWeekday : byMonthDay && byWeekday
    }

    private func firstTime(atOrAfter minuteOfDay: Int) -> Int? {
        let hour = minuteOfDay / 60
        if hours.has(hour), let minute = minutes.lowest(atOrAbove: minuteOfDay % 60) { return hour * 60 + minute }
        guard let later = hours.lowest(atOrAbove: hour + 1) else { return nil }
        return later * 60 + minutes.lowest(atOrAbove: 0)!
    }

    private func lastTime(atOrBefore minuteOfDay: Int) -> Int? {
        let hour = minuteOfDay / 60
        if hours.has(hour), let minute = minutes.highest(atOrBelow: minuteOfDay % 60) { return hour * 60 + minute }
        guard let earlier = hours.highest(atOrBelow: hour - 1) else { return nil }
        return earlier * 60 + minutes.highest(atOrBelow: 63)!
    }
}

extension UInt64 {
    fileprivate func has(_ bit: Int) -> Bool { bit >= 0 && bit < 64 && self & (1 << UInt64(bit)) != 0 }

    fileprivate func lowest(atOrAbove bit: Int) -> Int? {
        guard bit < 64 else { return nil }
        let rest = self >> UInt64(Swift.max(bit, 0))
        return rest == 0 ? nil : Swift.max(bit, 0) + rest.trailingZeroBitCount
    }

    fileprivate func highest(atOrBelow bit: Int) -> Int? {
        guard bit >= 0 else { return nil }
        let rest = bit >= 63 ? self : self & ((1 << UInt64(bit + 1)) - 1)
        return rest == 0 ? nil : 63 - rest.leadingZeroBitCount
    }
}

extension Int {
    func floorDivided(by divisor: Int) -> Int {
        let quotient = self / divisor
        return self % divisor < 0 ? quotient - 1 : quotient
    }

    func ceilingDivided(by divisor: Int) -> Int {
        -(-self).floorDivided(by: divisor)
    }
}
