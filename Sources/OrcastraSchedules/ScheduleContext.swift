import Foundation
import OrcastraTemplates

/// The context a schedule's task gets: the schedule's own, plus `scheduled_for`, the occurrence it
/// runs for, so a handler can be idempotent per period. The same text as SQL's
/// `orcastra.schedule_instant_text` (Migrations/functions/schedules.sql), which makes the stored
/// context: RFC 3339 in UTC, to the second, or to the microsecond for a manual run.
public enum ScheduleContext {
    public static let key = "scheduled_for"

    public static func context(_ context: JSONValue, scheduledFor occurrence: Date) -> JSONValue {
        guard case .object(var fields) = context else { return context }
        fields[key] = .string(instantText(occurrence))
        return .object(fields)
    }

    public static func instantText(_ instant: Date) -> String {
        let seconds = instant.timeIntervalSince1970
        let whole = seconds.rounded(.down)
        let micros = Int(((seconds - whole) * 1_000_000).rounded())
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: whole))
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
        if micros > 0 && micros < 1_000_000 { text += String(format: ".%06d", micros) }
        return text + "Z"
    }
}
