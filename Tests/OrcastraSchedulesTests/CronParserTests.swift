import Foundation
@testable import OrcastraSchedules
import Testing

/// The cron syntax: what each field accepts, how it expands, and the message for each mistake.
@Suite(.timeLimit(.minutes(5))) struct CronParserTests {
    static func bits(_ values: [Int]) -> UInt64 { values.reduce(0) { $0 | 1 << UInt64($1) } }

    @Test(arguments: [
        ("*", Array(0...59)),
        ("5", [5]),
        ("1,2,3", [1, 2, 3]),
        ("10-15", Array(10...15)),
        ("*/15", [0, 15, 30, 45]),
        ("10-30/10", [10, 20, 30]),
        ("5/20", [5, 25, 45]),
        ("0-4,*/20,59", [0, 1, 2, 3, 4, 20, 40, 59]),
        ("*/100", [0]),
        ("7-7", [7]),
    ])
    func minuteFieldExpands(text: String, values: [Int]) throws {
        let cron = try CronExpression(parsing: "\(text) * * * *")
        #expect(cron.minutes == Self.bits(values))
        #expect(!cron.hasSeconds)
        #expect(cron.seconds == 1, "a 5-field expression fires at second 0")
    }

    @Test(arguments: [
        ("jan", [1]), ("JAN-Mar", [1, 2, 3]), ("*/3", [1, 4, 7, 10]), ("nov-dec,1", [1, 11, 12]), ("feb/5", [2, 7, 12]),
    ])
    func monthNames(text: String, values: [Int]) throws {
        #expect(try CronExpression(parsing: "0 0 1 \(text) *").months == Self.bits(values))
    }

    @Test(arguments: [
        ("sun", [0]), ("7", [0]), ("0,7", [0]), ("mon-fri", [1, 2, 3, 4, 5]), ("MON-SUN", [0, 1, 2, 3, 4, 5, 6]),
        ("5-7", [0, 5, 6]), ("7/2", [0]), ("6/1", [6]), ("sat,sun", [0, 6]), ("*/2", [0, 2, 4, 6]), ("1/2", [1, 3, 5]), ("0-7", [0, 1, 2, 3, 4, 5, 6]),
    ])
    func weekdaysSundayIsZeroOrSeven(text: String, values: [Int]) throws {
        #expect(try CronExpression(parsing: "0 0 * * \(text)").daysOfWeek == Self.bits(values))
    }

    @Test func sixFieldsStartWithSeconds() throws {
        let cron = try CronExpression(parsing: "  */20 5 4 3 2 1 \n")
        #expect(cron.hasSeconds)
        #expect(cron.source == "*/20 5 4 3 2 1")
        #expect(cron.description == cron.source)
        #expect(cron.seconds == Self.bits([0, 20, 40]))
        #expect(cron.minutes == Self.bits([5]))
        #expect(cron.hours == Self.bits([4]))
        #expect(cron.daysOfMonth == Self.bits([3]))
        #expect(cron.months == Self.bits([2]))
        #expect(cron.daysOfWeek == Self.bits([1]))
    }

    @Test(arguments: [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@DAILY", "0 0 * * *"),
    ])
    func macrosMeanTheirExpansion(macro: String, expansion: String) throws {
        let cron = try CronExpression(parsing: macro)
        let expanded = try CronExpression(parsing: expansion)
        #expect(cron.source == macro)
        #expect(cron.minutes == expanded.minutes && cron.hours == expanded.hours && cron.daysOfMonth == expanded.daysOfMonth
            && cron.months == expanded.months && cron.daysOfWeek == expanded.daysOfWeek
            && cron.daysOfMonthRestricted == expanded.daysOfMonthRestricted && cron.daysOfWeekRestricted == expanded.daysOfWeekRestricted)
    }

    @Test(arguments: [
        ("*", "*", false, false), ("1", "*", true, false), ("*", "1", false, true), ("*/1", "*", true, false), ("1-31", "0-6", true, true),
    ])
    func onlyAPlainStarIsUnrestricted(dayOfMonth: String, dayOfWeek: String, domRestricted: Bool, dowRestricted: Bool) throws {
        let cron = try CronExpression(parsing: "0 0 \(dayOfMonth) * \(dayOfWeek)")
        #expect(cron.daysOfMonthRestricted == domRestricted)
        #expect(cron.daysOfWeekRestricted == dowRestricted)
    }

    @Test(arguments: [
        ("61 * * * *", "minute", "minute field \"61\" is out of range 0–59"),
        ("1,61 * * * *", "minute", "minute field \"1,61\": 61 is out of range 0–59"),
        ("0 24 * * *", "hour", "hour field \"24\" is out of range 0–23"),
        ("0 0 0 * *", "day-of-month", "day-of-month field \"0\" is out of range 1–31"),
        ("0 0 32 * *", "day-of-month", "day-of-month field \"32\" is out of range 1–31"),
        ("0 0 * 13 *", "month", "month field \"13\" is out of range 1–12"),
        ("0 0 * * 8", "day-of-week", "day-of-week field \"8\" is out of range 0–7"),
        ("60 0 0 * * *", "second", "second field \"60\" is out of range 0–59"),
        ("0 0 * jann *", "month", "month field \"jann\": \"jann\" is not a number in 1–12 or a name (jan…dec); did you mean jan?"),
        ("0 0 * * mon-fry", "day-of-week", "day-of-week field \"mon-fry\": \"fry\" is not a number in 0–7 or a name (sun…sat); did you mean fri?"),
        ("0 x * * *", "hour", "hour field \"x\": \"x\" is not a number in 0–23"),
        ("*/0 * * * *", "minute", "minute field \"*/0\": a step must be at least 1"),
        ("*/x * * * *", "minute", "minute field \"*/x\": the step \"x\" is not a whole number"),
        ("1,,2 * * * *", "minute", "minute field \"1,,2\" has an empty item; separate values with single commas, like 0, */15 or 0-29"),
        ("0 22-2 * * *", "hour", "hour field \"22-2\": the range 22-2 goes backwards; write it as two ranges, like 22-23,0-2"),
        ("0 5- * * *", "hour", "hour field \"5-\" has a range with a missing end; write it like 9, 9-17 or */6"),
        ("0 -5 * * *", "hour", "hour field \"-5\" has a range with a missing start; write it like 9, 9-17 or */6"),
        ("* * * *", "expression", "cron expression \"* * * *\" has 4 fields; write 5 (minute hour day-of-month month day-of-week) or 6 (a leading second, then the 5)"),
        ("0 0 0 * * * *", "expression", "cron expression \"0 0 0 * * * *\" has 7 fields; write 5 (minute hour day-of-month month day-of-week) or 6 (a leading second, then the 5)"),
        ("   ", "expression", "the cron expression is empty; write 5 fields (minute hour day-of-month month day-of-week), 6 with a leading second, or a macro like @daily"),
        ("@dayly", "expression", "unknown macro \"@dayly\"; did you mean @daily? The macros are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly."),
        ("@reboot", "expression", "@reboot is not a schedule (there is no boot to run at); use a time such as @daily"),
        ("0 0 * * 1#2", "day-of-week", "day-of-week field \"1#2\": \"1#2\" is not a number in 0–7 or a name (sun…sat) (L, W, # and ? are not supported; see docs/schedules.md)"),
        ("0 0 L * *", "day-of-month", "day-of-month field \"L\": \"L\" is not a number in 1–31 (L, W, # and ? are not supported; see docs/schedules.md)"),
    ])
    func mistakesAreNamedByField(text: String, field: String, message: String) {
        #expect(throws: CronError.self) { try CronExpression(parsing: text) }
        do {
            _ = try CronExpression(parsing: text)
        } catch {
            #expect(error.field == field)
            #expect(error.message == message)
            #expect(error.description == message)
        }
    }

    @Test(arguments: [("0 0 30 2 *", false), ("0 0 31 4,6,9,11 *", false), ("0 0 29 2 *", true), ("0 0 30 2 1", true), ("0 0 31 * *", true)])
    func expressionsThatNeverFireAreRecognized(text: String, fires: Bool) throws {
        #expect(try CronExpression(parsing: text).canEverFire == fires)
    }

    @Test func equalExpressionsAreEqual() throws {
        #expect(try CronExpression(parsing: "0 9 * * 1") == CronExpression(parsing: " 0 9 * * 1 "))
        #expect(try CronExpression(parsing: "0 9 * * 1") != CronExpression(parsing: "0 9 * * mon"), "the source text is part of the value")
    }
}
