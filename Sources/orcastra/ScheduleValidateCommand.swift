import ArgumentParser
import Foundation
import OrcastraSchedules
import OrcastraTemplates

/// `orcastra schedule validate FILE...`: every problem of every schedule file, without a database.
struct ScheduleValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check schedule files without a database.",
        discussion: """
            Reports every error of every file at once, each with file:line:column and the path of \
            the key (e.g. schedules[2].cron). Whether the templates exist is not checked (that \
            needs the database).

            Exit codes: 0 all valid; 65 a file is invalid; 66 a file does not exist (the others \
            are still checked).

            Examples:
              orcastra schedule validate schedules.yaml
              orcastra schedule validate schedules/*.yaml
            """
    )

    @Argument(help: ArgumentHelp("Schedule files (YAML).", valueName: "file"))
    var files: [String]

    func run() async throws {
        var issues: [TemplateIssue] = []
        var missing = false
        for file in files {
            do {
                let schedules = try ScheduleFileReader.read(path: file)
                print("\(file): \(CLI.count(schedules.count, "schedule", "schedules")) valid")
            } catch {
                issues += error.issues
                missing = missing || error.isMissingFile
            }
        }
        guard issues.isEmpty else {
            throw CLIFailure(message: "\(TemplateValidationError(issues: issues))", exitCode: missing ? .notFound : .invalidInput)
        }
    }
}
