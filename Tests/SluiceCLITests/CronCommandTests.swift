import Foundation
import Testing

/// `sluice cron`, run as a user checks an expression.
struct CronCommandTests {
    @Test func printsFireTimesInTheZoneAndInUTCWithDaylightSavingNotes() async throws {
        let result = try await sluice("cron", "30 2 * * *", "--timezone", "Europe/Berlin", "--from", "2026-03-28T00:00", "--count", "3")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout == """
                '30 2 * * *' in Europe/Berlin, from Sat 2026-03-28 00:00 +01:00:
                  Sat 2026-03-28 02:30 +01:00   2026-03-28 01:30 UTC
                  Sun 2026-03-29 03:00 +02:00   2026-03-29 01:00 UTC  (for 02:30, skipped: clocks jump from 02:00 to 03:00)
                  Mon 2026-03-30 02:30 +02:00   2026-03-30 00:30 UTC

                """)
        #expect(result.stderr.isEmpty)
    }

    @Test func anEveryHourExpressionRunsTwiceInTheRepeatedHour() async throws {
        let result = try await sluice("cron", "*/30 * * * *", "--timezone", "America/New_York", "--from", "2026-11-01T05:00:00Z", "--count", "5")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout.split(separator: "\n").dropFirst() == [
                "  Sun 2026-11-01 01:00 -04:00   2026-11-01 05:00 UTC  (01:00 comes twice: clocks go back from 02:00 to 01:00; runs both times)",
                "  Sun 2026-11-01 01:30 -04:00   2026-11-01 05:30 UTC  (01:30 comes twice: clocks go back from 02:00 to 01:00; runs both times)",
                "  Sun 2026-11-01 01:00 -05:00   2026-11-01 06:00 UTC  (01:00 again: clocks went back from 02:00 to 01:00)",
                "  Sun 2026-11-01 01:30 -05:00   2026-11-01 06:30 UTC  (01:30 again: clocks went back from 02:00 to 01:00)",
                "  Sun 2026-11-01 02:00 -05:00   2026-11-01 07:00 UTC",
            ])
    }

    @Test func fromWithoutAnOffsetIsReadInTheTimezone() async throws {
        let local = try await sluice("cron", "@hourly", "--timezone", "Asia/Kolkata", "--from", "2026-05-01T09:00", "--count", "1")
        #expect(
            local.stdout == "'@hourly' in Asia/Kolkata, from Fri 2026-05-01 09:00 +05:30:\n  Fri 2026-05-01 09:00 +05:30   2026-05-01 03:30 UTC\n")
        let utc = try await sluice("cron", "@hourly", "--timezone", "Asia/Kolkata", "--from", "2026-05-01T09:00Z", "--count", "1")
        #expect(utc.stdout == "'@hourly' in Asia/Kolkata, from Fri 2026-05-01 14:30 +05:30:\n  Fri 2026-05-01 15:00 +05:30   2026-05-01 09:30 UTC\n")
    }

    @Test func withoutFromItStartsNowInUTC() async throws {
        let before = Date()
        let result = try await sluice("cron", "* * * * *")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines.first?.hasPrefix("'* * * * *' in UTC, from ") == true)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        let first = try #require(lines.dropFirst().first.flatMap { formatter.date(from: String($0.suffix(20))) })
        #expect(first > before.addingTimeInterval(-60) && first <= before.addingTimeInterval(120))
    }

    @Test func aBadExpressionIsAUsageErrorThatPointsAtTheField() async throws {
        let result = try await sluice("cron", "0 25 * * *")
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr.hasPrefix(
                """
                Error: cron expression: hour field '25': '25' is not a valid hour (0-23)
                  0 25 * * *
                    ^

                """))
    }

    @Test func anExpressionThatNeverFiresSaysWhy() async throws {
        let result = try await sluice("cron", "0 0 30 2 *")
        #expect(result.status == 2)
        #expect(
            result.stderr.hasPrefix(
                """
                Error: cron expression '0 0 30 2 *' never fires: February has no day 30
                  0 0 30 2 *
                      ^

                """))
    }

    @Test func anUnknownTimezoneOrABadFromIsAUsageError() async throws {
        let zone = try await sluice("cron", "@daily", "--timezone", "America/New_Yrok")
        #expect(zone.status == 2)
        #expect(zone.stderr.contains("'America/New_Yrok' is not an IANA timezone; did you mean 'America/New_York'?"))

        let from = try await sluice("cron", "@daily", "--from", "2026-03-29T25:00")
        #expect(from.status == 2)
        #expect(from.stderr.hasPrefix("Error: --from: '2026-03-29T25:00' is not an ISO 8601 time: hour 25 is not 00-23"))
        #expect(from.stderr.contains("\n  2026-03-29T25:00\n             ^\n"))

        #expect(try await sluice("cron", "@daily", "--count", "0").status == 2)
        #expect(try await sluice("cron").status == 2)
    }
}
