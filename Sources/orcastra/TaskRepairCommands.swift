import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraStateMachines

extension TaskCommand {
    /// `orcastra task rerun ID`: the same work again, as a new task.
    struct Rerun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a new task with the same template version, context and priority as another.",
            discussion: """
                Prints the new task's id. The original is left as it is; its idempotency key and start \
                time are not copied. Works on a task in any state.

                Examples:
                  orcastra task rerun 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f
                  NEW=$(orcastra task rerun 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f) && orcastra task wait "$NEW"
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Flag(help: "Print JSON for scripts: {\"task_id\": \"…\", \"rerun_of\": \"…\", \"template\": \"ns/name@version\"}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.taskID(id)
            let creation = try await CLI.withClient(database) { try await $0.rerun(id) }
            let new = creation.taskID.uuidString.lowercased()
            if json {
                try CLI.printJSON(RerunOutput(taskID: new, rerunOf: id.uuidString.lowercased(), template: creation.templateReference))
            } else {
                print(new)
            }
        }
    }

    /// `orcastra task resolve ID`: declare a task done by hand.
    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare a task done by hand (resolved_manually): nothing of it runs again.",
            discussion: """
                Its unfinished steps are resolved too (their result is JSON null), queued ones \
                cancelled. Refused while a step runs (wait, or cancel the task) and for a scheduled \
                task (cancel it): exit code 75. A task that already finished keeps its state: exit \
                code 75 too, except for one already resolved (0).

                Examples:
                  orcastra task resolve 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --reason "refund done by hand"
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Option(help: "Why, for the task's log.")
        var reason: String = "resolved by an operator"

        @Flag(help: "Print JSON for scripts: {\"task_id\": \"…\", \"state\": \"resolved_manually\"}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.taskID(id)
            let reason = reason
            let state = try await CLI.withClient(database) { try await $0.resolveTask(id, reason: reason) }
            let text = id.uuidString.lowercased()
            if json {
                try CLI.printJSON(TaskStateOutput(taskID: text, state: state.rawValue))
            } else if state == .resolvedManually {
                print("Task \(text) resolved by hand.")
            }
            if state != .resolvedManually {
                throw CLIFailure(message: "Task \(text) is already \(state.rawValue); a finished task cannot be resolved.", exitCode: .conflict)
            }
        }
    }
}

/// What `task rerun --json` prints (docs/cli.md).
struct RerunOutput: Encodable {
    var taskID: String
    var rerunOf: String
    var template: String

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", rerunOf = "rerun_of", template
    }
}

/// What `task cancel --json` and `task resolve --json` print for one task (docs/cli.md).
struct TaskStateOutput: Encodable {
    var taskID: String
    var state: String

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", state
    }
}
