import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine

/// `orcastra schedule pause NAME`.
struct SchedulePauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Pause a schedule: nothing fires until it is resumed (missed occurrences are not caught up).")

    @Argument(help: ArgumentHelp("The schedule: NAMESPACE/NAME or NAME.", valueName: "name"))
    var name: String
    @Flag(help: "Print the schedule as JSON.")
    var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let name = ScheduleName(name)
        let schedule = try await CLI.withClient(database) { try await $0.pauseSchedule(name) }
        if json { try CLI.printJSON(schedule) } else { print("Paused schedule \(schedule.qualifiedName).") }
    }
}

/// `orcastra schedule resume NAME`.
struct ScheduleResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a paused schedule from now: its next occurrence is the first one after now.")

    @Argument(help: ArgumentHelp("The schedule: NAMESPACE/NAME or NAME.", valueName: "name"))
    var name: String
    @Flag(help: "Print the schedule as JSON.")
    var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let name = ScheduleName(name)
        let schedule = try await CLI.withClient(database) { try await $0.resumeSchedule(name) }
        if json { try CLI.printJSON(schedule) } else { print("Resumed schedule \(schedule.qualifiedName). \(ScheduleText.nextLine(schedule))") }
    }
}

/// `orcastra schedule delete NAME`.
struct ScheduleDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a schedule. The tasks it started stay, and keep running.")

    @Argument(help: ArgumentHelp("The schedule: NAMESPACE/NAME or NAME.", valueName: "name"))
    var name: String
    @Flag(help: "Print the deleted schedule as JSON.")
    var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let name = ScheduleName(name)
        let schedule = try await CLI.withClient(database) { try await $0.deleteSchedule(name) }
        if json { try CLI.printJSON(schedule) } else { print("Deleted schedule \(schedule.qualifiedName).") }
    }
}

/// `orcastra schedule trigger NAME`: one occurrence now.
struct ScheduleTriggerCommand: AsyncParsableCommand {
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
        let (schedule, run) = try await CLI.withClient(database) { client in
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
