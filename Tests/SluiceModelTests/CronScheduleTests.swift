import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceModel

/// Fire times shown the way a person checks them: local time with offset, and UTC.
private func shown(_ dates: [Date], in zone: String) -> [String] {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: zone)!
    formatter.dateFormat = "EEE yyyy-MM-dd HH:mm xxx"
    return dates.map(formatter.string(from:))
}

private func instant(_ text: String) -> Date {
    ISO8601DateFormatter().date(from: text)!
}

private func schedule(_ expression: String, _ zone: String) throws -> CronSchedule {
    CronSchedule(try CronExpression(parsing: expression), timeZone: try #require(TimeZone(identifier: zone)))
}

/// The next `count` fire times after `start`, shown in `zone` (or why there are none).
private func next(_ expression: String, in zone: String, after start: String, count: Int = 3) -> [String] {
    do {
        let fires = try schedule(expression, zone).fireTimes(from: instant(start).addingTimeInterval(1)).prefix(count)
        return shown(Array(fires), in: zone)
    } catch {
        return ["\(error)"]
    }
}

struct CronScheduleTests {
    // MARK: Spring forward: local times that don't exist

    @Test func aSkippedLocalTimeFiresOnceAtTheEndOfTheGap() throws {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        #expect(
            next("30 2 * * *", in: "America/New_York", after: "2026-03-07T00:00:00Z") == [
                "Sat 2026-03-07 02:30 -05:00", "Sun 2026-03-08 03:00 -04:00", "Mon 2026-03-09 02:30 -04:00",
            ])
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        #expect(
            next("30 2 * * *", in: "Europe/Berlin", after: "2026-03-28T12:00:00Z", count: 2) == [
                "Sun 2026-03-29 03:00 +02:00", "Mon 2026-03-30 02:30 +02:00",
            ])
    }

    @Test func severalSkippedTimesFireTogetherOnce() throws {
        #expect(
            next("0,15,30,45 2 * * *", in: "America/New_York", after: "2026-03-08T06:00:00Z") == [
                "Sun 2026-03-08 03:00 -04:00", "Mon 2026-03-09 02:00 -04:00", "Mon 2026-03-09 02:15 -04:00",
            ])
        // 03:00 is both the end of the gap and a time of its own: still one fire.
        #expect(
            next("0,30 2,3 * * *", in: "America/New_York", after: "2026-03-08T06:00:00Z") == [
                "Sun 2026-03-08 03:00 -04:00", "Sun 2026-03-08 03:30 -04:00", "Mon 2026-03-09 02:00 -04:00",
            ])
        // A `*` minute with a specific hour is still a specific hour.
        #expect(
            next("*/15 2 * * *", in: "America/New_York", after: "2026-03-08T06:00:00Z", count: 2) == [
                "Sun 2026-03-08 03:00 -04:00", "Mon 2026-03-09 02:00 -04:00",
            ])
    }

    @Test func anEveryHourScheduleSkipsTheGapAndMakesNothingUp() throws {
        #expect(
            next("30 * * * *", in: "America/New_York", after: "2026-03-08T06:00:00Z") == [
                "Sun 2026-03-08 01:30 -05:00", "Sun 2026-03-08 03:30 -04:00", "Sun 2026-03-08 04:30 -04:00",
            ])
        #expect(
            next("*/20 * * * *", in: "America/New_York", after: "2026-03-08T06:30:00Z", count: 4) == [
                "Sun 2026-03-08 01:40 -05:00", "Sun 2026-03-08 03:00 -04:00", "Sun 2026-03-08 03:20 -04:00", "Sun 2026-03-08 03:40 -04:00",
            ])
    }

    @Test func aHalfHourShiftSkipsHalfAnHour() throws {
        // Lord Howe Island, 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00.
        #expect(
            next("15 2 * * *", in: "Australia/Lord_Howe", after: "2026-10-03T12:00:00Z", count: 2) == [
                "Sun 2026-10-04 02:30 +11:00", "Mon 2026-10-05 02:15 +11:00",
            ])
        #expect(
            next("*/15 * * * *", in: "Australia/Lord_Howe", after: "2026-10-03T15:10:00Z", count: 3) == [
                "Sun 2026-10-04 01:45 +10:30", "Sun 2026-10-04 02:30 +11:00", "Sun 2026-10-04 02:45 +11:00",
            ])
    }

    @Test func aGapAtMidnightMovesMidnightRuns() throws {
        // Santiago, 2026-09-06: 00:00 -04:00 jumps to 01:00 -03:00.
        #expect(
            next("0 0 * * *", in: "America/Santiago", after: "2026-09-04T12:00:00Z") == [
                "Sat 2026-09-05 00:00 -04:00", "Sun 2026-09-06 01:00 -03:00", "Mon 2026-09-07 00:00 -03:00",
            ])
    }

    @Test func aSkippedDayStillGetsItsRunsOnce() throws {
        // Samoa skipped 2011-12-30 entirely, jumping from -10:00 to +14:00.
        #expect(
            next("0 12 * * *", in: "Pacific/Apia", after: "2011-12-29T12:00:00Z") == [
                "Thu 2011-12-29 12:00 -10:00", "Sat 2011-12-31 00:00 +14:00", "Sat 2011-12-31 12:00 +14:00",
            ])
        #expect(
            next("0 */6 * * *", in: "Pacific/Apia", after: "2011-12-30T03:00:00Z") == [
                "Thu 2011-12-29 18:00 -10:00", "Sat 2011-12-31 00:00 +14:00", "Sat 2011-12-31 06:00 +14:00",
            ])
    }

    // MARK: Fall back: local times that happen twice

    @Test func aRepeatedLocalTimeFiresOnceAtItsFirstOccurrence() throws {
        // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST, so 01:00–01:59 happens twice.
        #expect(
            next("30 1 * * *", in: "America/New_York", after: "2026-11-01T00:00:00Z") == [
                "Sun 2026-11-01 01:30 -04:00", "Mon 2026-11-02 01:30 -05:00", "Tue 2026-11-03 01:30 -05:00",
            ])
        // Asked during the second pass, the next run is tomorrow's.
        #expect(
            next("30 1 * * *", in: "America/New_York", after: "2026-11-01T06:10:00Z", count: 1) == [
                "Mon 2026-11-02 01:30 -05:00"
            ])
        // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET.
        #expect(
            next("0-59/20 2 * * *", in: "Europe/Berlin", after: "2026-10-24T23:00:00Z", count: 4) == [
                "Sun 2026-10-25 02:00 +02:00", "Sun 2026-10-25 02:20 +02:00", "Sun 2026-10-25 02:40 +02:00", "Mon 2026-10-26 02:00 +01:00",
            ])
    }

    @Test func anEveryHourScheduleRunsInBothPassesOfARepeatedHour() throws {
        let fires = try schedule("*/15 * * * *", "America/New_York")
            .fireTimes(from: instant("2026-11-01T05:00:00Z"), to: instant("2026-11-01T07:00:00Z"))
        #expect(
            shown(Array(fires), in: "America/New_York") == [
                "Sun 2026-11-01 01:00 -04:00", "Sun 2026-11-01 01:15 -04:00", "Sun 2026-11-01 01:30 -04:00", "Sun 2026-11-01 01:45 -04:00",
                "Sun 2026-11-01 01:00 -05:00", "Sun 2026-11-01 01:15 -05:00", "Sun 2026-11-01 01:30 -05:00", "Sun 2026-11-01 01:45 -05:00",
            ])
        // Every two hours by the clock's `*`, so 02:00 comes twice in Berlin.
        #expect(
            next("0 */2 * * *", in: "Europe/Berlin", after: "2026-10-24T21:00:00Z", count: 4) == [
                "Sun 2026-10-25 00:00 +02:00", "Sun 2026-10-25 02:00 +02:00", "Sun 2026-10-25 02:00 +01:00", "Sun 2026-10-25 04:00 +01:00",
            ])
    }

    @Test func aHalfHourFallBackRepeatsHalfAnHour() throws {
        // Lord Howe Island, 2026-04-05: 02:00 +11:00 goes back to 01:30 +10:30.
        #expect(
            next("45 1 * * *", in: "Australia/Lord_Howe", after: "2026-04-04T12:00:00Z", count: 2) == [
                "Sun 2026-04-05 01:45 +11:00", "Mon 2026-04-06 01:45 +10:30",
            ])
        #expect(
            next("*/15 * * * *", in: "Australia/Lord_Howe", after: "2026-04-04T14:40:00Z", count: 5) == [
                "Sun 2026-04-05 01:45 +11:00", "Sun 2026-04-05 01:30 +10:30", "Sun 2026-04-05 01:45 +10:30", "Sun 2026-04-05 02:00 +10:30",
                "Sun 2026-04-05 02:15 +10:30",
            ])
    }

    @Test func aFallBackAcrossMidnightRepeatsTheLastHourOfTheDay() throws {
        // Santiago, 2026-04-04: 24:00 -03:00 goes back to 23:00 -04:00.
        #expect(
            next("30 23 * * *", in: "America/Santiago", after: "2026-04-04T12:00:00Z", count: 2) == [
                "Sat 2026-04-04 23:30 -03:00", "Sun 2026-04-05 23:30 -04:00",
            ])
        #expect(
            next("0 0 * * *", in: "America/Santiago", after: "2026-04-04T12:00:00Z", count: 2) == [
                "Sun 2026-04-05 00:00 -04:00", "Mon 2026-04-06 00:00 -04:00",
            ])
    }

    // MARK: Calendar

    @Test func leapDaysComeEveryFourYearsButNotIn2100() throws {
        #expect(
            next("0 0 29 2 *", in: "UTC", after: "2025-01-01T00:00:00Z", count: 2) == [
                "Tue 2028-02-29 00:00 +00:00", "Sun 2032-02-29 00:00 +00:00",
            ])
        #expect(next("0 0 29 2 *", in: "UTC", after: "2096-03-01T00:00:00Z", count: 1) == ["Fri 2104-02-29 00:00 +00:00"])
        // Only Sunday leap days (a `*` day-of-week restricts without the OR rule): 40 years apart.
        #expect(next("0 0 29 2 */7", in: "UTC", after: "2089-01-01T00:00:00Z", count: 1) == ["Sun 2128-02-29 00:00 +00:00"])
        let previous = try schedule("0 0 29 2 *", "Europe/Berlin").previousFireTime(atOrBefore: instant("2104-02-28T00:00:00Z"))
        #expect(shown([try #require(previous)], in: "Europe/Berlin") == ["Wed 2096-02-29 00:00 +01:00"])
    }

    @Test func eitherDayFieldMatchesWhenBothAreRestricted() throws {
        // The 13th, or any Friday.
        #expect(
            next("0 12 13 * fri", in: "UTC", after: "2026-02-01T00:00:00Z", count: 4) == [
                "Fri 2026-02-06 12:00 +00:00", "Fri 2026-02-13 12:00 +00:00", "Fri 2026-02-20 12:00 +00:00", "Fri 2026-02-27 12:00 +00:00",
            ])
        #expect(
            next("0 12 13 * fri", in: "UTC", after: "2026-03-01T00:00:00Z", count: 3) == [
                "Fri 2026-03-06 12:00 +00:00", "Fri 2026-03-13 12:00 +00:00", "Fri 2026-03-20 12:00 +00:00",
            ])
        #expect(
            next("0 12 13 * fri", in: "UTC", after: "2026-04-10T13:00:00Z", count: 2) == [
                "Mon 2026-04-13 12:00 +00:00", "Fri 2026-04-17 12:00 +00:00",
            ])
        // A day-of-month written with `*` is not restricted, so both must match: odd Fridays.
        #expect(
            next("0 12 */2 * fri", in: "UTC", after: "2026-04-01T00:00:00Z", count: 2) == [
                "Fri 2026-04-03 12:00 +00:00", "Fri 2026-04-17 12:00 +00:00",
            ])
        // Feb 30 never comes, but Mondays in February do.
        #expect(next("0 0 30 2 mon", in: "UTC", after: "2026-01-01T00:00:00Z", count: 1) == ["Mon 2026-02-02 00:00 +00:00"])
    }

    @Test func sevenIsSundayLikeZero() throws {
        let expected = next("0 9 * * 0", in: "Asia/Kolkata", after: "2026-05-01T00:00:00Z")
        #expect(expected == ["Sun 2026-05-03 09:00 +05:30", "Sun 2026-05-10 09:00 +05:30", "Sun 2026-05-17 09:00 +05:30"])
        #expect(next("0 9 * * 7", in: "Asia/Kolkata", after: "2026-05-01T00:00:00Z") == expected)
        #expect(next("0 9 * * sun", in: "Asia/Kolkata", after: "2026-05-01T00:00:00Z") == expected)
        #expect(
            next("0 9 * * 5-7", in: "Asia/Kolkata", after: "2026-05-01T00:00:00Z") == [
                "Fri 2026-05-01 09:00 +05:30", "Sat 2026-05-02 09:00 +05:30", "Sun 2026-05-03 09:00 +05:30",
            ])
    }

    @Test func aStepFromAWeekdayRunsThroughSunday() throws {
        #expect(
            next("0 9 * * 1/2", in: "UTC", after: "2026-05-01T00:00:00Z", count: 4) == [
                "Fri 2026-05-01 09:00 +00:00", "Sun 2026-05-03 09:00 +00:00", "Mon 2026-05-04 09:00 +00:00", "Wed 2026-05-06 09:00 +00:00",
            ])
        #expect(
            next("0 9 * * fri/1", in: "UTC", after: "2026-05-01T00:00:00Z", count: 3) == [
                "Fri 2026-05-01 09:00 +00:00", "Sat 2026-05-02 09:00 +00:00", "Sun 2026-05-03 09:00 +00:00",
            ])
        // 7 alone, stepped, is Sunday, not a range that runs backwards.
        #expect(
            next("0 9 * * 7/2", in: "UTC", after: "2026-05-01T00:00:00Z", count: 2) == ["Sun 2026-05-03 09:00 +00:00", "Sun 2026-05-10 09:00 +00:00"])
    }

    @Test func theYearRollsOver() throws {
        #expect(next("59 23 31 12 *", in: "UTC", after: "2026-12-31T23:59:00Z", count: 1) == ["Fri 2027-12-31 23:59 +00:00"])
        #expect(next("0 0 1 1 *", in: "Europe/Berlin", after: "2026-12-31T22:59:30Z", count: 1) == ["Fri 2027-01-01 00:00 +01:00"])
        #expect(
            next("*/30 * * dec,jan *", in: "UTC", after: "2026-12-31T23:00:00Z") == [
                "Thu 2026-12-31 23:30 +00:00", "Fri 2027-01-01 00:00 +00:00", "Fri 2027-01-01 00:30 +00:00",
            ])
        let previous = try schedule("0 6 * 11 *", "UTC").previousFireTime(atOrBefore: instant("2027-03-01T00:00:00Z"))
        #expect(shown([try #require(previous)], in: "UTC") == ["Mon 2026-11-30 06:00 +00:00"])
    }

    @Test func shorthandsFireLikeTheirExpansions() throws {
        #expect(
            next("@hourly", in: "UTC", after: "2026-12-31T22:30:00Z", count: 2) == ["Thu 2026-12-31 23:00 +00:00", "Fri 2027-01-01 00:00 +00:00"])
        #expect(next("@weekly", in: "UTC", after: "2026-05-01T00:00:00Z", count: 1) == ["Sun 2026-05-03 00:00 +00:00"])
        #expect(next("@yearly", in: "UTC", after: "2026-05-01T00:00:00Z", count: 1) == ["Fri 2027-01-01 00:00 +00:00"])
    }

    @Test func anUnknownShorthandNamesEveryOneThereIs() {
        #expect(throws: CronExpression.ParseError.self) { try CronExpression(parsing: "@fortnightly") }
        do {
            _ = try CronExpression(parsing: "@fortnightly")
        } catch {
            #expect(
                error.description
                    == "unknown cron shorthand '@fortnightly'; use @hourly, @daily (@midnight), @weekly, @monthly or @yearly (@annually)")
        }
    }

    @Test func dailyAndMidnightFireAtLocalMidnightAcrossClockChanges() throws {
        func fires(_ expression: String, _ zone: String, _ start: String, _ end: String) throws -> [Date] {
            Array(try schedule(expression, zone).fireTimes(from: instant(start), to: instant(end)))
        }
        // New York springs forward at 02:00 on 2026-03-08: midnight is EST before, EDT after.
        let springForward = [
            instant("2026-03-07T05:00:00Z"), instant("2026-03-08T05:00:00Z"), instant("2026-03-09T04:00:00Z"), instant("2026-03-10T04:00:00Z"),
        ]
        #expect(try fires("@daily", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T12:00:00Z") == springForward)
        #expect(try fires("@midnight", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T12:00:00Z") == springForward)
        // It falls back at 02:00 on 2026-11-01, so that day is 25 hours long.
        let fallBack = [instant("2026-10-31T04:00:00Z"), instant("2026-11-01T04:00:00Z"), instant("2026-11-02T05:00:00Z")]
        #expect(try fires("@daily", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z") == fallBack)
        #expect(try fires("@midnight", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z") == fallBack)
        // A shorthand's hour is specific: Santiago skips 00:00-00:59 on 2026-09-06, so it runs at 01:00 -03:00.
        let skippedMidnight = [instant("2026-09-05T04:00:00Z"), instant("2026-09-06T04:00:00Z"), instant("2026-09-07T03:00:00Z")]
        #expect(try fires("@daily", "America/Santiago", "2026-09-05T00:00:00Z", "2026-09-07T12:00:00Z") == skippedMidnight)
        #expect(try fires("@midnight", "America/Santiago", "2026-09-05T00:00:00Z", "2026-09-07T12:00:00Z") == skippedMidnight)
    }

    @Test func monthlyAndAnnuallyFireAtLocalMidnightOnTheFirst() throws {
        let monthly = try schedule("@monthly", "America/New_York")
        #expect(
            Array(monthly.fireTimes(from: instant("2026-02-15T00:00:00Z"), to: instant("2026-05-15T00:00:00Z"))) == [
                instant("2026-03-01T05:00:00Z"), instant("2026-04-01T04:00:00Z"), instant("2026-05-01T04:00:00Z"),
            ])
        // 2026-11-01 is the day clocks go back, at 02:00: its midnight is still EDT.
        #expect(
            Array(monthly.fireTimes(from: instant("2026-09-15T00:00:00Z"), to: instant("2026-12-15T00:00:00Z"))) == [
                instant("2026-10-01T04:00:00Z"), instant("2026-11-01T04:00:00Z"), instant("2026-12-01T05:00:00Z"),
            ])
        #expect(monthly.previousFireTime(atOrBefore: instant("2026-03-31T12:00:00Z")) == instant("2026-03-01T05:00:00Z"))
        // Asked in summer (EDT), New Year's midnight is EST.
        let annually = try schedule("@annually", "America/New_York")
        #expect(
            Array(annually.fireTimes(from: instant("2026-07-01T00:00:00Z")).prefix(2)) == [
                instant("2027-01-01T05:00:00Z"), instant("2028-01-01T05:00:00Z"),
            ])
        #expect(annually.previousFireTime(atOrBefore: instant("2026-07-01T00:00:00Z")) == instant("2026-01-01T05:00:00Z"))
        #expect(annually.nextFireTime(after: instant("2026-12-31T05:00:00Z")) == instant("2027-01-01T05:00:00Z"))
    }

    // MARK: Never

    @Test(arguments: ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30-31 feb *", "0 0 31 2 */2"])
    func anImpossibleExpressionReturnsNilQuickly(_ text: String) throws {
        let cron = try CronExpression(parsing: text)
        #expect(cron.impossibility != nil)
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            let schedule = try schedule(text, "Europe/Berlin")
            #expect(schedule.nextFireTime(after: instant("2026-01-01T00:00:00Z")) == nil)
            #expect(schedule.previousFireTime(atOrBefore: instant("2026-01-01T00:00:00Z")) == nil)
            // prefix: if the expression can fire after all, fail rather than read for ever.
            #expect(Array(schedule.fireTimes(from: instant("2026-01-01T00:00:00Z")).prefix(1)).isEmpty)
        }
        #expect(elapsed < TestTime.patience, "it must not search for ever")
    }

    @Test func theImpossibilityNamesTheMonthsAndDays() throws {
        let impossible = try #require(try CronExpression(parsing: "0 0 31 apr,6,9,11 *").impossibility)
        #expect(impossible.description == "never fires: April, June, September and November have no day 31")
        #expect(impossible.offset == 4)
        #expect(try CronExpression(parsing: "0 0 30,31 2 *").impossibility?.description == "never fires: February has no day 30 or 31")
        #expect(try CronExpression(parsing: "0 0 29 2 *").impossibility == nil)
        #expect(try CronExpression(parsing: "0 0 30 2 1").impossibility == nil)
    }

    @Test func theFieldSearchStopsAtItsLimit() throws {
        // The schedule asks impossibility first; the search itself still ends on its own.
        let matcher = CronMatcher(try CronExpression(parsing: "0 0 30 2 *"))
        let fourHundredYears = 146_097 * 86_400
        #expect(matcher.first(atOrAfter: 0, before: fourHundredYears) == nil)
        #expect(matcher.last(atOrBefore: 0, notBefore: -fourHundredYears) == nil)
    }

    // MARK: Previous and ranges

    @Test func previousIsTheLatestFireAtOrBefore() throws {
        let daily = try schedule("0 3 * * *", "America/New_York")
        #expect(daily.previousFireTime(atOrBefore: instant("2026-06-10T07:00:00Z")) == instant("2026-06-10T07:00:00Z"))
        #expect(daily.previousFireTime(atOrBefore: instant("2026-06-10T06:59:59Z")) == instant("2026-06-09T07:00:00Z"))
        // The skipped 02:30 ran at 03:00; a moment later that is the latest.
        let skipped = try schedule("30 2 * * *", "America/New_York")
        #expect(skipped.previousFireTime(atOrBefore: instant("2026-03-08T07:00:30Z")) == instant("2026-03-08T07:00:00Z"))
        #expect(skipped.previousFireTime(atOrBefore: instant("2026-03-08T06:59:59Z")) == instant("2026-03-07T07:30:00Z"))
        // In the second pass of the repeated hour, the first pass's run is the latest.
        let repeated = try schedule("30 1 * * *", "America/New_York")
        #expect(repeated.previousFireTime(atOrBefore: instant("2026-11-01T06:45:00Z")) == instant("2026-11-01T05:30:00Z"))
    }

    @Test func fireTimesIncludeTheStartAndExcludeTheEnd() throws {
        let hourly = try schedule("0 * * * *", "UTC")
        let fires = Array(hourly.fireTimes(from: instant("2026-01-01T00:00:00Z"), to: instant("2026-01-01T03:00:00Z")))
        #expect(fires == [instant("2026-01-01T00:00:00Z"), instant("2026-01-01T01:00:00Z"), instant("2026-01-01T02:00:00Z")])
        let fromAFraction = Array(
            hourly.fireTimes(from: instant("2026-01-01T00:00:00Z").addingTimeInterval(0.25), to: instant("2026-01-01T02:00:00Z")))
        #expect(fromAFraction == [instant("2026-01-01T01:00:00Z")])
        #expect(hourly.nextFireTime(after: instant("2026-01-01T00:59:59Z").addingTimeInterval(0.9)) == instant("2026-01-01T01:00:00Z"))
        // Without an end the sequence goes on, past Date.distantFuture (4001) too.
        let leapDays = try schedule("0 0 29 2 *", "UTC").fireTimes(from: instant("3999-01-01T00:00:00Z")).prefix(2)
        #expect(shown(Array(leapDays), in: "UTC") == ["Tue 4000-02-29 00:00 +00:00", "Sun 4004-02-29 00:00 +00:00"])
    }

    // MARK: Notes for people

    @Test func notesSayWhatTheClockChangeDid() throws {
        func note(_ expression: String, _ fire: String) throws -> String? {
            try schedule(expression, "America/New_York").clockNote(for: instant(fire))
        }
        #expect(try note("30 2 * * *", "2026-03-08T07:00:00Z") == "for 02:30, skipped: clocks jump from 02:00 to 03:00")
        #expect(try note("0-45/15 2 * * *", "2026-03-08T07:00:00Z") == "for 4 times from 02:00 to 02:45, skipped: clocks jump from 02:00 to 03:00")
        #expect(try note("30 * * * *", "2026-03-08T07:30:00Z") == "02:30, skipped: clocks jump from 02:00 to 03:00")
        #expect(try note("30 1 * * *", "2026-11-01T05:30:00Z") == "01:30 comes twice: clocks go back from 02:00 to 01:00; runs the first time only")
        #expect(try note("*/30 * * * *", "2026-11-01T05:30:00Z") == "01:30 comes twice: clocks go back from 02:00 to 01:00; runs both times")
        #expect(try note("*/30 * * * *", "2026-11-01T06:00:00Z") == "01:00 again: clocks went back from 02:00 to 01:00")
        #expect(try note("30 2 * * *", "2026-03-09T06:30:00Z") == nil)
        #expect(try note("*/30 * * * *", "2026-11-01T07:00:00Z") == nil)
    }

    // MARK: Against brute force

    static let zones = [
        "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC", "America/Santiago", "Pacific/Chatham",
    ]

    /// Random expressions and windows, mostly around the zone's offset changes, compared
    /// with a reference that walks every UTC minute.
    @Test(arguments: zones)
    func agreesWithAMinuteByMinuteWalk(_ zone: String) throws {
        let timeZone = try #require(TimeZone(identifier: zone))
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: zone.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        let changes = offsetChanges(timeZone, from: instant("2019-01-01T00:00:00Z"), to: instant("2031-01-01T00:00:00Z"))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        for _ in 0..<50 {
            let center =
                changes.isEmpty || random.next() % 5 == 0
                ? 1_546_300_800 + Int(random.next() % (12 * 365 * 86_400))
                : changes[Int(random.next() % UInt64(changes.count))]
            let from = (center - Int(random.next() % (30 * 3_600))).floorDivided(by: 60) * 60
            let to = from + 86_400
            // Restricted day and month fields often include the window's, so most cases fire.
            let near = calendar.dateComponents([.month, .day, .weekday], from: Date(timeIntervalSince1970: Double(from + 43_200)))
            let text = RandomCron.expression(&random, near: near)
            let cron = try CronExpression(parsing: text)
            let schedule = CronSchedule(cron, timeZone: timeZone)
            let reference = try #require(ReferenceSchedule(expression: text, timeZone: timeZone), "\(text)")
            let expected = reference.fireTimes(from: from, to: to)
            let context = "\(text) in \(zone) over \(Date(timeIntervalSince1970: Double(from)))"
            // prefix: a wrong `next` that doesn't advance must fail the test, not hang it.
            let actual = schedule.fireTimes(from: Date(timeIntervalSince1970: Double(from)), to: Date(timeIntervalSince1970: Double(to)))
                .prefix(2_000).map { Int($0.timeIntervalSince1970) }
            #expect(actual == expected, "\(context)")

            // Ask from anywhere in the window, and often from right around the offset change.
            var probes = (0..<4).map { _ in from + Int(random.next() % 86_400) }
            for change in changes where change >= from && change < to {
                probes += (0..<6).map { _ in change - 5_400 + Int(random.next() % 10_800) }
            }
            for probe in probes where probe >= from && probe < to {
                let after = Date(timeIntervalSince1970: Double(probe) + Double(random.next() % 4) / 4)
                let next = schedule.nextFireTime(after: after).map { Int($0.timeIntervalSince1970) }
                if let expectedNext = expected.first(where: { Double($0) > after.timeIntervalSince1970 }) {
                    #expect(next == expectedNext, "next after \(after): \(context)")
                } else {
                    #expect(next.map { $0 >= to } ?? true, "next after \(after): \(context)")
                }
                let previous = schedule.previousFireTime(atOrBefore: after).map { Int($0.timeIntervalSince1970) }
                if let expectedPrevious = expected.last(where: { Double($0) <= after.timeIntervalSince1970 }) {
                    #expect(previous == expectedPrevious, "previous at or before \(after): \(context)")
                } else {
                    #expect(previous.map { $0 < from } ?? true, "previous at or before \(after): \(context)")
                }
            }
        }
    }

    private func offsetChanges(_ zone: TimeZone, from: Date, to: Date) -> [Int] {
        var changes: [Int] = []
        var cursor = from
        while let change = zone.nextDaylightSavingTimeTransition(after: cursor), change < to {
            changes.append(Int(change.timeIntervalSince1970))
            cursor = change
        }
        return changes
    }
}

/// The documented semantics applied literally, one UTC minute at a time: an every-hour
/// expression fires at each minute whose local reading matches; a specific-hour expression
/// fires at a minute for every matching local time that the clock reaches (or passes) for
/// the first time at that minute.
///
/// It reads the expression text itself (docs/pipeline-format.md, "Schedule"), never
/// `CronExpression`'s fields, so the walk checks parsing too.
struct ReferenceSchedule {
    let timeZone: TimeZone
    private let calendar: Calendar
    /// Indexed by value: `minutes[30]` is whether minute 30 matches; `daysOfWeek[0]` is Sunday.
    private let minutes: [Bool], hours: [Bool], daysOfMonth: [Bool], months: [Bool], daysOfWeek: [Bool]
    /// The hour field doesn't start with `*`, so it names hours of the local clock.
    private let hourRestricted: Bool
    /// Neither day field starts with `*`, so a day matches if either does.
    private let eitherDay: Bool

    /// Nil for text the reference can't read (the generator only writes what it can).
    init?(expression: String, timeZone: TimeZone) {
        let shorthands = [
            "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
        ]
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let weekdayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        // Names and shorthands are case-insensitive.
        let text = expression.lowercased()
        let fields = (shorthands[text] ?? text).split(separator: " ")
        guard fields.count == 5,
            let minutes = Self.table(fields[0], 0...59),
            let hours = Self.table(fields[1], 0...23),
            let daysOfMonth = Self.table(fields[2], 1...31),
            let months = Self.table(fields[3], 1...12, names: monthNames),
            let daysOfWeek = Self.table(fields[4], 0...7, names: weekdayNames)
        else { return nil }
        self.minutes = minutes
        self.hours = hours
        self.daysOfMonth = daysOfMonth
        self.months = months
        // 7 is Sunday too.
        self.daysOfWeek = (0..<7).map { daysOfWeek[$0] || ($0 == 0 && daysOfWeek[7]) }
        hourRestricted = !fields[1].hasPrefix("*")
        eitherDay = !fields[2].hasPrefix("*") && !fields[4].hasPrefix("*")
        self.timeZone = timeZone
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        self.calendar = calendar
    }

    /// One field as a table indexed by value: a comma list of `*`, `v` or `a-b` (numbers, or
    /// names counted from the field's first value), each with an optional `/step`; a step
    /// after a single value runs to the end of the field.
    private static func table(_ field: Substring, _ range: ClosedRange<Int>, names: [String] = []) -> [Bool]? {
        func value(_ text: Substring) -> Int? {
            if let index = names.firstIndex(of: String(text)) { return range.lowerBound + index }
            return Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
        var table = Array(repeating: false, count: range.upperBound + 1)
        for item in field.split(separator: ",", omittingEmptySubsequences: false) {
            let rangeAndStep = item.split(separator: "/", omittingEmptySubsequences: false)
            let bounds = rangeAndStep[0].split(separator: "-", omittingEmptySubsequences: false)
            guard rangeAndStep.count <= 2, bounds.count <= 2 else { return nil }
            let step = rangeAndStep.count == 2 ? Int(rangeAndStep[1]) : 1
            let low = rangeAndStep[0] == "*" ? range.lowerBound : value(bounds[0])
            let high =
                rangeAndStep[0] == "*"
                ? range.upperBound
                : bounds.count == 2
                    ? value(bounds[1])
                    : rangeAndStep.count == 2
                        ? range.upperBound
                        : low
            guard let low, let high, let step, step > 0, low <= high else { return nil }
            for value in stride(from: low, through: high, by: step) { table[value] = true }
        }
        return table
    }

    /// Fire times in `from ..< to` (whole minutes). The walk starts a few hours early so the
    /// highest reading so far is right when the window opens; no zone tested here goes back
    /// by more than an hour.
    func fireTimes(from: Int, to: Int) -> [Int] {
        var days: [Int: Bool] = [:]
        func dayMatches(_ day: Int) -> Bool {
            if let known = days[day] { return known }
            let date = calendar.dateComponents([.month, .day, .weekday], from: Date(timeIntervalSince1970: Double(day * 86_400)))
            let byMonthDay = daysOfMonth[date.day!], byWeekday = daysOfWeek[date.weekday! - 1]
            let matches = months[date.month!] && (eitherDay ? byMonthDay || byWeekday : byMonthDay && byWeekday)
            days[day] = matches
            return matches
        }
        func matches(_ local: Int) -> Bool {
            let day = local.floorDivided(by: 86_400)
            let minuteOfDay = (local - day * 86_400) / 60
            return hours[minuteOfDay / 60] && minutes[minuteOfDay % 60] && dayMatches(day)
        }
        func reading(_ instant: Int) -> Int {
            instant + timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
        }
        var fires: [Int] = []
        let walkStart = from - 3 * 3_600
        var highest = reading(walkStart) - 60
        for instant in stride(from: walkStart, to: to, by: 60) {
            let local = reading(instant)
            let due: Bool
            if hourRestricted {
                // Every local time the clock reaches (or jumps past) for the first time.
                due = local > highest && stride(from: highest + 60, through: local, by: 60).contains(where: matches)
                highest = max(highest, local)
            } else {
                due = matches(local)
            }
            if due && instant >= from { fires.append(instant) }
        }
        return fires
    }
}

/// Cron expressions that fire often enough to meet offset changes: lists mixing ranges and
/// single values, ranges, steps (`*/n`, `a-b/n`, `a/n`), month and weekday names in any case
/// (`jan`, `MON-fri`), 0 and 7 for Sunday, both day fields restricted, and the shorthands.
enum RandomCron {
    static func expression(_ random: inout SplitMix64, near date: DateComponents) -> String {
        if random.next() % 10 == 0 {
            return pick(&random, ["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"])
        }
        func orNear(_ field: String, _ value: String) -> String {
            field == "*" || random.next() % 2 == 0 ? field : "\(field),\(value)"
        }
        let today = date.weekday! - 1
        return [
            minute(&random), hour(&random),
            orNear(dayOfMonth(&random), "\(date.day!)"),
            orNear(month(&random), month(&random, date.month!)),
            orNear(dayOfWeek(&random), weekday(&random, today == 0 && random.next() % 2 == 0 ? 7 : today)),
        ].joined(separator: " ")
    }

    private static func pick<T>(_ random: inout SplitMix64, _ choices: [T]) -> T {
        choices[Int(random.next() % UInt64(choices.count))]
    }

    private static func number(_ random: inout SplitMix64, _ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(random.next() % UInt64(range.count))
    }

    /// A name as `jan`, `Jan` or `JAN`.
    private static func name(_ random: inout SplitMix64, _ names: [String], _ index: Int) -> String {
        let name = names[index]
        return pick(&random, [name, name.prefix(1).uppercased() + name.dropFirst(), name.uppercased()])
    }

    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let weekdayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// Month 1–12 as a number or a name.
    private static func month(_ random: inout SplitMix64, _ month: Int) -> String {
        random.next() % 2 == 0 ? "\(month)" : name(&random, monthNames, month - 1)
    }

    /// Weekday 0–7 as a number or (0–6) a name.
    private static func weekday(_ random: inout SplitMix64, _ day: Int) -> String {
        day == 7 || random.next() % 2 == 0 ? "\(day)" : name(&random, weekdayNames, day)
    }

    private static func minute(_ random: inout SplitMix64) -> String {
        switch random.next() % 9 {
        case 0: return "*/\(pick(&random, [5, 7, 10, 15, 20, 30]))"
        case 1: return "\(number(&random, 0...59))"
        case 2: return "\(number(&random, 0...29)),\(number(&random, 30...59))"
        case 3: let low = number(&random, 0...40); return "\(low)-\(low + number(&random, 0...19))"
        case 4: let low = number(&random, 0...20); return "\(low)-\(low + number(&random, 10...39))/\(number(&random, 2...15))"
        case 5: return "0,15,30,45"
        case 6: return "\(number(&random, 0...9))/\(number(&random, 10...30))"
        case 7:
            let low = number(&random, 0...10)
            return "\(low)-\(low + number(&random, 0...5)),\(number(&random, 20...30)),\(number(&random, 31...40))-59/\(number(&random, 5...10))"
        default: return pick(&random, ["0", "30", "45", "59"])
        }
    }

    private static func hour(_ random: inout SplitMix64) -> String {
        switch random.next() % 10 {
        case 0, 1: return "*"
        case 2: return "*/\(pick(&random, [2, 3, 4, 5]))"
        // Hours where clocks change: 0-4 and 23 (Santiago changes at midnight).
        case 3, 4: return "\(pick(&random, [0, 1, 2, 3, 23]))"
        case 5: return "\(number(&random, 0...2))-\(number(&random, 2...4))"
        case 6: return "\(pick(&random, [1, 2]))-\(number(&random, 3...23))/\(number(&random, 1...3))"
        case 7: return "\(pick(&random, [0, 1, 2]))/\(number(&random, 2...6))"
        case 8: return "\(number(&random, 0...2))-\(number(&random, 2...4)),\(number(&random, 5...21)),\(pick(&random, [22, 23]))"
        default: return "\(number(&random, 0...3)),\(number(&random, 4...11)),\(number(&random, 12...23))"
        }
    }

    private static func dayOfMonth(_ random: inout SplitMix64) -> String {
        switch random.next() % 10 {
        case 0: return "\(number(&random, 1...31))"
        case 1: return "\(number(&random, 1...14))-\(number(&random, 15...31))"
        case 2: return "*/\(pick(&random, [2, 3]))"
        case 3: return "\(number(&random, 1...10)),\(number(&random, 11...20)),\(number(&random, 21...31))"
        case 4: return "\(number(&random, 1...10))-\(number(&random, 20...31))/\(number(&random, 2...4))"
        case 5: return "\(number(&random, 1...9)),\(number(&random, 10...15))-\(number(&random, 16...31))"
        default: return "*"
        }
    }

    private static func month(_ random: inout SplitMix64) -> String {
        switch random.next() % 8 {
        case 0: return "\(month(&random, number(&random, 1...6)))-\(month(&random, number(&random, 7...12)))"
        case 1: return "\(month(&random, number(&random, 1...12)))"
        case 2: return "\(month(&random, number(&random, 1...4)))-\(month(&random, number(&random, 9...12)))/\(number(&random, 2...3))"
        case 3:
            return
                "\(month(&random, number(&random, 1...3))),\(month(&random, number(&random, 4...6)))-\(month(&random, number(&random, 7...10))),\(month(&random, 12))"
        default: return "*"
        }
    }

    private static func dayOfWeek(_ random: inout SplitMix64) -> String {
        switch random.next() % 10 {
        case 0: return "\(weekday(&random, number(&random, 0...3)))-\(weekday(&random, number(&random, 4...6)))"
        case 1: return weekday(&random, number(&random, 0...7))
        case 2: return "\(weekday(&random, number(&random, 0...3)))-\(weekday(&random, number(&random, 4...7)))"
        case 3: return "*/\(pick(&random, [2, 3]))"
        case 4: return "7"
        case 5: return "\(weekday(&random, number(&random, 0...2)))-\(weekday(&random, number(&random, 5...7)))/\(number(&random, 2...3))"
        case 6:
            return
                "\(weekday(&random, number(&random, 0...2))),\(weekday(&random, number(&random, 3...4)))-\(weekday(&random, number(&random, 5...7)))"
        case 7: return "\(weekday(&random, number(&random, 0...7)))/\(number(&random, 1...3))"
        default: return "*"
        }
    }
}

/// A small seeded generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
