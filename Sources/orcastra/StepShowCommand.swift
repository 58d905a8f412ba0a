import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraTemplates

extension StepCommand {
    /// `orcastra step show ID`: one step and every attempt it made.
    struct Show: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Show a step: every attempt (worker, times, outcome, error) and its state changes.",
            discussion: """
                Each attempt keeps its own error — for a command, its exit status and the end of its \
                stderr — also after a later attempt succeeded.

                Examples:
                  orcastra step show 1042
                  orcastra step show 1042 --json | jq '.attempts[] | select(.error) | .error'
                """
        )

        @Argument(help: ArgumentHelp("The step's id (a number).", valueName: "step-id"))
        var id: String

        @Flag(help: "Print the step, its attempts and its transitions as JSON.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.stepID(id)
            let history = try await CLI.withService(database) { try await $0.step(id) }
            if json {
                try CLI.printJSON(history)
            } else {
                print(Self.render(history))
            }
        }

        static func render(_ history: StepHistory) -> String {
            let step = history.step
            var lines = [
                "Step      \(step.id) \(step.name)",
                "Task      \(history.taskID.uuidString.lowercased()) (\(history.template))",
                "Namespace \(step.namespace)",
                "State     \(step.state.rawValue) (\(step.stateReason))",
                "Attempts  \(step.attempts) of \(step.maxAttempts)",
            ]
            if !step.dependsOn.isEmpty { lines.append("Parents   \(step.dependsOn.joined(separator: ", "))") }
            if let result = step.result { lines.append("Result    \(CLI.abbreviate(result.jsonText, to: 200))") }
            lines.append("")
            if history.attempts.isEmpty {
                lines.append("No attempt yet.")
            } else {
                let rows = history.attempts.map { attempt in
                    [String(attempt.number), attempt.worker ?? "-", CLI.time(attempt.startedAt), CLI.duration(attempt.durationSeconds),
                     attempt.outcome?.rawValue ?? "running", CLI.abbreviate(CLI.errorSummary(attempt.error), to: 80)]
                }
                lines.append(CLI.table(["ATTEMPT", "WORKER", "STARTED", "DURATION", "OUTCOME", "ERROR"], rows))
                for attempt in history.attempts {
                    guard let error = attempt.error, error.contains("\n") || error.count > 80 else { continue }
                    lines.append("")
                    lines.append("Attempt \(attempt.number) error:")
                    lines.append(contentsOf: error.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 })
                }
            }
            return lines.joined(separator: "\n")
        }
    }
}
