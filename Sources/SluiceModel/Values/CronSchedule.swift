import Foundation

/// A cron expression read in a time zone: the instants at which it fires.
///
/// The expression names local wall-clock times. Where daylight saving time (or any change
/// of a zone's UTC offset) skips or repeats local times, it fires as follows:
///
/// - **A specific hour** (the hour field is written without `*`: `30 2 * * *`,
///   `0 9-17 * * 1-5`) fires once for each local time it names, at the first instant the
///   clock reads that time or later. A time the clock skips (02:30 on a day that jumps from
///   02:00 to 03:00) fires once, at the end of the gap (03:00); several skipped times fire
///   together, once. A time the clock shows twice (02:30 on a day that goes back from 03:00
///   to 02:00) fires once, at its first occurrence.
/// - **An hour written with `*`** (`*/15 * * * *`, `5 * * * *`, `0 */2 * * *`, `@hourly`)
///   keeps time by the hour rather than by the clock: it fires at every instant at which
///   the clock reads a matching time. In a repeated hour it fires in both passes
///   (`*/15 * * * *` stays every 15 real minutes); in a gap there is no such instant, so
///   nothing fires for the skipped times and nothing is made up later.
///
/// This follows Vixie cron and cronie, which run fixed-time jobs once across a change and
/// wildcard jobs by elapsed time; unlike them, a `*` in the minute field alone
/// (`*/15 2 * * *`) does not make the expression keep time by the hour: the hour is still
/// specific, so it fires once at 03:00 on the day 02:00–02:59 is skipped.
///
/// Searches skip field by field (month, day, hour, minute), never minute by minute, and
/// give up after 400 years, when the Gregorian calendar repeats, so an expression that can
/// never fire (``CronExpression/impossibility``, `0 0 30 2 *`) returns nil rather than
/// searching forever.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let timeZone: TimeZone
    let matcher: CronMatcher
    let clock: LocalClock
    private let firesAtAll: Bool

    /// 400 Gregorian years, weekdays included, in seconds: any date the fields can match
    /// recurs within it.
    private static let horizon = 146_097 * 86_400

    public init(_ expression: CronExpression, timeZone: TimeZone) {
        self.expression = expression
        self.timeZone = timeZone
        matcher = CronMatcher(expression)
        clock = LocalClock(timeZone: timeZone)
        firesAtAll = expression.impossibility == nil
    }

    /// The first fire time strictly after `instant`, or nil if the expression never fires.
    public func nextFireTime(after instant: Date) -> Date? {
        next(after: Self.seconds(instant)).map(Self.date)
    }

    /// The latest fire time at or before `instant` (for "the run that is due now"), or nil
    /// if there is none within 400 years.
    public func previousFireTime(atOrBefore instant: Date) -> Date? {
        previous(atOrBefore: Self.seconds(instant)).map(Self.date)
    }

    /// The fire times in `start ..< end` (or from `start` on, without an end), in order,
    /// computed as the sequence is read.
    public func fireTimes(from start: Date, to end: Date? = nil) -> FireTimes {
        // Fire times are whole seconds, so "at or after start" is "after ⌈start⌉ - 1".
        FireTimes(schedule: self, cursor: Self.seconds(start, rounded: .up) - 1, end: end)
    }

    /// Fire times in order, from a start (inclusive) to an end (exclusive) if there is one.
    public struct FireTimes: Sequence, IteratorProtocol, Sendable {
        let schedule: CronSchedule
        var cursor: Int
        let end: Date?

        public mutating func next() -> Date? {
            guard let fire = schedule.next(after: cursor) else { return nil }
            let date = CronSchedule.date(fire)
            if let end, date >= end { return nil }
            cursor = fire
            return date
        }
    }

    // MARK: Whole seconds

    func next(after instant: Int) -> Int? {
        guard firesAtAll else { return nil }
        if expression.hourRestricted {
            // Every local time up to the highest the clock has read has had its turn.
            let seen = clock.highestReading(atOrBefore: instant)
            return matcher.first(atOrAfter: seen + 1, before: seen + Self.horizon).map(clock.firstInstant(reading:))
        }
        var start = instant + 1
        let limit = instant + Self.horizon
        while start < limit {
            let offset = clock.offset(at: start)
            let end = Swift.min(clock.nextChange(after: start) ?? limit, limit)
            if let match = matcher.first(atOrAfter: start + offset, before: end + offset) { return match - offset }
            start = end
        }
        return nil
    }

    func previous(atOrBefore instant: Int) -> Int? {
        guard firesAtAll else { return nil }
        if expression.hourRestricted {
            let seen = clock.highestReading(atOrBefore: instant)
            return matcher.last(atOrBefore: seen, notBefore: seen - Self.horizon).map(clock.firstInstant(reading:))
        }
        // The zone's offset history only runs forward, so walk back a year at a time.
        var end = instant + 1
        let limit = instant - Self.horizon
        while end > limit {
            let start = Swift.max(end - 366 * 86_400, limit)
            for stretch in clock.stretches(from: start, to: end).reversed() {
                if let match = matcher.last(atOrBefore: stretch.end - 1 + stretch.offset, notBefore: stretch.start + stretch.offset) {
                    return match - stretch.offset
                }
            }
            end = start
        }
        return nil
    }

    /// `date` in whole seconds (by default the second it falls in), kept within ±30,000 years.
    static func seconds(_ date: Date, rounded rule: FloatingPointRoundingRule = .down) -> Int {
        let bound = 1e12
        return Int(Swift.min(Swift.max(date.timeIntervalSince1970, -bound), bound).rounded(rule))
    }

    static func date(_ seconds: Int) -> Date {
        Date(timeIntervalSince1970: Double(seconds))
    }
}
