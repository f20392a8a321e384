import Foundation

extension CronSchedule {
    /// A note for people checking a schedule, when a change of the zone's UTC offset (daylight
    /// saving time) shaped `fireTime`: it stands in for local times the clock skips, it comes
    /// after matching times that were skipped, or its local time happens twice. Nil otherwise.
    public func clockNote(for fireTime: Date) -> String? {
        let instant = Self.seconds(fireTime)
        let stretches = clock.stretches(from: instant - 2 * 86_400, to: instant + 2 * 86_400)
        guard let index = stretches.firstIndex(where: { $0.start <= instant && instant < $0.end }) else { return nil }
        let local = instant + stretches[index].offset
        var notes: [String] = []

        // Matching times in a gap since the previous fire time: this one runs for them
        // (a specific hour), or they were skipped (every hour).
        let since = previous(atOrBefore: instant - 1) ?? Int.min
        for (before, after) in zip(stretches, stretches.dropFirst()) where after.start > since && after.start <= instant {
            let gap = (start: after.start + before.offset, end: after.start + after.offset)
            guard gap.start < gap.end else { continue }
            var skipped: [Int] = []
            var cursor = gap.start
            while let match = matcher.first(atOrAfter: cursor, before: gap.end) {
                skipped.append(match)
                cursor = match + 60
            }
            guard !skipped.isEmpty else { continue }
            // A whole day skipped (Samoa, 2011) needs dates to make sense.
            let reference = gap.end - gap.start < 86_400 ? local : Int.min
            let change = "clocks jump from \(Self.time(gap.start, beside: reference)) to \(Self.time(gap.end, beside: reference))"
            notes.append("\(expression.hourRestricted ? "for " : "")\(Self.list(skipped, beside: local)), skipped: \(change)")
        }

        // The same local time in another stretch: the clock shows it twice.
        for (other, stretch) in stretches.enumerated()
        where other != index
            && stretch.start + stretch.offset <= local && local < stretch.end + stretch.offset
        {
            let (first, second) = other < index ? (stretches[other], stretches[index]) : (stretches[index], stretches[other])
            let change = "from \(Self.time(second.start + first.offset, beside: local)) to \(Self.time(second.start + second.offset, beside: local))"
            let time = Self.time(local, beside: local)
            if other < index {
                notes.append("\(time) again: clocks went back \(change)")
            } else {
                notes.append(
                    "\(time) comes twice: clocks go back \(change); runs \(expression.hourRestricted ? "the first time only" : "both times")")
            }
        }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }

    /// `HH:MM`, with the date when it differs from `reference`'s (always, for `Int.min`).
    private static func time(_ local: Int, beside reference: Int) -> String {
        let day = local.floorDivided(by: 86_400)
        let minutes = (local - day * 86_400) / 60
        let clock = String(format: "%02d:%02d", minutes / 60, minutes % 60)
        return day == reference.floorDivided(by: 86_400) ? clock : "\(CalendarDate(daysSinceEpoch: day)) \(clock)"
    }

    private static func list(_ times: [Int], beside reference: Int) -> String {
        let shown = times.map { time($0, beside: reference) }
        switch shown.count {
        case 1: return shown[0]
        case 2, 3: return shown.dropLast().joined(separator: ", ") + " and " + shown.last!
        default: return "\(shown.count) times from \(shown.first!) to \(shown.last!)"
        }
    }
}
