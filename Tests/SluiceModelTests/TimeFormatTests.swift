import Foundation
import Testing

@testable import SluiceModel

struct TimeFormatTests {
    func reading(_ format: String, _ text: String) throws -> TimeFormat.Reading? {
        try TimeFormat(format).read(text)
    }

    @Test func readsWhatSpreadsheetsAndLocalesWrite() throws {
        let excel = try #require(try reading("%m/%d/%Y", "9/9/2024"))
        #expect(excel.date == CalendarDate(year: 2024, month: 9, day: 9))
        #expect(try reading("%m/%d/%Y", "09/09/2024")?.date == CalendarDate(year: 2024, month: 9, day: 9))
        #expect(try reading("%d.%m.%Y %H:%M", "31.12.2024 23:59")?.seconds == 23 * 3600 + 59 * 60)
        #expect(try reading("%d %b %Y", "5 SEP 2024")?.date == CalendarDate(year: 2024, month: 9, day: 5))
        #expect(try reading("%B %d, %Y", "September 5, 2024")?.date == CalendarDate(year: 2024, month: 9, day: 5))
        let pm = try #require(try reading("%m/%d/%y %I:%M:%S %p", "1/2/24 12:30:05 am"))
        #expect(pm.date == CalendarDate(year: 2024, month: 1, day: 2))
        #expect(pm.seconds == 30 * 60 + 5)
        #expect(try reading("%I %p %F", "12 PM 2024-01-02")?.seconds == 12 * 3600)
        let zoned = try #require(try reading("%F %T.%f%z", "2024-01-02 03:04:05.25+05:30"))
        #expect(zoned.micros == 250_000)
        #expect(zoned.offset == 5 * 3600 + 30 * 60)
        #expect(try reading("%F %T %z", "2024-01-02 03:04:05 UTC")?.offset == 0)
        // A space in the format takes several.
        #expect(try reading("%m/%d/%Y %H:%M", "9/9/2024   7:05") != nil)
    }

    @Test func refusesWhatIsNotARealDayOrDoesNotFollowTheFormat() throws {
        for (format, text) in [
            ("%m/%d/%Y", "2/30/2024"), ("%m/%d/%Y", "13/1/2024"), ("%m/%d/%Y", "9/9/24"), ("%m/%d/%Y", "9/9/2024 "),
            ("%m/%d/%Y", "9-9-2024"), ("%d %b %Y", "5 Sept 2024"), ("%I:%M %p %F", "13:00 PM 2024-01-01"),
            ("%F %H:%M", "2024-01-01 24:00"), ("%F %T", "2024-01-01 10:60:00"), ("%F %T.%f", "2024-01-01 10:00:00.1234567891"),
            ("%F%z", "2024-01-01+05:"),
            ("%F%z", "2024-01-01+25:00"),
        ] {
            #expect(try reading(format, text) == nil, "\(format) read \(text)")
        }
        #expect(try reading("%m/%d/%Y", "2/29/2024") != nil)
        // Seven digits, as .NET writes them: kept to microseconds.
        #expect(try reading("%F %T.%f", "2024-01-01 10:00:00.1234567")?.micros == 123_456)
    }

    @Test func aFormatThatCannotWorkIsRefusedWithItsPlace() {
        for (format, offset, message) in [
            ("%m/%d/%Q", 6, "%Q is not a directive"), ("%m/%d", 5, "must read a year"), ("%Y-%m-%d %I:%M", 14, "%I (a 12-hour clock) needs %p"),
            ("%Y %Y-%m-%d", 11, "reads the year twice"), ("%F %", 3, "lone %"),
        ] {
            do {
                _ = try TimeFormat(format)
                Issue.record("\(format) was accepted")
            } catch {
                #expect(error.offset == offset, "\(format): \(error)")
                #expect(error.description.contains(message), "\(format): \(error)")
            }
        }
    }

    @Test func aNaiveTimestampIsTakenInItsZoneAcrossDaylightSaving() throws {
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        func utc(_ text: String) throws -> Int? { try reading("%F %H:%M", text)?.instant(in: zone) }
        // EST (UTC-5) in January, EDT (UTC-4) in July.
        #expect(try utc("2024-01-15 12:00") == 1_705_338_000)
        #expect(try utc("2024-07-15 12:00") == 1_721_059_200)
        // 01:30 happens twice on 2024-11-03: the first, in EDT.
        #expect(try utc("2024-11-03 01:30") == 1_730_611_800)
    }

    @Test func schemaColumnsDeclareFormatsAndLintChecksThem() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("timeformat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("focus.json")
        try """
        [
          {"name": "day", "type": "DATE", "format": "%m/%d/%Y"},
          {"name": "at", "type": "TIMESTAMP", "format": "%m/%d/%Y %H:%M", "timezone": "Europe/Berlin"},
          {"name": "cost", "type": "NUMERIC", "format": "%F"},
          {"name": "local", "type": "DATETIME", "format": "%F %T%z"},
          {"name": "bad", "type": "DATE", "format": "%m/%d/%Q", "timezone": "Mars/Olympus"},
          {"name": "naive", "type": "TIMESTAMP", "timezone": "Europe/Berlin"}
        ]
        """.write(to: file, atomically: true, encoding: .utf8)
        var catalog = SchemaCatalog()
        catalog.load(fileAt: file, path: "schemas/focus.json")
        #expect(
            catalog.diagnostics.map(\.description) == [
                "schemas/focus.json:4:49: error: field 'cost': a format applies to DATE, TIMESTAMP and DATETIME columns, not to NUMERIC [invalid-schema]",
                "schemas/focus.json:5:51: error: field 'local': a DATETIME has no time zone, so its format can't read one (%z) [invalid-schema]",
                "schemas/focus.json:6:45: error: field 'bad': format '%m/%d/%Q': %Q is not a directive Sluice reads (it reads %Y %y %m %b %B %d %e %H %I %M %S %f %p %z %F %T and %%) [invalid-schema]",
                "schemas/focus.json:6:69: error: field 'bad': 'Mars/Olympus' is not an IANA timezone (e.g. UTC, Europe/Berlin, America/New_York) [invalid-schema]",
                "schemas/focus.json:6:69: error: field 'bad': a timezone applies to TIMESTAMP columns, not to DATE [invalid-schema]",
                "schemas/focus.json:7:54: error: field 'naive': a timezone goes with a format (the zone of the times it reads without one); ISO 8601 timestamps without a zone are UTC [invalid-schema]",
            ])
        let schema = try #require(catalog.byPath["schemas/focus.json"])
        #expect(schema.column("day")?.inputFormat?.pattern == "%m/%d/%Y")
        #expect(schema.column("at")?.inputTimezone == "Europe/Berlin")
    }
}
