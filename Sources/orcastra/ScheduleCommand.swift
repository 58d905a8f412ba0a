import ArgumentParser

/// `orcastra schedule …`: each subcommand in a file of its own (Schedule*Command.swift).
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Recurring tasks from cron expressions.",
        discussion: "The cron syntax, time zones and daylight saving, and the file format are described in docs/schedules.md.",
        subcommands: [ScheduleCreateCommand.self, ScheduleListCommand.self, ScheduleShowCommand.self, SchedulePauseCommand.self,
                      ScheduleResumeCommand.self, ScheduleDeleteCommand.self, ScheduleTriggerCommand.self, ScheduleApplyCommand.self,
                      ScheduleValidateCommand.self, ScheduleNextCommand.self]
    )
}
