import Foundation

/// A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a leading
/// seconds field, or a macro such as `@daily`. The syntax and the rules are in docs/schedules.md.
///
/// Each field is kept as a bit set, so finding the next fire time jumps from one matching month,
/// day, hour, minute and second to the next instead of stepping through time.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text as given, without surrounding whitespace.
    public let source: String
    /// Whether the expression has the leading seconds field (a 5-field one fires at second 0).
    public let hasSeconds: Bool

    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Bits 0 (Sunday) … 6 (Saturday).
    let daysOfWeek: UInt64
    /// Vixie cron's day rule: when both day fields are restricted, a day matches when either
    /// does; when one is unrestricted (written `*`), only the other counts. As in croniter, only a
    /// plain `*` is unrestricted: `*/2`, `*/1` and `1-31` restrict (Vixie counts `*/2` as `*`).
    let daysOfMonthRestricted: Bool
    let daysOfWeekRestricted: Bool

    /// How far ahead `nextFireTime` looks before deciding an expression never fires again. Long
    /// enough for February 29th across 2100, which is not a leap year (2096 → 2104).
    public static let searchHorizonYears = 9

    static let macros: [(name: String, expansion: String)] = [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
    ]

    static let fieldNames5 = "minute hour day-of-month month day-of-week"

    /// Parses an expression; the error names the field and says what is wrong with it.
    public init(parsing text: String) throws(CronError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        source = trimmed
        var body = trimmed
        if trimmed.hasPrefix("@") {
            let lowered = trimmed.lowercased()
            guard let macro = Self.macros.first(where: { $0.name == lowered }) else {
                let names = Self.macros.map(\.name)
                var message = "unknown macro \"\(trimmed)\""
                if lowered == "@reboot" {
                    message = "@reboot is not a schedule (there is no boot to run at); use a time such as @daily"
                } else {
                    if let close = Suggestions.closest(to: lowered, among: names, limit: 1).first { message += "; did you mean \(close)?" }
                    message += " The macros are \(names.joined(separator: ", "))."
                }
                throw CronError(field: "expression", text: trimmed, message: message)
            }
            body = macro.expansion
        }
        let fields = body.split(whereSeparator: { $0 == " " || $0 == "\t" || $0.isNewline }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            let message = fields.isEmpty
                ? "the cron expression is empty; write 5 fields (\(Self.fieldNames5)), 6 with a leading second, or a macro like @daily"
                : "cron expression \"\(trimmed)\" has \(fields.count) field\(fields.count == 1 ? "" : "s"); write 5 (\(Self.fieldNames5)) or 6 (a leading second, then the 5)"
            throw CronError(field: "expression", text: trimmed, message: message)
        }
        hasSeconds = fields.count == 6
        let rest = hasSeconds ? Array(fields.dropFirst()) : fields
        seconds = hasSeconds ? try CronField.second.parse(fields[0]) : 1
        minutes = try CronField.minute.parse(rest[0])
        hours = try CronField.hour.parse(rest[1])
        daysOfMonth = try CronField.dayOfMonth.parse(rest[2])
        months = try CronField.month.parse(rest[3])
        daysOfWeek = try CronField.dayOfWeek.parse(rest[4])
        daysOfMonthRestricted = rest[2] != "*"
        daysOfWeekRestricted = rest[4] != "*"
    }

    public var description: String { source }

    /// Whether some day of some year matches: `0 0 30 2 *` parses (Vixie cron accepts it) but
    /// never fires, which a schedule file reports.
    public var canEverFire: Bool {
        // With day-of-week restricted a matching weekday always comes round (alone or OR-ed).
        if daysOfWeekRestricted { return true }
        for month in 1...12 where months & (1 << UInt64(month)) != 0 {
            let longest = month == 2 ? 29 : LocalTime.daysInMonth(year: 2001, month: month)
            if daysOfMonth & ((UInt64(1) << UInt64(longest + 1)) - 1) != 0 { return true }
        }
        return false
    }

    func dayMatches(days: Int, day: Int) -> Bool {
        let dayOfMonth = daysOfMonth & (1 << UInt64(day)) != 0
        switch (daysOfMonthRestricted, daysOfWeekRestricted) {
        case (true, true): return dayOfMonth || daysOfWeek & (1 << UInt64(LocalTime.weekday(days: days))) != 0
        case (true, false): return dayOfMonth
        case (false, true): return daysOfWeek & (1 << UInt64(LocalTime.weekday(days: days))) != 0
        case (false, false): return true
        }
    }

    /// The smallest value ≥ `value` in `mask`, or nil.
    @inline(__always) static func next(_ mask: UInt64, atLeast value: Int) -> Int? {
        guard value < 64 else { return nil }
        let rest = mask >> UInt64(value)
        return rest == 0 ? nil : value + rest.trailingZeroBitCount
    }

    /// The first wall-clock second at or after `start` that matches, or nil when none does
    /// before `limitYear` ends.
    func nextMatchingWallSecond(atOrAfter start: Int, limitYear: Int) -> Int? {
        var days = LocalTime.floorDivide(start, 86_400)
        let secondOfDay = start - days * 86_400
        var (year, month, day) = LocalTime.civil(fromDays: days)
        var hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60
        while year <= limitYear {
            guard months & (1 << UInt64(month)) != 0 else {
                if let nextMonth = Self.next(months, atLeast: month + 1), nextMonth <= 12 {
                    month = nextMonth
                } else {
                    year += 1
                    month = months.trailingZeroBitCount
                }
                day = 1; hour = 0; minute = 0; second = 0
                days = LocalTime.days(year: year, month: month, day: 1)
                continue
            }
            guard day <= LocalTime.daysInMonth(year: year, month: month), dayMatches(days: days, day: day) else {
                if day >= LocalTime.daysInMonth(year: year, month: month) {
                    month += 1
                    if month > 12 { month = 1; year += 1 }
                    day = 1
                } else {
                    day += 1
                }
                days = LocalTime.days(year: year, month: month, day: day)
                hour = 0; minute = 0; second = 0
                continue
            }
            guard let matchingHour = Self.next(hours, atLeast: hour) else {
                day += 1
                days += 1
                if day > LocalTime.daysInMonth(year: year, month: month) {
                    day = 1; month += 1
                    if month > 12 { month = 1; year += 1 }
                }
                hour = 0; minute = 0; second = 0
                continue
            }
            if matchingHour != hour { hour = matchingHour; minute = 0; second = 0 }
            guard let matchingMinute = Self.next(minutes, atLeast: minute) else {
                hour += 1; minute = 0; second = 0
                if hour == 24 {
                    hour = 0; day += 1; days += 1
                    if day > LocalTime.daysInMonth(year: year, month: month) {
                        day = 1; month += 1
                        if month > 12 { month = 1; year += 1 }
                    }
                }
                continue
            }
            if matchingMinute != minute { minute = matchingMinute; second = 0 }
            guard let matchingSecond = Self.next(seconds, atLeast: second), matchingSecond < 60 else {
                minute += 1; second = 0
                if minute == 60 {
                    minute = 0; hour += 1
                    if hour == 24 {
                        hour = 0; day += 1; days += 1
                        if day > LocalTime.daysInMonth(year: year, month: month) {
                            day = 1; month += 1
                            if month > 12 { month = 1; year += 1 }
                        }
                    }
                }
                continue
            }
            return days * 86_400 + hour * 3600 + minute * 60 + matchingSecond
        }
        return nil
    }

    /// The first fire instant strictly after `date` in `timeZone`, or nil when there is none within
    /// ``searchHorizonYears`` (e.g. `0 0 30 2 *`).
    ///
    /// Matching local times are walked in order and each is mapped to an instant: a time that
    /// occurs once is that instant, a repeated one (clocks turned back) the first of its two
    /// instants, a skipped one (clocks turned forward) the instant the clocks jump. That mapping
    /// never goes backwards, so the first local time after `date`'s own that maps past `date` is
    /// the answer; several skipped times mapping to one instant fire once.
    public func nextFireTime(after date: Date, in timeZone: TimeZone) -> Date? {
        // Beyond ±30,000 years (or not a number) there is nothing sensible to answer.
        guard date.timeIntervalSince1970.isFinite, abs(date.timeIntervalSince1970) < 9.4e11 else { return nil }
        let afterInstant = Int(date.timeIntervalSince1970.rounded(.down))
        var start = LocalTime.wallSecond(of: date, in: timeZone) + 1
        let limitYear = LocalTime.civil(fromDays: LocalTime.floorDivide(start, 86_400)).year + Self.searchHorizonYears
        // A second round happens only after `date` in the second pass of a repeated hour, where
        // the matches map to the first pass: they are skipped to the end of the repetition.
        for _ in 0..<100_000 {
            guard let wall = nextMatchingWallSecond(atOrAfter: start, limitYear: limitYear) else { return nil }
            let instant = LocalTime.instant(ofWall: wall, in: timeZone)
            if instant > afterInstant { return Date(timeIntervalSince1970: TimeInterval(instant)) }
            // `date` lies in the second pass of a repeated hour and `wall` in that hour: its first
            // pass is over. Go on from the end of the repetition, the wall time the clocks showed
            // (in the earlier offset) when they were turned back.
            let earlier = LocalTime.offset(timeZone, at: instant)
            if LocalTime.offset(timeZone, at: afterInstant) != earlier {
                let transition = LocalTime.firstInstant(withOffsetOtherThan: earlier, from: instant, through: afterInstant, in: timeZone)
                start = max(wall + 1, transition + earlier)
            } else {
                start = wall + 1
            }
        }
        return nil
    }

    /// Up to `count` successive fire times strictly after `date`, none later than `until` (inclusive).
    public func fireTimes(after date: Date, in timeZone: TimeZone, count: Int, until: Date? = nil) -> [Date] {
        var result: [Date] = []
        var cursor = date
        while result.count < count, let next = nextFireTime(after: cursor, in: timeZone) {
            if let until, next > until { break }
            result.append(next)
            cursor = next
        }
        return result
    }
}
