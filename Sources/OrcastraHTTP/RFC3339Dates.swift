import Foundation
import OpenAPIRuntime
import OrcastraAPITypes
import OrcastraSchedules

/// Times as the API writes and reads them: RFC 3339 with microseconds out (PostgreSQL's precision:
/// a listing's order depends on them, and a client can rebuild the very time the database holds),
/// with or without fractions in.
struct RFC3339Dates: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        Self.microseconds(date)
    }

    /// `2026-01-31T12:00:00.123456Z`.
    static func microseconds(_ date: Date) -> String {
        let time = date.timeIntervalSince1970
        var whole = time.rounded(.down)
        var micros = Int(((time - whole) * 1_000_000).rounded())
        if micros == 1_000_000 { whole += 1; micros = 0 }
        let seconds = Date(timeIntervalSince1970: whole).formatted(Date.ISO8601FormatStyle())
        let digits = String(micros)
        return String(seconds.dropLast()) + "." + String(repeating: "0", count: 6 - digits.count) + digits + "Z"
    }

    /// The CLI's reader (OrcastraSchedules): any RFC 3339 time (any year, any offset, any number
    /// of fractional digits); one without an offset is read as UTC.
    func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text, timeZone: TimeZone(identifier: "UTC")!) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        }
        return date
    }
}
