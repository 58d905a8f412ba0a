import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraStateMachines

/// `orcastra task …`: inspect, watch and cancel tasks.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Inspect, watch and cancel tasks.",
        subcommands: [Show.self, List.self, Wait.self, Retry.self, Rerun.self, Resolve.self, Cancel.self, Events.self]
    )

    struct Show: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Show a task and its steps.",
            discussion: """
                Prints the task's state and times, then its DAG as a table: each step's id (for \
                `orcastra step retry|resolve`), state, attempts, duration, parents and last error.

                Examples:
                  orcastra task show 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f
                  orcastra task show 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --json | jq '.steps[] | select(.state == "error")'
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Flag(help: "Print JSON for scripts, with the context and every step's result.")
        var json = false

        @Flag(help: "After the table, every attempt of the steps that ran more than once or failed: worker, start, duration, outcome, error (`step show` has one step's whole).")
        var attempts = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if json && attempts { throw ValidationError("--attempts is for people; with --json use `orcastra step show STEP_ID --json` for a step's attempts.") }
        }

        func run() async throws {
            let id = try CLI.taskID(id)
            let (json, withAttempts) = (json, attempts)
            let (detail, unserved, events) = try await CLI.withService(database) { client in
                let detail = try await client.task(id)
                // A hint, never a reason for `task show` to fail (an older schema has no registry).
                let unserved = json ? [] : ((try? await client.unservedNamespaces(in: detail)) ?? [])
                let events = withAttempts ? try await client.transitions(id) : []
                return (detail, unserved, events)
            }
            if json {
                try CLI.printJSON(detail)
            } else {
                print(Self.render(detail, unserved: unserved))
                if withAttempts { print(Self.renderAttempts(detail, events: events)) }
            }
        }

        /// The attempts of every step that failed at least once or ran more than once, from the task's log.
        static func renderAttempts(_ detail: TaskDetail, events: [TransitionEvent]) -> String {
            var lines = ["", "Attempts"]
            for step in detail.steps {
                let attempts = StepAttempt.attempts(from: events.filter { $0.stepID == step.id })
                guard attempts.count > 1 || attempts.contains(where: { $0.error != nil }) else { continue }
                lines.append("  \(step.name) (step \(step.id))")
                for attempt in attempts {
                    let error = attempt.error.map { ": " + CLI.abbreviate(CLI.errorSummary($0), to: 100) } ?? ""
                    lines.append("    #\(attempt.number)  \(attempt.worker ?? "-")  \(CLI.time(attempt.startedAt))  \(CLI.duration(attempt.durationSeconds))  \(attempt.outcome?.rawValue ?? "running")\(error)")
                }
            }
            if lines.count == 2 { lines.append("  Every step that ran, ran once and did not fail.") }
            return lines.joined(separator: "\n")
        }

        /// - Parameter unserved: queued steps no live worker can take, by namespace.
        static func render(_ detail: TaskDetail, unserved: [(namespace: String, steps: [StepDetail])] = []) -> String {
            var lines = [
                "Task      \(detail.id.uuidString.lowercased())",
                "Template  \(detail.template)",
                "State     \(detail.state.rawValue) (\(detail.stateReason))",
                "Steps     \(detail.finishedStepCount)/\(detail.steps.count) done",
                "Priority  \(detail.priority)",
                "Created   \(CLI.time(detail.createdAt))",
            ]
            if detail.startedAt == nil { lines.append("Runs at   \(CLI.time(detail.runAt))") }
            if let started = detail.startedAt { lines.append("Started   \(CLI.time(started))") }
            if let finished = detail.finishedAt { lines.append("Finished  \(CLI.time(finished))") }
            if let duration = detail.duration() { lines.append("Duration  \(CLI.duration(duration))") }
            if let key = detail.idempotencyKey { lines.append("Key       \(key)") }
            if let trace = detail.traceID { lines.append("Trace     \(trace)") }
            if let parent = detail.parentTaskID {
                let step = detail.parentStepName.map { "step \($0) (\(detail.parentStepID.map(String.init) ?? "?"))" } ?? "step \(detail.parentStepID.map(String.init) ?? "?")"
                lines.append("Parent    \(step) of task \(parent)")
            }
            if let error = detail.error {
                // One line: each failed step's error summed up; `step show` has them whole.
                let failed = detail.failedSteps.map { "\($0.name): \(CLI.errorSummary($0.lastError) ?? $0.stateReason)" }
                lines.append("Error     \(CLI.abbreviate(failed.isEmpty ? error : failed.joined(separator: "; "), to: 300))")
            }
            lines.append("")
            let rows = detail.steps.map { step in
                [String(step.id), step.name, step.namespace, step.state.rawValue, "\(step.attempts)/\(step.maxAttempts)",
                 CLI.duration(step.durationSeconds ?? step.startedAt.map { Date().timeIntervalSince($0) }),
                 step.dependsOn.isEmpty ? "-" : step.dependsOn.joined(separator: ", "),
                 step.result.map { CLI.abbreviate($0.jsonText, to: 40) } ?? "-",
                 CLI.abbreviate(CLI.errorSummary(step.lastError))]
            }
            lines.append(CLI.table(["ID", "STEP", "NAMESPACE", "STATE", "ATTEMPTS", "DURATION", "DEPENDS ON", "RESULT", "LAST ERROR"], rows))
            let subWorkflows = detail.steps.filter { $0.workflow != nil }
            if !subWorkflows.isEmpty {
                lines.append("")
                lines.append("Sub-workflows")
                for step in subWorkflows {
                    let child = step.childTaskID.map { "task \($0)" } ?? "not started"
                    lines.append("  \(step.name) (step \(step.id))  \(step.workflow ?? "?")  \(child)")
                }
            }
            if !unserved.isEmpty { lines.append("") }
            for (namespace, steps) in unserved {
                lines.append("No live worker serves namespace \(namespace) (\(Self.waiting(steps))): start one with `orcastra-worker --namespace \(namespace)`.")
            }
            let failed = detail.failedSteps
            if !failed.isEmpty {
                lines.append("")
                lines.append("Failed steps can be retried (`orcastra step retry ID`) or resolved by hand (`orcastra step resolve ID --result JSON`).")
            }
            return lines.joined(separator: "\n")
        }

        /// "step charge waits", "steps a, b and c wait", "steps a, b, c and 4 more wait".
        static func waiting(_ steps: [StepDetail]) -> String {
            let names = steps.map(\.name)
            guard names.count > 1 else { return "step \(names.first ?? "?") waits" }
            let listed = names.count > 3 ? names.prefix(3).joined(separator: ", ") + " and \(names.count - 3) more"
                                         : names.dropLast().joined(separator: ", ") + " and " + names.last!
            return "steps \(listed) wait"
        }
    }

    struct List: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "List tasks, newest first.",
            discussion: """
                Filters combine. When more tasks match than --limit, the last line shows the \
                command for the next page (--after CURSOR).

                Examples:
                  orcastra task list
                  orcastra task list --state error --state waiting_for_retry
                  orcastra task list --template shop/checkout --since 2026-05-01 --limit 10
                  orcastra task list --json | jq -r '.tasks[].id'
                """
        )

        @Option(help: ArgumentHelp("Only tasks of templates in this namespace.", valueName: "namespace"))
        var namespace: String?

        @Option(help: ArgumentHelp("Only tasks of this template: NAME, or NAMESPACE/NAME.", valueName: "template"))
        var template: String?

        @Option(help: ArgumentHelp("Only tasks in this state (repeatable): pending, in_progress, waiting_for_retry, error, complete, cancelled, resolved_manually.",
                                   valueName: "state"))
        var state: [String] = []

        @Option(help: ArgumentHelp("Only tasks created at or after this time (RFC 3339, e.g. 2026-05-01T12:00:00Z; without an offset, local time).", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("Only tasks created before this time (RFC 3339; without an offset, local time).", valueName: "time"))
        var until: String?

        @Option(help: "At most this many tasks (1 to 1000).")
        var limit: Int = 50

        @Option(help: ArgumentHelp("Continue after this cursor, printed at the end of the previous page.", valueName: "cursor"))
        var after: String?

        @Flag(help: "Print JSON for scripts: {\"tasks\": [...], \"next_cursor\": ...}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000.") }
        }

        func run() async throws {
            var filter = TaskFilter(limit: limit)
            filter.namespace = namespace
            if let template {
                let parts = template.split(separator: "/", maxSplits: 1).map(String.init)
                if parts.count == 2 {
                    if let namespace, namespace != parts[0] {
                        throw CLIFailure(message: "--namespace \(namespace) and --template \(template) name different namespaces; give one.",
                                         exitCode: .invalidInput)
                    }
                    filter.namespace = parts[0]
                    filter.templateName = parts[1]
                } else {
                    filter.templateName = template
                }
            }
            filter.states = try CLI.taskStates(state)
            if let since { filter.createdAfter = try CLI.timestamp(since, option: "--since") }
            if let until { filter.createdBefore = try CLI.timestamp(until, option: "--until") }
            if let after {
                guard let cursor = TaskCursor(after) else {
                    throw CLIFailure(message: "'\(after)' is not a cursor: pass the value printed after --after at the end of the previous page.",
                                     exitCode: .invalidInput)
                }
                filter.after = cursor
            }
            let finalFilter = filter
            let tasks = try await CLI.withService(database) { try await $0.tasks(filter: finalFilter) }
            let next = tasks.count == limit ? tasks.last?.cursor.description : nil
            if json {
                try CLI.printJSON(Page(tasks: tasks, nextCursor: next))
                return
            }
            if tasks.isEmpty {
                print(after == nil ? "No tasks match." : "No more tasks.")
                return
            }
            let rows = tasks.map { task in
                [task.id.uuidString.lowercased(), task.template, task.state.rawValue,
                 "\(task.finishedStepCount)/\(task.stepCount)", CLI.time(task.createdAt), CLI.abbreviate(task.error, to: 50)]
            }
            print(CLI.table(["ID", "TEMPLATE", "STATE", "STEPS", "CREATED", "ERROR"], rows))
            if let next {
                print("\nMore: orcastra task list --after \(next)  (with the same filters)")
            }
        }

        struct Page: Encodable {
            var tasks: [TaskSummary]
            var nextCursor: String?
            enum CodingKeys: String, CodingKey { case tasks, nextCursor = "next_cursor" }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(tasks, forKey: .tasks)
                try container.encode(nextCursor, forKey: .nextCursor)
            }
        }
    }

    struct Wait: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Watch a task until it completes, fails or is cancelled.",
            discussion: """
                Exits 0 when the task completed (or was resolved by hand), 2 when it failed, 3 when \
                it was cancelled and 4 when --timeout passed first.

                Examples:
                  orcastra task wait 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f
                  orcastra task wait 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --timeout 10m --json
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Option(help: ArgumentHelp("Give up after this long (exit code 4), e.g. 30s or 10m.", valueName: "duration"),
                transform: DurationArgument.parse)
        var timeout: DurationArgument?

        @Flag(help: "Print the finished task as JSON (progress still goes to standard error).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.taskID(id)
            let interrupt = CLI.interruptStopsWatching(id.uuidString.lowercased())
            defer { interrupt.cancel() }
            let renderer = ProgressRenderer(interactive: CLI.standardErrorIsTerminal)
            let timeout = timeout?.duration
            let detail: TaskDetail
            do {
                detail = try await CLI.withService(database) { client in
                    let hint = CLI.hintUnservedNamespaces(client, task: id)
                    defer { hint.cancel() }
                    return try await client.watch(id, timeout: timeout) { renderer.show($0) }
                }
                renderer.finish()
            } catch {
                renderer.finish()
                // The task as it stands, so a script can keep watching it or cancel it.
                if json, let timedOut = error as? ClientError, case .waitTimedOut = timedOut {
                    let current = try await CLI.withService(database) { try await $0.task(id) }
                    try CLI.printJSON(current)
                }
                throw error
            }
            if json { try CLI.printJSON(detail) } else { print(TaskSummaryText.outcome(of: detail)) }
            try TaskSummaryText.exitStatus(of: detail)
        }
    }

    struct Events: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Show a task's log: every state change of the task and its steps, in order.",
            discussion: """
                Examples:
                  orcastra task events 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f
                  orcastra task events 0b6f1c1e-6a2f-4c1e-9d1a-2f3b4c5d6e7f --json
                """
        )

        @Argument(help: ArgumentHelp("The task's id (a UUID).", valueName: "task-id"))
        var id: String

        @Flag(help: "Print JSON for scripts.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.taskID(id)
            let events = try await CLI.withService(database) { try await $0.transitions(id) }
            if json {
                try CLI.printJSON(events)
                return
            }
            let rows = events.map { event in
                [CLI.time(event.time),
                 event.kind == .task ? "task" : "step \(event.stepName ?? "?")",
                 "\(event.from ?? "∅") → \(event.to)",
                 event.attempt.map { $0 == 0 ? "" : "#\($0)" } ?? "",
                 event.reason]
            }
            print(CLI.table(["TIME", "WHAT", "CHANGE", "ATTEMPT", "REASON"], rows))
        }
    }
}
