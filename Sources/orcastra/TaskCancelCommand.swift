import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraStateMachines
import OrcastraStore

extension TaskCommand {
    /// `orcastra task cancel ID`, or every task that matches filters.
    struct Cancel: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a task, or every unfinished task that matches filters.",
            discussion: """
                Steps not yet running are cancelled at once; running steps when their worker next \
                reports, whose outcome is then ignored. Cancelling a cancelled task changes nothing \
                and succeeds; a task that already completed cannot be cancelled (exit code 75).

                With filters instead of an id, the unfinished tasks that match (pending, in_progress, \
                waiting_for_retry, error — or the --state given) are counted first: --dry-run lists \
                them, --yes cancels them; without either nothing happens (exit code 64).

                Examples:
                  orcastra task cancel 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --reason "customer withdrew the order"
                  orcastra task cancel --template shop/checkout --state error --older-than 24h --dry-run
                  orcastra task cancel --template shop/checkout --state error --older-than 24h --yes
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID); or give filters instead.", valueName: "task-id"))
        var id: String?

        @Option(help: ArgumentHelp("Only tasks in this state (repeatable): pending, in_progress, waiting_for_retry, error.", valueName: "state"))
        var state: [String] = []

        @Option(help: ArgumentHelp("Only tasks of this template: NAMESPACE/NAME (any version).", valueName: "template"))
        var template: String?

        @Option(help: ArgumentHelp("Only tasks created longer ago than this, e.g. 30m, 24h.", valueName: "duration"),
                transform: DurationArgument.parse)
        var olderThan: DurationArgument?

        @Flag(help: "With filters: list what would be cancelled, change nothing.")
        var dryRun = false

        @Flag(help: "With filters: cancel every task that matches.")
        var yes = false

        @Option(help: "Why, for the tasks' logs.")
        var reason: String = "cancelled by an operator"

        @Flag(help: "Print JSON for scripts: {\"task_id\", \"state\"}; with filters {\"matched\", \"dry_run\", \"cancelled\": [...], \"unchanged\": [{\"task_id\", \"state\"}]}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        var hasFilters: Bool { !state.isEmpty || template != nil || olderThan != nil }

        func validate() throws {
            if id != nil && (hasFilters || dryRun || yes) {
                throw ValidationError("Give a task id or filters (--state, --template, --older-than), not both.")
            }
            if id == nil && !hasFilters {
                throw ValidationError("Give a task id, or filters (--state, --template, --older-than) to cancel many.")
            }
            if dryRun && yes { throw ValidationError("Give --dry-run or --yes, not both.") }
        }

        func run() async throws {
            if let id { try await cancelOne(try CLI.taskID(id)) } else { try await cancelMatching() }
        }

        private func cancelOne(_ id: UUID) async throws {
            let reason = reason
            let state = try await CLI.withService(database) { try await $0.cancel(id, reason: reason) }
            let text = id.uuidString.lowercased()
            if json {
                try CLI.printJSON(TaskStateOutput(taskID: text, state: state.rawValue))
            } else if state == .cancelled {
                print("Task \(text) cancelled.")
            }
            if state != .cancelled {
                throw CLIFailure(message: "Task \(text) is already \(state.rawValue); a finished task cannot be cancelled.",
                                 exitCode: .conflict)
            }
        }

        private func filter() throws -> TaskFilter {
            var filter = TaskFilter(limit: 1000)
            let live: Set<TaskState> = [.pending, .inProgress, .waitingForRetry, .error]
            let states = try CLI.taskStates(state)
            if let finished = states.subtracting(live).first {
                throw CLIFailure(message: "--state \(finished.rawValue): a \(finished.rawValue) task cannot be cancelled. Use pending, in_progress, waiting_for_retry or error.",
                                 exitCode: .invalidInput)
            }
            filter.states = states.isEmpty ? live : states
            if let template {
                let parts = template.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts[1].contains("@") else {
                    throw CLIFailure(message: "--template '\(template)' is not NAMESPACE/NAME (a version is not taken: every version matches).",
                                     exitCode: .invalidInput)
                }
                filter.namespace = parts[0]
                filter.templateName = parts[1]
            }
            if let olderThan {
                filter.createdBefore = Date().addingTimeInterval(-Double(olderThan.duration.components.seconds))
            }
            return filter
        }

        private func cancelMatching() async throws {
            let filter = try filter()
            let (dryRun, yes, reason, json) = (dryRun, yes, reason, json)
            // Over HTTP too (--api-url): the same listing pages, then one cancel per task.
            try await CLI.withService(database) { client in
                var matched: [TaskSummary] = []
                var page = filter
                while true {
                    let rows = try await client.tasks(filter: page)
                    matched += rows
                    guard rows.count == page.limit, let last = rows.last else { break }
                    page.after = last.cursor
                }
                if matched.isEmpty, let namespace = filter.namespace, let name = filter.templateName {
                    // No task may mean a typo: an unknown template is named, with the closest ones.
                    try await client.checkTemplateExists(TemplateReference(namespace: namespace, name: name))
                }
                let count = CLI.count(matched.count, "unfinished task matches", "unfinished tasks match")
                if dryRun || !yes {
                    if json {
                        try CLI.printJSON(BulkCancelOutput(matched: matched.count, dryRun: true,
                                                           tasks: matched.map { $0.id.uuidString.lowercased() }))
                    } else {
                        print("\(count); nothing was changed\(dryRun ? " (--dry-run)" : "").")
                        for task in matched.prefix(50) {
                            print("  \(task.id.uuidString.lowercased())  \(task.template)  \(task.state.rawValue)  \(CLI.time(task.createdAt))")
                        }
                        if matched.count > 50 { print("  … and \(matched.count - 50) more") }
                    }
                    if !dryRun && !matched.isEmpty {
                        throw CLIFailure(message: "\(count). Add --yes to cancel them, or --dry-run to only list them.", exitCode: .usage)
                    }
                    return
                }
                if !json { CLI.writeError("\(count); cancelling…\n") }
                var cancelled: [String] = [], unchanged: [TaskStateOutput] = []
                for task in matched {
                    let id = task.id.uuidString.lowercased()
                    do {
                        let state = try await client.cancel(task.id, reason: reason)
                        if state == .cancelled { cancelled.append(id) } else { unchanged.append(TaskStateOutput(taskID: id, state: state.rawValue)) }
                    } catch let error where TaskServiceErrors.isUnknownTask(error) {
                        unchanged.append(TaskStateOutput(taskID: id, state: "deleted"))
                    }
                }
                if json {
                    try CLI.printJSON(BulkCancelOutput(matched: matched.count, dryRun: false, cancelled: cancelled, unchanged: unchanged))
                } else {
                    print("Cancelled \(CLI.count(cancelled.count, "task", "tasks"))"
                          + (unchanged.isEmpty ? "." : "; \(unchanged.count) had finished meanwhile and kept their state."))
                }
            }
        }
    }
}

/// What `task cancel --json` prints with filters (docs/cli.md).
struct BulkCancelOutput: Encodable {
    var matched: Int
    var dryRun: Bool
    /// With --dry-run (or without --yes): the ids that match.
    var tasks: [String]?
    var cancelled: [String]?
    var unchanged: [TaskStateOutput]?

    enum CodingKeys: String, CodingKey {
        case matched, tasks, cancelled, unchanged
        case dryRun = "dry_run"
    }
}
