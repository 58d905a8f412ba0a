import Foundation
import OpenAPIRuntime

/// Times as the API writes and reads them: RFC 3339 with fractional seconds out (PostgreSQL keeps
/// microseconds, and a listing's order depends on them), with or without fractions in.
struct RFC3339Dates: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    func decode(_ text: String) throws -> Date {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        do {
            return try Date.ISO8601FormatStyle().parse(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        }
    }
}
