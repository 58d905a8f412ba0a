import Foundation
@testable import OrcastraSchedules
import Testing

/// Our parser and fire times against croniter (PyPI) on thousands of random expressions, zones and
/// start instants: 20 fire times each, compared exactly. The differences we chose are listed in
/// docs/schedules.md ("Differences from croniter") and excluded below by rule, each tested by
/// hand in CronFireTimeTests.
///
/// Needs `python3` with croniter (`python3 -m pip install croniter`; .ci/run installs it). Without
/// it the test is skipped, unless ORCASTRA_REQUIRE_CRONITER=1 (CI) makes that a failure.
@Suite(.timeLimit(.minutes(3))) struct CronCrossCheckTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("croniter_check.py").path
    static let croniterInstalled: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import croniter"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
    static let required = ProcessInfo.processInfo.environment["ORCASTRA_REQUIRE_CRONITER"] == "1"

    static let zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Kolkata",
                        "Pacific/Chatham", "America/Santiago", "Asia/Tehran", "Europe/London"]

    struct Case: Codable {
        var expression: String
        /// The same expression as croniter must be given it (see `DeliberateDifference.forCroniter`).
        var croniterExpression: String
        var timezone: String
        var start: Int
        var ours: [Int]
    }

    struct Report: Decodable {
        struct Mismatch: Decodable {
            var expression: String
            var timezone: String
            var start: Int
            var ours: [Int]
            var theirs: [Value]
        }

        /// A fire time, or croniter's error text.
        enum Value: Decodable, Equatable, CustomStringConvertible {
            case time(Int)
            case error(String)

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let time = try? container.decode(Int.self) { self = .time(time) } else { self = .error(try container.decode(String.self)) }
            }

            var time: Int? { if case .time(let time) = self { return time } else { return nil } }
            var description: String {
                switch self {
                case .time(let time): return Timestamp.format(Date(timeIntervalSince1970: TimeInterval(time)))
                case .error(let text): return text
                }
            }
        }

        var croniter: String
        var cases: Int
        var mismatches: [Mismatch]
    }

    @Test(.enabled(if: croniterInstalled || required, "croniter is not installed (python3 -m pip install croniter)"))
    func fireTimesAgreeWithCroniter() throws {
        try #require(Self.croniterInstalled, "croniter is required here (ORCASTRA_REQUIRE_CRONITER=1): python3 -m pip install croniter")
        var generator = RandomCron(seed: 0x0C0FFEE)
        var cases: [Case] = []
        for index in 0..<4000 {
            let zoneName = Self.zones[index % Self.zones.count]
            let zone = try ScheduleTimeZone.named(zoneName)
            // 2000 … 2035, any second; from the 3000th on, up to 36 hours before a change of offset
            // (where one exists), with busier hours, to put daylight saving to the test.
            var start = 946_684_800 + Int(generator.next() % 1_104_537_600)
            let nearTransition = index >= 3000
            if nearTransition, let transition = zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: TimeInterval(start))) {
                start = Int(transition.timeIntervalSince1970) - generator.int(0...36 * 3600)
            }
            let expression = generator.expression(busyHours: nearTransition)
            let cron = try CronExpression(parsing: expression)
            let ours = cron.fireTimes(after: Date(timeIntervalSince1970: TimeInterval(start)), in: zone, count: 20)
            cases.append(Case(expression: expression, croniterExpression: DeliberateDifference.forCroniter(expression), timezone: zoneName, start: start, ours: ours.map { Int($0.timeIntervalSince1970) }))
        }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("orcastra-croniter-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: input) }
        try JSONEncoder().encode(cases).write(to: input)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["timeout", "120", "python3", Self.script, input.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "croniter_check.py exited \(process.terminationStatus): \(errorText)")
        let report = try JSONDecoder().decode(Report.self, from: data)
        #expect(report.cases == cases.count)

        var excused: [String] = []
        var unexplained: [String] = []
        for mismatch in report.mismatches {
            let zone = try ScheduleTimeZone.named(mismatch.timezone)
            if DeliberateDifference.explains(ours: mismatch.ours, theirs: mismatch.theirs, in: zone) {
                excused.append(describe(mismatch, in: zone))
                continue
            }
            unexplained.append(describe(mismatch, in: zone))
        }
        print("croniter \(report.croniter): \(cases.count) expressions, \(cases.count * 20) fire times; \(report.mismatches.count) differ, \(excused.count) by a documented deliberate difference")
        if ProcessInfo.processInfo.environment["ORCASTRA_CRONITER_VERBOSE"] == "1" { print(excused.joined(separator: "\n")) }
        #expect(unexplained.isEmpty, "\(unexplained.count) unexplained differences from croniter; the first:\n\(unexplained.prefix(5).joined(separator: "\n"))")
    }
}

extension CronCrossCheckTests {
    func describe(_ mismatch: Report.Mismatch, in zone: TimeZone) -> String {
        func local(_ time: Int) -> String { Timestamp.formatLocal(Date(timeIntervalSince1970: TimeInterval(time)), in: zone) }
        return """
            \(mismatch.expression) in \(mismatch.timezone) after \(local(mismatch.start)):
              ours:     \(mismatch.ours.map(local).joined(separator: ", "))
              croniter: \(mismatch.theirs.map { $0.time.map(local) ?? "\($0)" }.joined(separator: ", "))
            """
    }
}

/// The documented differences from croniter (docs/schedules.md), as a rule the cross-check applies.
enum DeliberateDifference {
    /// The expression as croniter must be given it to mean what it means to us:
    ///
    /// - croniter 7 reads a range with equal ends (`5-5`, `tue-tue`, `10-10/1`) as `*`: `52-52 1 * * *`
    ///   fires every minute of 01:00–01:59. Vixie cron and we read it as the one value, so croniter
    ///   is given that value.
    /// - croniter counts a day field that lists every value (`*/1`, `1/1`, `1-31`, `0-6`) as `*` when
    ///   the other day field contains a `*`, so only the other field counts. Only a plain `*` is
    ///   unrestricted to us (and to Vixie cron, but for `*/N`), so a full list means every day
    ///   matches; croniter is given `* *` for the two day fields, which means the same.
    static func forCroniter(_ expression: String) -> String {
        guard !expression.hasPrefix("@"), let cron = try? CronExpression(parsing: expression) else { return expression }
        var fields = expression.split(separator: " ").map(String.init)
        let first = fields.count == 6 ? 1 : 0
        fields = fields.enumerated().map { index, field in
            let names = index - first == 3 ? [""] + RandomCron.months : index - first == 4 ? RandomCron.weekdays : []
            func value(_ text: Substring) -> Int? { Int(text) ?? names.firstIndex(of: text.lowercased()) }
            return field.split(separator: ",", omittingEmptySubsequences: false).map { item -> String in
                let ends = item.split(separator: "/", maxSplits: 1)[0].split(separator: "-")
                guard ends.count == 2, let low = value(ends[0]), low == value(ends[1]) else { return String(item) }
                return String(low)
            }.joined(separator: ",")
        }
        let everyDayOfMonth = cron.daysOfMonthRestricted && cron.daysOfMonth == CronField.dayOfMonth.fullMask
        let everyDayOfWeek = cron.daysOfWeekRestricted && cron.daysOfWeek == CronField.dayOfWeek.fullMask
        if everyDayOfMonth || everyDayOfWeek {
            fields[first + 2] = "*"
            fields[first + 4] = "*"
        }
        return fields.joined(separator: " ")
    }

    /// Daylight saving: croniter's handling of skipped and repeated local times differs from our
    /// rule (first instant of a repeated time; end of the gap for a skipped one). Fire times on a
    /// day whose UTC offset changes are left out of both lists, which must then agree; those days
    /// are tested by hand.
    static func explains(ours: [Int], theirs: [CronCrossCheckTests.Report.Value], in zone: TimeZone) -> Bool {
        let theirTimes = theirs.compactMap(\.time)
        guard theirTimes.count == theirs.count else { return false }
        let a = ours.filter { !isTransitionDay($0, in: zone) }
        let b = theirTimes.filter { !isTransitionDay($0, in: zone) }
        guard a.count != ours.count || b.count != theirTimes.count else { return false }
        let common = min(a.count, b.count)
        return Array(a.prefix(common)) == Array(b.prefix(common))
    }

    /// Whether the offset changes within a day of `instant` (either side, to cover its local day).
    static func isTransitionDay(_ instant: Int, in zone: TimeZone) -> Bool {
        let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
        return zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant - 86_400))) != offset
            || zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant + 86_400))) != offset
    }
}

/// Random cron expressions with every syntax element, reproducible from a seed (SplitMix64).
struct RandomCron {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// One field over `low...high`; `names` (for month and weekday) replace numbers sometimes.
    mutating func field(_ low: Int, _ high: Int, star: Int, names: [String] = [], nameBase: Int = 0) -> String {
        if chance(star) { return "*" }
        func value(_ number: Int) -> String {
            if !names.isEmpty, chance(30), number - nameBase < names.count { return names[number - nameBase].capitalizedIfLucky(&self) }
            return String(number)
        }
        func item() -> String {
            switch int(0...5) {
            case 0, 1: return value(int(low...high))
            case 2:
                let a = int(low...high), b = int(a...high)
                return "\(value(a))-\(value(b))"
            case 3: return "*/\(int(1...max(1, (high - low + 1) / 2)))"
            case 4:
                let a = int(low...high), b = int(a...high)
                return "\(value(a))-\(value(b))/\(int(1...max(1, (b - a + 1))))"
            default: return "\(int(low...high))/\(int(1...max(1, (high - low + 1) / 3)))"
            }
        }
        return (0..<(chance(25) ? int(2...3) : 1)).map { _ in item() }.joined(separator: ",")
    }

    mutating func expression(busyHours: Bool = false) -> String {
        if chance(3) { return ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"][int(0...6)] }
        var fields: [String] = []
        if chance(30) { fields.append(field(0, 59, star: 20)) }
        fields.append(field(0, 59, star: 20))
        fields.append(field(0, 23, star: busyHours ? 70 : 35))
        fields.append(field(1, 31, star: 60))
        fields.append(field(1, 12, star: 65, names: Self.months, nameBase: 1))
        fields.append(field(0, 6, star: 60, names: Self.weekdays))
        return fields.joined(separator: " ")
    }
}

extension String {
    fileprivate func capitalizedIfLucky(_ generator: inout RandomCron) -> String {
        generator.chance(30) ? prefix(1).uppercased() + dropFirst() : self
    }
}
