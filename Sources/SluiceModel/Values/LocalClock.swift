import Foundation

/// The wall clock of one time zone: what it reads at an instant, and the first instant it
/// reads a given local time. Instants are whole seconds since 1970-01-01 00:00 UTC; local
/// times are whole seconds since 1970-01-01 00:00 on the zone's clock.
///
/// The clock's history is a run of stretches of constant UTC offset; between them it jumps
/// forward (a gap: local times that never happen) or back (local times that happen twice).
struct LocalClock: Sendable {
    let timeZone: TimeZone

    /// Instants `start ..< end` during which the clock reads `instant + offset`.
    struct Stretch {
        var start: Int
        var end: Int
        var offset: Int
    }

    func offset(at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
    }

    func reading(at instant: Int) -> Int {
        instant + offset(at: instant)
    }

    /// The next instant after `instant` at which the offset changes, if the zone has one.
    func nextChange(after instant: Int) -> Int? {
        guard let change = timeZone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: Double(instant))) else {
            return nil
        }
        return Swift.max(instant + 1, Int(change.timeIntervalSince1970.rounded(.up)))
    }

    /// The stretches covering `from ..< to`, in order, clipped to it.
    func stretches(from: Int, to: Int) -> [Stretch] {
        var result: [Stretch] = []
        var start = from
        while start < to {
            let end = Swift.min(nextChange(after: start) ?? to, to)
            result.append(Stretch(start: start, end: end, offset: offset(at: start)))
            start = end
        }
        return result
    }

    /// The latest local time the clock has read at or before `instant`. Usually its reading
    /// at `instant`; during the second pass of a repeated hour, the end of the first pass.
    func highestReading(atOrBefore instant: Int) -> Int {
        // A clock never goes back by as much as a day, so two days of history are enough.
        stretches(from: instant - 2 * 86_400, to: instant + 1).map { $0.end - 1 + $0.offset }.max()!
    }

    /// The first instant at which the clock reads `local` or later: when `local` happens
    /// twice, its first occurrence; when the clock skips it, the instant it jumps past it.
    func firstInstant(reading local: Int) -> Int {
        // UTC offsets stay within a day, so the instant lies within a day of `local`.
        for stretch in stretches(from: local - 2 * 86_400, to: local + 2 * 86_400) where stretch.end + stretch.offset > local {
            return Swift.max(stretch.start, local - stretch.offset)
        }
        return local - offset(at: local)
    }
}
