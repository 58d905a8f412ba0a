import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine
import OrcastraTemplates

/// `orcastra step …`: repair a task by acting on one of its steps.
struct StepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Show a step's attempts, or retry or resolve it by hand.",
        discussion: "Step ids are in the first column of `orcastra task show TASK_ID`.",
        subcommands: [Show.self, Retry.self, Resolve.self]
    )

    struct Retry: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Run a failed step again, with a fresh retry budget.",
            discussion: """
                Only a step in error can be retried. It goes back in line at once and its task \
                resumes (error → in_progress).

                Examples:
                  orcastra step retry 1042
                """
        )

        @Argument(help: ArgumentHelp("The step's id (a number).", valueName: "step-id"))
        var id: String

        @Option(help: "Why, for the task's log.")
        var reason: String = "retried by an operator"

        @Flag(help: "Print JSON for scripts: {\"step_id\": ..., \"state\": ...}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = try CLI.stepID(id)
            let reason = reason
            let state = try await CLI.withService(database) { try await $0.retryStep(id, reason: reason) }
            if json {
                try CLI.printJSON(StepActionOutput(stepID: id, state: state.rawValue))
            } else {
                print("Step \(id) is \(state.rawValue) again; a worker will pick it up.")
            }
        }
    }

    struct Resolve: AsyncParsableCommand, WorksOverHTTP {
        static let configuration = CommandConfiguration(
            abstract: "Supply a step's result by hand; its children then run as if it had completed.",
            discussion: """
                A step that is pending, waiting for a retry or in error can be resolved; a queued, \
                running or finished one cannot.

                Examples:
                  orcastra step resolve 1042 --result '{"charged": true}'
                  orcastra step resolve 1042 --result-file result.json --reason "charged by hand"
                """
        )

        @Argument(help: ArgumentHelp("The step's id (a number).", valueName: "step-id"))
        var id: String

        @Option(help: ArgumentHelp("The step's result as JSON, or - to read it from standard input.", valueName: "json"))
        var result: String?

        @Option(help: ArgumentHelp("Read the result from this JSON file.", valueName: "file"))
        var resultFile: String?

        @Option(help: "Why, for the task's log.")
        var reason: String = "resolved by an operator"

        @Flag(help: "Print JSON for scripts: {\"step_id\": ..., \"state\": ...}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if (result == nil) == (resultFile == nil) {
                throw ValidationError("Give the result once: --result JSON or --result-file FILE.")
            }
        }

        func run() async throws {
            let id = try CLI.stepID(id)
            let value = try readResult()
            let reason = reason
            let state = try await CLI.withService(database) { try await $0.resolveStep(id, result: value, reason: reason) }
            if json {
                try CLI.printJSON(StepActionOutput(stepID: id, state: state.rawValue))
            } else {
                print("Step \(id) is \(state.rawValue); its children can run now.")
            }
        }

        private func readResult() throws -> JSONValue {
            if let resultFile {
                guard let data = FileManager.default.contents(atPath: resultFile) else {
                    throw CLIFailure(message: "Cannot read the result file \(resultFile): \(CLI.whyUnreadable(resultFile)).",
                                     exitCode: .notFound)
                }
                return try JSONInput.parse(String(decoding: data, as: UTF8.self), source: "The result in \(resultFile)")
            }
            if result == "-" {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                return try JSONInput.parse(String(decoding: data, as: UTF8.self), source: "The result on standard input")
            }
            return try JSONInput.parse(result ?? "null", source: "The result given with --result")
        }
    }
}

/// What `step retry --json` and `step resolve --json` print (docs/cli.md).
struct StepActionOutput: Encodable {
    var stepID: Int64
    var state: String

    enum CodingKeys: String, CodingKey {
        case stepID = "step_id", state
    }
}
