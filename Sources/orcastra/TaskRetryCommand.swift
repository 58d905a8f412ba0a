import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine

extension TaskCommand {
    /// `orcastra task retry ID`: every failed step of a task back in line at once.
    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run every failed step of a task again, with fresh retry budgets.",
            discussion: """
                Does for all of the task's steps in error what `orcastra step retry` does for one, in \
                one transaction; the task resumes (error → in_progress). A task that is cancelled or \
                finished, or has no failed step, is refused with exit code 75.

                Examples:
                  orcastra task retry 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f
                  orcastra task retry 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --json
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Option(help: "Why, for the task's log.")
        var reason: String = "retried by an operator"

        @Flag(help: "Print JSON for scripts: {\"task_id\": \"…\", \"retried_steps\": 3}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.taskID(id)
            let reason = reason
            let count = try await CLI.withClient(database) { try await $0.retryTask(id, reason: reason) }
            let text = id.uuidString.lowercased()
            if json {
                try CLI.printJSON(TaskRetryOutput(taskID: text, retriedSteps: count))
            } else {
                print("Task \(text): \(CLI.count(count, "failed step", "failed steps")) back in line; workers will pick them up.")
            }
        }
    }
}

/// What `task retry --json` prints (docs/cli.md).
struct TaskRetryOutput: Encodable {
    var taskID: String
    var retriedSteps: Int

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", retriedSteps = "retried_steps"
    }
}
