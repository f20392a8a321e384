import Foundation
import Testing

@testable import SluiceModel

struct DurationTextTests {
    @Test(arguments: [("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("2h", 7_200_000), ("7d", 604_800_000), ("1h30m", 5_400_000)])
    func parsesEveryUnit(_ text: String, _ milliseconds: Int64) throws {
        #expect(try DurationText.parse(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "10", "10 minutes", "5x", "m", "-1s", "0s", "1.5h", "99999999999999999999d"])
    func refusesWhatIsNotADuration(_ text: String) {
        #expect(throws: DurationText.ParseError.self) { try DurationText.parse(text) }
    }

    @Test func zeroIsTakenOnlyWhenAllowed() throws {
        #expect(try DurationText.parse("0s", allowZero: true) == .zero)
        #expect(try DurationText.parse("00ms", allowZero: true) == .zero)
        #expect(try DurationText.parse("2m", allowZero: true) == .seconds(120))
        for text in ["0", "0x", "-0s", ""] {
            #expect(throws: DurationText.ParseError.self) { try DurationText.parse(text, allowZero: true) }
        }
    }

    @Test func formatsLargestUnitsFirst() {
        #expect(DurationText.format(.milliseconds(5_400_500)) == "1h30m500ms")
        #expect(DurationText.format(.seconds(86_400 * 7)) == "7d")
    }
}

struct InstantTextTests {
    let berlin = TimeZone(identifier: "Europe/Berlin")!

    @Test(arguments: [
        ("2026-03-29T00:30:00Z", "2026-03-29T00:30:00Z"), ("2026-03-29T02:30+02:00", "2026-03-29T00:30:00Z"),
        ("2026-03-28 19:30:00-0500", "2026-03-29T00:30:00Z"), ("2026-03-29t00:30z", "2026-03-29T00:30:00Z"),
        // Without an offset, on Berlin's clock.
        ("2026-06-01T12:00", "2026-06-01T10:00:00Z"), ("2026-03-29", "2026-03-28T23:00:00Z"),
        // 02:30 does not exist on 2026-03-29 (the end of the gap), and happens twice on 2026-10-25 (the first).
        ("2026-03-29T02:30", "2026-03-29T01:00:00Z"), ("2026-10-25T02:30", "2026-10-25T00:30:00Z"),
    ])
    func readsISO8601WithOrWithoutAnOffset(_ text: String, _ expected: String) throws {
        #expect(try InstantText.parse(text, in: berlin) == ISO8601DateFormatter().date(from: expected)!)
    }

    @Test func keepsFractionsOfASecond() throws {
        #expect(try InstantText.parse("1970-01-01T00:00:01.25Z", in: berlin).timeIntervalSince1970 == 1.25)
    }

    @Test(arguments: [
        ("yesterday", 0), ("2026-13-01", 5), ("2026-02-30", 8), ("2026-03-29T25:00", 11), ("2026-03-29T02:61", 14),
        ("2026-03-29T02:30+2", 17), ("2026-03-29T02:30x", 16), ("2026-3-29", 5), ("", 0),
    ])
    func refusesWhatIsNotATimeAndPointsAtIt(_ text: String, _ offset: Int) {
        do {
            _ = try InstantText.parse(text, in: berlin)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.offset == offset, "\(error.description)")
        }
    }
}

struct TimeZoneNameTests {
    @Test func knowsIANANamesAndSuggestsNearOnes() throws {
        #expect(try TimeZoneName.zone(named: "Australia/Lord_Howe").identifier == "Australia/Lord_Howe")
        #expect(try TimeZoneName.zone(named: "UTC").secondsFromGMT() == 0)
        #expect(throws: TimeZoneName.UnknownError.self) { try TimeZoneName.zone(named: "Mars/Olympus") }
        do {
            _ = try TimeZoneName.zone(named: "Europe/Berln")
        } catch {
            #expect(
                error.description
                    == "'Europe/Berln' is not an IANA timezone; did you mean 'Europe/Berlin'? (e.g. UTC, Europe/Berlin, America/New_York)")
        }
    }
}

struct CronExpressionTests {
    @Test func expandsListsRangesStepsAndNames() throws {
        let cron = try CronExpression(parsing: "0,30 9-17/4 1,15 jan-mar mon-fri")
        #expect(cron.minutes == [0, 30])
        #expect(cron.hours == [9, 13, 17])
        #expect(cron.daysOfMonth == [1, 15])
        #expect(cron.months == [1, 2, 3])
        #expect(cron.daysOfWeek == [1, 2, 3, 4, 5])
        #expect(cron.dayOfMonthRestricted && cron.dayOfWeekRestricted)
    }

    @Test func sevenIsSundayAndStarIsUnrestricted() throws {
        let cron = try CronExpression(parsing: "*/15 * * * 7")
        #expect(cron.daysOfWeek == [0])
        #expect(cron.minutes == [0, 15, 30, 45])
        #expect(!cron.dayOfMonthRestricted)
    }

    @Test func shorthandsExpand() throws {
        #expect(try CronExpression(parsing: "@hourly").minutes == [0])
        #expect(try CronExpression(parsing: "@weekly").daysOfWeek == [0])
        #expect(try CronExpression(parsing: "@yearly").months == [1])
    }

    @Test(arguments: [
        ("60 * * * *", 0), ("* 24 * * *", 2), ("* * 0 * *", 4), ("* * * 13 *", 6), ("* * * * 8", 8),
        ("* * * *", 0), ("5-1 * * * *", 0), ("*/0 * * * *", 0), ("@sometimes", 0), ("1,,2 * * * *", 2),
    ])
    func refusesBadFieldsAndPointsAtThem(_ text: String, _ offset: Int) {
        do {
            _ = try CronExpression(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.offset == offset)
        }
    }
}

struct IdentifierTests {
    @Test(arguments: ["a", "_x", "genai_usage", "BilledCost", String(repeating: "a", count: 63)])
    func acceptsPlainNames(_ name: String) {
        #expect(Identifier.isValid(name))
    }

    @Test(arguments: ["", "1a", "a-b", "a b", "a;drop", "é", "\"a\"", String(repeating: "a", count: 64)])
    func refusesEverythingElse(_ name: String) {
        #expect(!Identifier.isValid(name))
        #expect(Identifier.problem(with: name) != nil)
    }
}

struct CalendarDateTests {
    @Test func roundTripsThroughDaysSinceEpoch() throws {
        for text in ["1970-01-01", "2000-02-29", "2024-12-31", "2026-03-01", "1969-12-31"] {
            let date = try #require(CalendarDate(parsing: text))
            #expect(CalendarDate(daysSinceEpoch: date.daysSinceEpoch) == date)
            #expect(date.description == text)
        }
        #expect(CalendarDate(parsing: "1970-01-01")?.daysSinceEpoch == 0)
        #expect(CalendarDate(parsing: "2026-01-01")?.adding(days: -1).description == "2025-12-31")
    }

    @Test(arguments: [
        "2026-02-29", "2026-13-01", "2026-1-01", "20260101", "2026-04-31",
        "2026-+3-+1", "+026-03-01", "2026-03-٠١", "2026-03- 1",
    ])
    func refusesDaysThatDoNotExistOrAreNotWrittenInDigits(_ text: String) {
        #expect(CalendarDate(parsing: text) == nil)
    }
}

struct SQLExpressionTests {
    @Test func findsColumnsFunctionsAndParameters() throws {
        let expression = try SQLExpression(parsing: "sum(input_tokens * price / 1e6) + coalesce(extra, 0) - :discount")
        #expect(expression.columns.map(\.name) == ["input_tokens", "price", "extra"])
        #expect(expression.columns.map(\.offset) == [4, 19, 43])
        #expect(expression.parameters == ["discount"])
    }

    @Test func keywordsAreNotColumns() throws {
        let expression = try SQLExpression(parsing: "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END)")
        #expect(expression.columns.map(\.name) == ["status"])
    }

    @Test(arguments: [
        ("count(*); DROP TABLE x", 8), ("(SELECT max(a) FROM t)", 1), ("sum(a) -- hi", 7), ("evil(a)", 0),
        ("sum(a", 5), ("a)", 1), ("'open", 0), ("", 0),
    ])
    func refusesStatementsCommentsAndUnknownFunctions(_ text: String, _ offset: Int) {
        do {
            _ = try SQLExpression(parsing: text)
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.offset == offset)
        }
    }
}

struct CredentialDetectorTests {
    @Test(arguments: [
        ("key sk-proj-4fGhT9xQ2mLp8RzW1vNc7YbK3eJd", "an OpenAI-style API key", 4),
        ("sk-ant-api03-4fGhT9xQ2mLp8RzW1vNc7Yb", "an Anthropic API key", 0),
        ("AKIAIOSFODNN7EXAMPL3", "an AWS access key id", 0),
        ("postgres://app:s3cret@db.internal:5432/x", "a password inside a URL or DSN", 15),
        ("host=db user=app password=s3cret dbname=x", "a password inside a connection string", 26),
        ("-----BEGIN EC PRIVATE KEY-----\nabc", "a private key", 0),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123", "a bearer token", 15),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "a Slack webhook URL", 8),
        ("ghp_1234567890abcdefghijklmnopqrstuvwxyz", "a GitHub token", 0),
        ("token=slc_0a1b2c3d4e5f_Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MDEyMzQ", "a Sluice API token", 6),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a webhook signing secret", 0),
    ])
    func findsCredentials(_ text: String, _ kind: String, _ offset: Int) {
        #expect(CredentialDetector.scan(text) == .init(kind: kind, offset: offset))
    }

    @Test(arguments: [
        "Daily cost per org and provider", "sk-some-descriptive-task-name", "https://api.example.com/v1",
        "postgres://app:${{ secrets.db_password }}@db/x", "postgres://app@db/x", "password=****",
        "task-AKIAIOSFODNN7EXAMPL3X", "Bearer ${{ secrets.openai_key }}",
    ])
    func ignoresOrdinaryText(_ text: String) {
        #expect(CredentialDetector.scan(text) == nil)
    }
}
