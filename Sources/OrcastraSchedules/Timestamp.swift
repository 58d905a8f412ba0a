import Foundation

/// Reads the times the CLI takes (`submit --at`, `task list --since/--until`, `schedule next --from`)
/// and schedule files' `start`/`end`: RFC 3339 / ISO 8601 in its extended form, exactly.
///
///     2026-05-01                          midnight, local time zone
///     2026-05-01T14:00  2026-05-01 14:00  local time zone, seconds optional
///     2026-05-01T14:00:30.250             fractional seconds (up to 9 digits)
///     2026-05-01T12:00:00Z  …+02:00  …-0530  with an offset
///
/// Every field is checked against the calendar (no 25:99, no February 30th, no trailing text):
/// Foundation's ISO 8601 parser accepts `2026-12-01Tnonsense` as midnight and rolls 25:99 over,
/// so this is written by hand.
public enum Timestamp {
    public static let examples = "2026-05-01T14:00 (local time), 2026-05-01T12:00:00Z, 2026-05-01T14:00:00+02:00 or 2026-05-01"

    /// The instant `text` names; a time without an offset is read in `timeZone`. Nil when it is not
    /// such a time, names a day or time the calendar does not have, or a local time skipped by a
    /// daylight saving change.
    public static func parse(_ text: String, timeZone: TimeZone = .current) -> Date? {
        var scanner = Digits(Array(text.utf8))
        guard let year = scanner.number(4), scanner.take("-"), let month = scanner.number(2), scanner.take("-"),
              let day = scanner.number(2) else { return nil }
        var hour = 0, minute = 0, second = 0, nanosecond = 0
        var zone = timeZone
        if !scanner.atEnd {
            guard scanner.take("T") || scanner.take("t") || scanner.take(" "),
                  let h = scanner.number(2), scanner.take(":"), let m = scanner.number(2) else { return nil }
            hour = h; minute = m
            if scanner.take(":") {
                guard let s = scanner.number(2) else { return nil }
                second = s
                if scanner.take(".") || scanner.take(",") {
                    let fraction = scanner.digits(upTo: 9)
                    guard !fraction.isEmpty else { return nil }
                    nanosecond = Int(fraction.padding(toLength: 9, withPad: "0", startingAt: 0))!
                }
            }
            if scanner.take("Z") || scanner.take("z") {
                zone = TimeZone(secondsFromGMT: 0)!
            } else if let sign = scanner.sign() {
                guard let offsetHours = scanner.number(2) else { return nil }
                _ = scanner.take(":")
                guard let offsetMinutes = scanner.number(2), offsetHours <= 23, offsetMinutes <= 59,
                      let offset = TimeZone(secondsFromGMT: sign * (offsetHours * 3600 + offsetMinutes * 60)) else { return nil }
                zone = offset
            }
            guard scanner.atEnd else { return nil }
        }
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = calendar.date(from: components) else { return nil }
        // The calendar rolls 2026-02-30 over to March 2nd, and a local time skipped by a daylight
        // saving change to the next hour: such a time does not exist, so it is refused.
        let back = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        guard back.year == year, back.month == month, back.day == day, back.hour == hour, back.minute == minute,
              back.second == second else { return nil }
        return date.addingTimeInterval(Double(nanosecond) / 1_000_000_000)
    }

    /// A cursor over ASCII digits and separators.
    private struct Digits {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ character: Character) -> Bool {
            guard !atEnd, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }

        /// Exactly `count` digits.
        mutating func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += count
            return value
        }

        /// One to `limit` digits, as text.
        mutating func digits(upTo limit: Int) -> String {
            var text = ""
            while !atEnd, text.count < limit, (0x30...0x39).contains(bytes[index]) {
                text.append(Character(UnicodeScalar(bytes[index])))
                index += 1
            }
            return text
        }

        mutating func sign() -> Int? {
            if take("+") { return 1 }
            if take("-") { return -1 }
            return nil
        }
    }
}

extension Timestamp {
    /// RFC 3339 in UTC, whole seconds: `2027-03-29T07:00:00Z`.
    public static func format(_ date: Date) -> String {
        let (day, time) = components(Int(date.timeIntervalSince1970.rounded(.down)))
        return "\(day)T\(time)Z"
    }

    /// The local time in `zone` with its offset, as people read it: `2027-03-29 09:00:00 +02:00`.
    public static func formatLocal(_ date: Date, in zone: TimeZone) -> String {
        let instant = Int(date.timeIntervalSince1970.rounded(.down))
        let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
        let (day, time) = components(instant + offset)
        let magnitude = abs(offset)
        var text = "\(day) \(time) \(offset < 0 ? "-" : "+")\(two(magnitude / 3600)):\(two(magnitude / 60 % 60))"
        if magnitude % 60 != 0 { text += ":\(two(magnitude % 60))" }
        return text
    }

    /// RFC 3339 with the zone's offset: `2027-03-29T09:00:00+02:00`.
    public static func formatWithOffset(_ date: Date, in zone: TimeZone) -> String {
        let local = formatLocal(date, in: zone)
        let parts = local.split(separator: " ")
        return "\(parts[0])T\(parts[1])\(parts[2])"
    }

    private static func components(_ wall: Int) -> (day: String, time: String) {
        let days = LocalTime.floorDivide(wall, 86_400)
        let second = wall - days * 86_400
        let (year, month, day) = LocalTime.civil(fromDays: days)
        let yearText = year >= 0 && year < 10_000 ? String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year) : String(year)
        return ("\(yearText)-\(two(month))-\(two(day))", "\(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60))")
    }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
