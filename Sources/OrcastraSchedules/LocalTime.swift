import Foundation

/// Wall-clock arithmetic without `Calendar`: a local time is counted in seconds since
/// 1970-01-01 00:00:00 *on the wall clock* (as if the zone were UTC), and converted to and from
/// an instant with the zone's offsets only.
///
/// Foundation's `Calendar` costs microseconds per call and hides which of two instants it picks
/// for a repeated local time; the orchestrator computes a thousand fire times a second, and the
/// daylight saving rule must be ours, so both directions are written out here.
enum LocalTime {
    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// 0 = Sunday … 6 = Saturday; 1970-01-01 was a Thursday.
    static func weekday(days: Int) -> Int {
        ((days + 4) % 7 + 7) % 7
    }

    static func floorDivide(_ a: Int, _ b: Int) -> Int {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    static func offset(_ zone: TimeZone, at instant: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    /// The wall-clock second (see above) showing at `date` in `zone`, rounded down to a whole second.
    static func wallSecond(of date: Date, in zone: TimeZone) -> Int {
        let instant = Int(date.timeIntervalSince1970.rounded(.down))
        return instant + offset(zone, at: instant)
    }

    /// The instant a wall-clock second stands for, by the schedules' daylight saving rule: the
    /// instant itself when the local time occurs once; the first of the two when it occurs twice
    /// (clocks turned back); and when it does not occur at all (clocks turned forward), the first
    /// instant after the gap, which is the transition itself.
    ///
    /// Every instant showing `wall` lies within 14 hours before and 12 after it (offsets run from
    /// −12:00 to +14:00). The offsets just outside that window tell whether a transition lies
    /// inside; zones never change twice within 28 hours, and if one ever did the slow path
    /// below still answers right.
    static func instant(ofWall wall: Int, in zone: TimeZone) -> Int {
        let before = offset(zone, at: wall - 15 * 3600)
        let after = offset(zone, at: wall + 13 * 3600)
        if before == after {
            let candidate = wall - before
            if offset(zone, at: candidate) == before { return candidate }
            return slowInstant(ofWall: wall, in: zone)
        }
        let early = wall - before, late = wall - after
        let earlyValid = offset(zone, at: early) == before
        let lateValid = offset(zone, at: late) == after
        switch (earlyValid, lateValid) {
        case (true, true): return min(early, late)
        case (true, false): return early
        case (false, true): return late
        case (false, false):
            // In the gap: the transition lies between the two candidates.
            guard after > before else { return slowInstant(ofWall: wall, in: zone) }
            return firstInstant(withOffsetOtherThan: before, from: late, through: early, in: zone)
        }
    }

    /// The first instant in `low...high` whose offset differs from `offset` (whose offset at
    /// `low` is `offset` and at `high` is not), by bisection.
    static func firstInstant(withOffsetOtherThan offset: Int, from low: Int, through high: Int, in zone: TimeZone) -> Int {
        var low = low, high = high
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if Self.offset(zone, at: middle) == offset { low = middle } else { high = middle }
        }
        return Self.offset(zone, at: low) == offset ? high : low
    }

    /// The same rule without assuming at most one transition near `wall`: look at the offsets in
    /// force every 15 minutes across the window and try each.
    private static func slowInstant(ofWall wall: Int, in zone: TimeZone) -> Int {
        var best: Int?
        var previous = offset(zone, at: wall - 15 * 3600)
        var sample = wall - 15 * 3600
        var firstLater: Int?
        while sample <= wall + 13 * 3600 {
            let current = offset(zone, at: sample)
            let candidate = wall - current
            if offset(zone, at: candidate) == current, candidate < (best ?? .max) { best = candidate }
            if firstLater == nil, sample + current > wall {
                // The wall clock passed `wall` between the previous sample and this one.
                firstLater = current == previous ? sample : firstInstant(withOffsetOtherThan: previous, from: sample - 900, through: sample, in: zone)
            }
            previous = current
            sample += 900
        }
        return best ?? firstLater ?? wall - previous
    }
}
