import Foundation
import OpenAPIRuntime
import OrcastraSchedules

/// Times as the API writes and reads them: RFC 3339 with fractional seconds out (PostgreSQL keeps
/// microseconds, and a listing's order depends on them), with or without fractions in.
struct RFC3339Dates: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
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
