import Foundation

/// `Date` ↔ timestamptz in the ISO text form, with microsecond precision both ways.
///
/// Written by hand instead of with `DateFormatter`, which is slow, locale-sensitive and loses
/// microseconds. Connections set `DateStyle = ISO` and `TimeZone = UTC`, but any offset is accepted.
extension Date: PostgresCodable {
    public static var postgresType: PostgresDataType { .timestamptz }

    public var postgresText: String? {
        let totalMicros = (timeIntervalSince1970 * 1_000_000).rounded()
        guard totalMicros.isFinite, abs(totalMicros) < 9.0e18 else {
            return totalMicros > 0 ? "infinity" : "-infinity"
        }
        let micros = Int64(totalMicros)
        var days = micros / 86_400_000_000
        var rest = micros % 86_400_000_000
        if rest < 0 { rest += 86_400_000_000; days -= 1 }
        let (year, month, day) = CivilDate.fromDays(days)
        let seconds = rest / 1_000_000
        let fraction = rest % 1_000_000
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(fraction, 6))+00"
    }

    public init(postgresText text: String, type: PostgresDataType) throws {
        switch text {
        case "infinity": self = .distantFuture; return
        case "-infinity": self = .distantPast; return
        default: break
        }
        var scanner = DigitScanner(text)
        guard let year = scanner.number(), scanner.skip("-"),
              let month = scanner.number(), scanner.skip("-"),
              let day = scanner.number(), scanner.skip(" ") || scanner.skip("T"),
              let hour = scanner.number(), scanner.skip(":"),
              let minute = scanner.number(), scanner.skip(":"),
              let second = scanner.number()
        else { throw PostgresDecodingFailure("not an ISO timestamp; the connection's DateStyle must be ISO") }
        var micros: Int64 = 0
        if scanner.skip(".") {
            let (digits, count) = scanner.numberWithCount()
            guard let digits else { throw PostgresDecodingFailure("bad fractional seconds") }
            micros = digits
            for _ in count..<6 { micros *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if let sign = scanner.sign() {
            guard let hours = scanner.number() else { throw PostgresDecodingFailure("bad time zone offset") }
            var offset = hours * 3600
            if scanner.skip(":"), let minutes = scanner.number() { offset += minutes * 60 }
            if scanner.skip(":"), let seconds = scanner.number() { offset += seconds }
            offsetSeconds = sign * offset
        } else if type == .timestamptz, !scanner.atEnd, !scanner.skip("Z") {
            throw PostgresDecodingFailure("unexpected text after the time")
        }
        if scanner.skip(" BC") { throw PostgresDecodingFailure("dates before the common era are not supported") }
        let days = CivilDate.toDays(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        self = Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }
}

/// Days since 1970-01-01 ↔ proleptic Gregorian dates (the well-known civil-from-days algorithm).
enum CivilDate {
    static func toDays(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func fromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// A tiny cursor over ASCII digits and separators.
struct DigitScanner {
    private let bytes: [UInt8]
    private var index = 0
    init(_ text: String) { bytes = Array(text.utf8) }

    var atEnd: Bool { index >= bytes.count }

    mutating func number() -> Int64? { numberWithCount().0 }

    mutating func numberWithCount() -> (Int64?, Int) {
        var value: Int64 = 0
        var count = 0
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            value = value * 10 + Int64(bytes[index] - 48)
            index += 1
            count += 1
        }
        return (count == 0 ? nil : value, count)
    }

    mutating func skip(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else { return false }
        index += expected.count
        return true
    }

    mutating func sign() -> Int64? {
        if skip("+") { return 1 }
        if skip("-") { return -1 }
        return nil
    }
}
