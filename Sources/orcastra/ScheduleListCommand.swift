import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraTemplates

/// `orcastra schedule list`: every schedule with its next and last firing.
struct ScheduleListCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List schedules: template, cron, next and last firing, the last task's state.",
        discussion: """
            Examples:
              orcastra schedule list
              orcastra schedule list --namespace billing --json
            """
    )

    @Option(help: ArgumentHelp("Only schedules of this namespace.", valueName: "namespace"))
    var namespace: String?

    @Flag(help: "Print JSON for scripts: an array of schedules.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        try CLI.validateNamespaceOption(namespace)
    }

    func run() async throws {
        let namespace = namespace
        let schedules = try await CLI.withService(database) { try await $0.schedules(namespace: namespace) }
        if json {
            try CLI.printJSON(schedules)
        } else if schedules.isEmpty {
            print(namespace.map { "No schedules in namespace \($0)." } ?? "No schedules. Create one with `orcastra schedule create` or `orcastra schedule apply FILE`.")
        } else {
            print(ScheduleText.table(schedules))
        }
    }
}

/// `orcastra schedule show NAME`.
struct ScheduleShowCommand: AsyncParsableCommand, WorksOverHTTP {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one schedule: its definition, next occurrence, last firing and last task.",
        discussion: """
            NAME is NAMESPACE/NAME, or the name alone when one namespace has it.

            Examples:
              orcastra schedule show reports/nightly
              orcastra schedule show nightly --json
            """
    )

    @OptionGroup var target: ScheduleTarget

    func run() async throws {
        try await target.run({ try await $0.schedule($1) }, text: { ScheduleText.detail($0) })
    }
}
