import Foundation
@testable import OrcastraSchedules
import Testing

/// Fire times, by hand: the day rule, leap years, seconds, limits, and daylight saving changes
/// (skipped and repeated local times), including the days the croniter cross-check leaves out.
@Suite(.timeLimit(.minutes(5))) struct CronFireTimeTests {
    static let utc = TimeZone(identifier: "UTC")!

    static func instant(_ text: String) -> Date {
        guard let date = Timestamp.parse(text, timeZone: utc) else { fatalError("bad test time \(text)") }
        return date
    }

    /// Fire times as `local (UTC)` text, as `orcastra schedule next` prints them.
    static func fires(_ expression: String, _ zone: String, after: String, count: Int) throws -> [String] {
        let zone = try ScheduleTimeZone.named(zone)
        return try CronExpression(parsing: expression).fireTimes(after: instant(after), in: zone, count: count)
            .map { Timestamp.formatLocal($0, in: zone) }
    }

    // MARK: Daylight saving, by the examples in docs/schedules.md

    @Test func aSkippedLocalTimeFiresOnceAtTheEndOfTheGap() throws {
        // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        #expect(try Self.fires("30 2 * * *", "Europe/Berlin", after: "2027-03-26T12:00Z", count: 3)
            == ["2027-03-27 02:30:00 +01:00", "2027-03-28 03:00:00 +02:00", "2027-03-29 02:30:00 +02:00"])
        // Every skipped minute maps to 03:00, which fires once; 03:00 itself matching changes nothing.
        #expect(try Self.fires("*/20 2-3 * * *", "Europe/Berlin", after: "2027-03-28T00:00Z", count: 4)
            == ["2027-03-28 03:00:00 +02:00", "2027-03-28 03:20:00 +02:00", "2027-03-28 03:40:00 +02:00", "2027-03-29 02:00:00 +02:00"])
        // An hourly job fires at the end of the gap for its skipped 02:05, then on as usual.
        #expect(try Self.fires("5 * * * *", "Europe/Berlin", after: "2027-03-28T00:30Z", count: 3)
            == ["2027-03-28 03:00:00 +02:00", "2027-03-28 03:05:00 +02:00", "2027-03-28 04:05:00 +02:00"])
    }

    @Test func aRepeatedLocalTimeFiresOnceTheFirstTime() throws {
        // Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET; 02:30 occurs twice.
        #expect(try Self.fires("30 2 * * *", "Europe/Berlin", after: "2027-10-30T12:00Z", count: 2)
            == ["2027-10-31 02:30:00 +02:00", "2027-11-01 02:30:00 +01:00"])
        #expect(try Self.fires("*/30 * * * *", "Europe/Berlin", after: "2027-10-30T23:00Z", count: 5)
            == ["2027-10-31 01:30:00 +02:00", "2027-10-31 02:00:00 +02:00", "2027-10-31 02:30:00 +02:00",
                "2027-10-31 03:00:00 +01:00", "2027-10-31 03:30:00 +01:00"])
    }

    @Test func fromInsideTheSecondPassNothingOfTheRepeatedHourFiresAgain() throws {
        // 02:15 CET is in the second pass: 02:30 already fired in the first (CEST), so next is 03:00.
        #expect(try Self.fires("*/30 * * * *", "Europe/Berlin", after: "2027-10-31T01:15Z", count: 2)
            == ["2027-10-31 03:00:00 +01:00", "2027-10-31 03:30:00 +01:00"])
        #expect(try Self.fires("30 2 * * *", "Europe/Berlin", after: "2027-10-31T01:15Z", count: 1) == ["2027-11-01 02:30:00 +01:00"])
        // Every second of the repeated hour, from inside its second pass.
        #expect(try Self.fires("* * 2 * * *", "Europe/Berlin", after: "2027-10-31T01:59:58Z", count: 1) == ["2027-11-01 02:00:00 +01:00"])
    }

    @Test func saoPaulosMidnightChangesSkipAndRepeatMidnight() throws {
        // 2018-11-04 00:00 did not exist in São Paulo (clocks went from 23:59:59 -03 to 01:00 -02).
        #expect(try Self.fires("0 0 * * *", "America/Sao_Paulo", after: "2018-11-02T12:00Z", count: 3)
            == ["2018-11-03 00:00:00 -03:00", "2018-11-04 01:00:00 -02:00", "2018-11-05 00:00:00 -02:00"])
        // 2019-02-16 23:00–23:59 occurred twice (00:00 -02 became 23:00 -03).
        #expect(try Self.fires("30 23 * * *", "America/Sao_Paulo", after: "2019-02-15T12:00Z", count: 3)
            == ["2019-02-15 23:30:00 -02:00", "2019-02-16 23:30:00 -02:00", "2019-02-17 23:30:00 -03:00"])
    }

    @Test func lordHoweChangesByHalfAnHour() throws {
        // 2027-10-03 02:00 +10:30 became 02:30 +11:00; 2027-04-04 02:00 +11:00 became 01:30 +10:30.
        #expect(try Self.fires("15 2 * * *", "Australia/Lord_Howe", after: "2027-10-02T00:00Z", count: 2)
            == ["2027-10-03 02:30:00 +11:00", "2027-10-04 02:15:00 +11:00"])
        #expect(try Self.fires("45 1 * * *", "Australia/Lord_Howe", after: "2027-04-03T00:00Z", count: 2)
            == ["2027-04-04 01:45:00 +11:00", "2027-04-05 01:45:00 +10:30"])
    }

    /// The rule checked minute by minute on the instants themselves, near changes in several zones:
    /// an instant fires when the local time it shows matches and was not shown before (repeats), or
    /// when the clocks jump at it over a matching local time (gaps).
    @Test(arguments: ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Chatham", "America/Santiago"])
    func theRuleHoldsMinuteByMinuteAroundChanges(zoneName: String) throws {
        let zone = try ScheduleTimeZone.named(zoneName)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var generator = RandomCron(seed: UInt64(zoneName.utf8.count) * 7919)
        var cursor = Self.instant("2015-01-01T00:00Z")
        for _ in 0..<16 {
            guard let transition = zone.nextDaylightSavingTimeTransition(after: cursor) else { break }
            cursor = transition.addingTimeInterval(86_400)
            for _ in 0..<3 {
                var fields = generator.expression(busyHours: true).split(separator: " ").map(String.init)
                if fields.count == 6 { fields.removeFirst() }
                if fields[0].hasPrefix("@") { continue }
                let cron = try CronExpression(parsing: fields.joined(separator: " "))
                let start = transition.addingTimeInterval(-Double(generator.int(0...6 * 3600)))
                let expected = Self.bruteForceNext(cron, after: start, calendar: calendar, limit: 2 * 86_400)
                let actual = cron.nextFireTime(after: start, in: zone)
                if let expected {
                    #expect(actual == expected, "\(cron) in \(zoneName) after \(Timestamp.formatLocal(start, in: zone)): \(actual.map { Timestamp.formatLocal($0, in: zone) } ?? "nil") ≠ \(Timestamp.formatLocal(expected, in: zone))")
                } else if let actual {
                    #expect(actual > start.addingTimeInterval(2 * 86_400 - 60), "\(cron) fired at \(actual), brute force found nothing")
                }
            }
        }
    }

    static func bruteForceNext(_ cron: CronExpression, after: Date, calendar: Calendar, limit: Int) -> Date? {
        func matches(_ c: DateComponents) -> Bool {
            let days = LocalTime.days(year: c.year!, month: c.month!, day: c.day!)
            return cron.minutes & (1 << UInt64(c.minute!)) != 0 && cron.hours & (1 << UInt64(c.hour!)) != 0
                && cron.months & (1 << UInt64(c.month!)) != 0 && cron.dayMatches(days: days, day: c.day!)
        }
        func wall(_ date: Date) -> DateComponents { calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date) }
        var t = Date(timeIntervalSince1970: (after.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
        let end = after.addingTimeInterval(TimeInterval(limit))
        while t < end {
            let components = wall(t)
            // Shown before: some earlier instant within the last 3 hours showed the same local minute.
            let offset = calendar.timeZone.secondsFromGMT(for: t)
            var shownBefore = false
            for earlierOffset in Set((1...12).map { calendar.timeZone.secondsFromGMT(for: t.addingTimeInterval(Double(-$0 * 900))) }) where earlierOffset > offset {
                let earlier = t.addingTimeInterval(Double(offset - earlierOffset))
                if calendar.timeZone.secondsFromGMT(for: earlier) == earlierOffset { shownBefore = true }
            }
            if matches(components), !shownBefore { return t }
            // A jump at t: the local minutes from (t - 1 minute)'s wall + 1 up to t's wall were skipped.
            let previousOffset = calendar.timeZone.secondsFromGMT(for: t.addingTimeInterval(-60))
            if previousOffset < offset {
                var utcCalendar = Calendar(identifier: .gregorian)
                utcCalendar.timeZone = utc
                // The local minutes the clocks jumped over: from t's wall in the old offset up to t's own.
                for skipped in stride(from: Int(t.timeIntervalSince1970) + previousOffset, to: Int(t.timeIntervalSince1970) + offset, by: 60)
                where matches(utcCalendar.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: TimeInterval(skipped)))) {
                    return t
                }
            }
            t.addTimeInterval(60)
        }
        return nil
    }

    // MARK: Days, years, seconds

    @Test func dayOfMonthAndWeekdayCombineAsVixieCronDoes() throws {
        // Both restricted: the 13th OR any Friday.
        #expect(try Self.fires("0 0 13 * fri", "UTC", after: "2026-02-01T00:00Z", count: 5)
            == ["2026-02-06 00:00:00 +00:00", "2026-02-13 00:00:00 +00:00", "2026-02-20 00:00:00 +00:00", "2026-02-27 00:00:00 +00:00",
                "2026-03-06 00:00:00 +00:00"])
        // Weekday unrestricted: only the 13th.
        #expect(try Self.fires("0 0 13 * *", "UTC", after: "2026-02-01T00:00Z", count: 2) == ["2026-02-13 00:00:00 +00:00", "2026-03-13 00:00:00 +00:00"])
        // Day of month unrestricted: only Fridays.
        #expect(try Self.fires("0 0 * * 5", "UTC", after: "2026-02-07T00:00Z", count: 2) == ["2026-02-13 00:00:00 +00:00", "2026-02-20 00:00:00 +00:00"])
        // `*/2` restricts (Vixie cron would treat it as `*`): odd days OR Mondays.
        #expect(try Self.fires("0 0 */2 * mon", "UTC", after: "2026-02-01T00:00Z", count: 4)
            == ["2026-02-02 00:00:00 +00:00", "2026-02-03 00:00:00 +00:00", "2026-02-05 00:00:00 +00:00", "2026-02-07 00:00:00 +00:00"])
    }

    @Test func februaryTwentyNinthWaitsForLeapYearsAndSkips2100() throws {
        #expect(try Self.fires("0 0 29 2 *", "UTC", after: "2023-03-01T00:00Z", count: 3)
            == ["2024-02-29 00:00:00 +00:00", "2028-02-29 00:00:00 +00:00", "2032-02-29 00:00:00 +00:00"])
        #expect(try Self.fires("0 0 29 2 *", "UTC", after: "2096-03-01T00:00Z", count: 1) == ["2104-02-29 00:00:00 +00:00"])
        #expect(try Self.fires("0 12 31 * *", "Europe/Berlin", after: "2027-01-31T12:00Z", count: 2)
            == ["2027-03-31 12:00:00 +02:00", "2027-05-31 12:00:00 +02:00"])
    }

    @Test(arguments: ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 4,6,9,11 *"])
    func anExpressionThatNeverFiresGivesNil(expression: String) throws {
        let cron = try CronExpression(parsing: expression)
        #expect(cron.nextFireTime(after: Self.instant("2026-01-01T00:00Z"), in: Self.utc) == nil)
        #expect(cron.fireTimes(after: Self.instant("2026-01-01T00:00Z"), in: Self.utc, count: 3).isEmpty)
    }

    @Test func secondsFieldAndStrictlyAfter() throws {
        #expect(try Self.fires("*/20 * * * * *", "UTC", after: "2026-01-01T00:00:00Z", count: 3)
            == ["2026-01-01 00:00:20 +00:00", "2026-01-01 00:00:40 +00:00", "2026-01-01 00:01:00 +00:00"])
        let cron = try CronExpression(parsing: "0 * * * *")
        let exact = Self.instant("2026-01-01T10:00:00Z")
        #expect(cron.nextFireTime(after: exact, in: Self.utc) == Self.instant("2026-01-01T11:00:00Z"), "strictly after")
        #expect(cron.nextFireTime(after: exact.addingTimeInterval(-0.25), in: Self.utc) == exact)
        #expect(cron.nextFireTime(after: exact.addingTimeInterval(0.25), in: Self.utc) == Self.instant("2026-01-01T11:00:00Z"))
        // Year, month and day roll over together.
        #expect(try Self.fires("59 23 31 12 *", "UTC", after: "2026-12-31T23:59:00Z", count: 1) == ["2027-12-31 23:59:00 +00:00"])
    }

    @Test func farAwayOrNonFiniteDatesGiveNil() throws {
        let cron = try CronExpression(parsing: "* * * * *")
        #expect(cron.nextFireTime(after: Date(timeIntervalSince1970: .infinity), in: Self.utc) == nil)
        #expect(cron.nextFireTime(after: Date(timeIntervalSince1970: .nan), in: Self.utc) == nil)
        #expect(cron.nextFireTime(after: .distantFuture, in: Self.utc) == Date.distantFuture.addingTimeInterval(60), "year 4001 still works")
        #expect(cron.nextFireTime(after: .distantPast, in: Self.utc) == Date.distantPast.addingTimeInterval(60))
    }

    @Test func fireTimesStopsAtUntilInclusive() throws {
        let cron = try CronExpression(parsing: "0 * * * *")
        let times = cron.fireTimes(after: Self.instant("2026-01-01T00:00Z"), in: Self.utc, count: 100, until: Self.instant("2026-01-01T03:00Z"))
        #expect(times == [Self.instant("2026-01-01T01:00Z"), Self.instant("2026-01-01T02:00Z"), Self.instant("2026-01-01T03:00Z")])
    }

    @Test func aScheduleFiresOnlyBetweenStartAndEnd() throws {
        let schedule = try ScheduleDefinition(name: "hourly", template: "examples/linear", cron: CronExpression(parsing: "0 * * * *"),
                                              startAt: Self.instant("2026-01-01T05:00Z"), endAt: Self.instant("2026-01-01T07:00Z"))
        #expect(schedule.nextFireTime(after: Self.instant("2026-01-01T00:00Z")) == Self.instant("2026-01-01T05:00Z"), "the start itself fires")
        #expect(schedule.nextFireTime(after: Self.instant("2026-01-01T05:00Z")) == Self.instant("2026-01-01T06:00Z"))
        #expect(schedule.nextFireTime(after: Self.instant("2026-01-01T06:00Z")) == Self.instant("2026-01-01T07:00Z"), "the end itself fires")
        #expect(schedule.nextFireTime(after: Self.instant("2026-01-01T07:00Z")) == nil, "end reached")
    }

    /// The orchestrator asks for a thousand schedules' next times a second. An optimized build
    /// takes about 1–3 µs a call (scripts/cron-benchmark.sh); this debug-build bound is loose and
    /// only catches a search that steps through time instead of jumping.
    @Test func nextFireTimeJumpsInsteadOfStepping() throws {
        let zone = try ScheduleTimeZone.named("Europe/Berlin")
        let expressions = try ["*/15 9-17 * * mon-fri", "0 2 * * *", "0 0 29 2 *", "0 0 1 1 *", "*/10 * * * * *", "0 0 13 * 5"].map(CronExpression.init(parsing:))
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for index in 0..<12_000 {
                _ = expressions[index % expressions.count].nextFireTime(after: Self.instant("2027-03-01T00:00Z").addingTimeInterval(Double(index * 97)), in: zone)
            }
        }
        #expect(elapsed < .seconds(20), "12,000 calls took \(elapsed)")
    }

    @Test(arguments: [-86_400 * 365 * 60, 0, 86_400 * 365 * 200])
    func civilDatesRoundTrip(offsetDays: Int) {
        for days in stride(from: offsetDays / 86_400 - 800, through: offsetDays / 86_400 + 800, by: 1) {
            let (year, month, day) = LocalTime.civil(fromDays: days)
            #expect(LocalTime.days(year: year, month: month, day: day) == days)
            #expect(day <= LocalTime.daysInMonth(year: year, month: month))
        }
    }
}
