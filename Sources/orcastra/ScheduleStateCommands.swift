import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine

/// The schedule a command acts on, how it prints, and where the database is.
struct ScheduleTarget: ParsableArguments {
    @Argument(help: ArgumentHelp("The schedule: NAMESPACE/NAME or NAME.", valueName: "name"))
    var name: String
    @Flag(help: "Print the schedule as JSON.")
    var json = false
    @OptionGroup var database: DatabaseOptions

    /// Runs `action` on the schedule and prints what it returns: as JSON, or as `text` says.
    func run(_ action: @escaping @Sendable (any TaskService, ScheduleName) async throws -> ScheduleInfo,
             text: (ScheduleInfo) -> String) async throws {
        let name = ScheduleName(name)
        let schedule = try await CLI.withService(database) { try await action($0, name) }
        if json { try CLI.printJSON(schedule) } else { print(text(schedule)) }
    }
}

/// `orcastra schedule pause NAME`.
struct SchedulePauseCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Pause a schedule: nothing fires until it is resumed (missed occurrences are not caught up).")

    @OptionGroup var target: ScheduleTarget

    func run() async throws {
        try await target.run({ try await $0.pauseSchedule($1) }, text: { "Paused schedule \($0.qualifiedName)." })
    }
}

/// `orcastra schedule resume NAME`.
struct ScheduleResumeCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a paused schedule from now: its next occurrence is the first one after now.")

    @OptionGroup var target: ScheduleTarget

    func run() async throws {
        try await target.run({ try await $0.resumeSchedule($1) },
                             text: { "Resumed schedule \($0.qualifiedName). \(ScheduleText.nextLine($0))" })
    }
}

/// `orcastra schedule delete NAME`.
struct ScheduleDeleteCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a schedule. The tasks it started stay, and keep running.")

    @OptionGroup var target: ScheduleTarget

    func run() async throws {
        try await target.run({ try await $0.deleteSchedule($1) }, text: { "Deleted schedule \($0.qualifiedName)." })
    }
}

/// `orcastra schedule trigger NAME`: one occurrence now.
struct ScheduleTriggerCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract: "Run a schedule once now, outside its cron expression (also when paused, whatever its overlap policy).",
        discussion: """
            The task's scheduled_for is now; the schedule's next occurrence does not move.

            Examples:
              orcastra schedule trigger reports/nightly
              orcastra schedule trigger nightly --json | jq -r .task_id
            """)

    @Argument(help: ArgumentHelp("The schedule: NAMESPACE/NAME or NAME.", valueName: "name"))
    var name: String
    @Flag(help: "Print {\"task_id\": …, \"schedule\": …, \"scheduled_for\": …}.")
    var json = false
    @OptionGroup var database: DatabaseOptions

    struct Output: Encodable {
        var taskID: String
        var schedule: String
        var scheduledFor: Date
        enum CodingKeys: String, CodingKey { case taskID = "task_id", schedule, scheduledFor = "scheduled_for" }
    }

    func run() async throws {
        let name = ScheduleName(name)
        let (schedule, run) = try await CLI.withService(database) { client in
            let run = try await client.triggerSchedule(name)
            return (try await client.schedule(name), run)
        }
        let id = run.task.uuidString.lowercased()
        if json {
            try CLI.printJSON(Output(taskID: id, schedule: schedule.qualifiedName, scheduledFor: run.scheduledFor))
        } else {
            print("Started task \(id) from schedule \(schedule.qualifiedName) (\(schedule.template)). Watch it with `orcastra task wait \(id)`.")
        }
    }
}
