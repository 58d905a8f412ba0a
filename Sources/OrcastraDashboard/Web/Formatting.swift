import Foundation

/// Times and durations as the pages show them: UTC, to the second.
enum Formatting {
    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        return formatter.string(from: date)
    }

    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "—" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    static func duration(from start: Date?, to end: Date?) -> String {
        guard let start else { return "—" }
        return duration((end ?? Date()).timeIntervalSince(start)) + (end == nil ? " so far" : "")
    }

    /// `2026-12-01T12:00` as a `datetime-local` field sends it, read as UTC.
    static func localInput(_ text: String?) -> Date? {
        guard let text, !text.isEmpty else { return nil }
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"] {
            let parser = DateFormatter()
            parser.locale = Locale(identifier: "en_US_POSIX")
            parser.timeZone = TimeZone(identifier: "UTC")
            parser.dateFormat = format
            if let date = parser.date(from: text) { return date }
        }
        return nil
    }

    private static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return formatter
    }()
}
