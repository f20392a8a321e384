import ArgumentParser
import Foundation
import SluiceModel

extension Sluice {
    struct Cron: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show when a cron expression fires.",
            discussion: """
                Prints the next fire times, each in the timezone (with its UTC offset) and in UTC, \
                with a note where a daylight saving change moves, skips or repeats one. A specific \
                hour (30 2 * * *) runs once across a change: a skipped time at the end of the gap, a \
                repeated time the first time; an hour written with * (*/15 * * * *) keeps time by \
                the hour. Exit status: 0, or 2 on a bad expression, timezone or --from.
                """)

        @Argument(help: "Five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly; quote it.")
        var expression: String

        @Option(help: "First time to consider, ISO 8601: 2026-03-29T02:30 (read in --timezone) or 2026-03-29T00:30:00Z (default: now).")
        var from: String?

        @Option(help: "How many fire times to show (1-1000).")
        var count = 5

        @Option(help: "IANA timezone the expression is read in, e.g. Europe/Berlin.")
        var timezone = "UTC"

        func validate() throws {
            _ = try request()
        }

        func run() throws {
            let (schedule, start) = try request()
            let local = formatter("EEE yyyy-MM-dd HH:mm xxx", schedule.timeZone)
            let utc = formatter("yyyy-MM-dd HH:mm 'UTC'", TimeZone(identifier: "UTC")!)
            print("\(shown(schedule.expression.source)) in \(timezone), from \(local.string(from: start)):")
            for fire in schedule.fireTimes(from: start).prefix(count) {
                let note = schedule.clockNote(for: fire).map { "  (\($0))" } ?? ""
                print("  \(local.string(from: fire))   \(utc.string(from: fire))\(note)")
            }
        }

        /// The schedule and start time the flags describe, or a usage error that points at
        /// the faulty character.
        private func request() throws -> (CronSchedule, Date) {
            guard (1...1_000).contains(count) else { throw ValidationError("--count must be between 1 and 1000, not \(count)") }
            let zone: TimeZone
            do { zone = try TimeZoneName.zone(named: timezone) } catch {
                throw ValidationError("--timezone: \(error.description)")
            }
            let cron: CronExpression
            do { cron = try CronExpression(parsing: expression) } catch {
                throw ValidationError("cron expression: \(error.description)\n\(pointer(expression, error.offset, trimmed: true))")
            }
            if let impossibility = cron.impossibility {
                throw ValidationError(
                    "cron expression \(shown(cron.source)) \(impossibility.description)\n\(pointer(expression, impossibility.offset, trimmed: true))")
            }
            var start = Date()
            if let from {
                do { start = try InstantText.parse(from, in: zone) } catch {
                    throw ValidationError("--from: \(error.description)\n\(pointer(from, error.offset, trimmed: false))")
                }
            }
            return (CronSchedule(cron, timeZone: zone), start)
        }

        /// The text, and a caret under the character at `offset` (counted after leading
        /// spaces when the parser trimmed them).
        private func pointer(_ text: String, _ offset: Int, trimmed: Bool) -> String {
            let leading = trimmed ? text.prefix { $0 == " " || $0 == "\t" }.count : 0
            return "  \(text)\n  \(String(repeating: " ", count: leading + offset))^"
        }

        private func formatter(_ format: String, _ zone: TimeZone) -> DateFormatter {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = zone
            formatter.dateFormat = format
            return formatter
        }
    }
}
