import Foundation
import OrcastraClient

/// How schedules read in a terminal: the table of `schedule list`, the detail of `schedule show`.
enum ScheduleText {
    static func table(_ schedules: [ScheduleInfo], now: Date = Date()) -> String {
        let rows = schedules.map { schedule in
            [schedule.qualifiedName, schedule.template, schedule.cron, schedule.timezone,
             schedule.paused ? "paused" : next(schedule, now: now),
             schedule.lastFireAt.map { CLI.time($0) } ?? "-",
             lastTask(schedule)]
        }
        return CLI.table(["SCHEDULE", "TEMPLATE", "CRON", "ZONE", "NEXT", "LAST FIRED", "LAST TASK"], rows)
    }

    static func detail(_ schedule: ScheduleInfo, now: Date = Date()) -> String {
        var lines = [
            "Schedule \(schedule.qualifiedName) (id \(schedule.id))\(schedule.paused ? " — paused" : "")",
            "  template   \(schedule.template)\(schedule.template.contains("@") ? "" : " (the default or highest release at each firing)")",
            "  cron       \(schedule.cron) in \(schedule.timezone)",
        ]
        if let start = schedule.startAt { lines.append("  start      \(CLI.time(start))") }
        if let end = schedule.endAt { lines.append("  end        \(CLI.time(end))") }
        lines.append("  catch-up   \(schedule.catchUp)    overlap \(schedule.overlap)    priority \(schedule.priority)")
        lines.append("  context    \(schedule.context.jsonText) (+ scheduled_for)")
        lines.append("  next       \(schedule.paused ? "paused (resume to fire again)" : next(schedule, now: now))")
        lines.append("  last       \(schedule.lastFireAt.map { CLI.time($0) } ?? "never fired")" + (schedule.lastOutcome.map { ", \($0)" } ?? ""))
        if schedule.lastTaskID != nil { lines.append("  last task  \(lastTask(schedule))") }
        if let error = schedule.lastError { lines.append("  last error \(error)") }
        lines.append("  fired      \(CLI.count(schedule.firedCount, "task", "tasks")), skipped \(schedule.skippedCount)")
        return lines.joined(separator: "\n")
    }

    static func nextLine(_ schedule: ScheduleInfo, now: Date = Date()) -> String {
        if schedule.paused { return "It is paused: `orcastra schedule resume \(schedule.qualifiedName)` starts it." }
        guard schedule.nextFireAt != nil else { return "It will not fire: no occurrence is left (past its end, or the expression never matches)." }
        return "Next occurrence: \(next(schedule, now: now))."
    }

    static func next(_ schedule: ScheduleInfo, now: Date) -> String {
        guard let next = schedule.nextFireAt else { return "none" }
        let seconds = next.timeIntervalSince(now)
        return CLI.time(next) + (seconds >= 0 ? " (in \(CLI.duration(seconds)))" : " (due)")
    }

    static func lastTask(_ schedule: ScheduleInfo) -> String {
        guard let id = schedule.lastTaskID else { return schedule.lastOutcome == "failed" ? "failed: \(schedule.lastError ?? "")" : "-" }
        return "\(id) \(schedule.lastTaskState ?? "deleted")" + (schedule.lastOutcome == "skipped" ? " (last occurrence skipped)" : "")
    }
}
