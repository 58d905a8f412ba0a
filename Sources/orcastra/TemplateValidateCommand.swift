import ArgumentParser
import Foundation
import OrcastraTemplates

extension TemplateCommand {
    /// `orcastra template validate PATH...`: every problem of every file, without a database.
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check template files without a database.",
            discussion: """
                Reports every error of every file at once, each with file:line:column and the path \
                of the key (e.g. steps[3].depends_on[1]), and a template declared by two files.

                Exit codes: 0 all valid; 65 a file is invalid; 66 a path does not exist (the others \
                are still checked).

                Examples:
                  orcastra template validate Templates/
                  orcastra template validate Templates/etl.yaml billing/*.yaml
                  orcastra template validate Templates/ --json | jq '.[] | select(.valid | not)'
                """
        )

        @Argument(help: ArgumentHelp("Template files, or folders of *.yaml files.", valueName: "path"))
        var paths: [String]

        @Flag(help: "Print a JSON array with one object per file, valid or not (see docs/cli.md).")
        var json = false

        func run() async throws {
            let check = TemplateLoader.check(paths: paths)
            if json {
                try CLI.printJSON(check.files.map { TemplateFileJSON(check: $0) })
            } else {
                for file in check.files where file.isValid {
                    guard let template = file.template else { continue }
                    print("ok  \(file.file): \(template.reference) (\(template.steps.count) steps)")
                }
            }
            if let failure = check.failure { throw failure }
        }
    }
}

extension TemplateCheck {
    /// Exit 66 when a path does not exist, else 65 when a file is invalid (the message lists
    /// every issue of every file); nil when everything is valid.
    var failure: CLIFailure? {
        guard !issues.isEmpty else { return nil }
        return CLIFailure(message: "\(TemplateValidationError(issues: issues))", exitCode: missingPaths.isEmpty ? .invalidInput : .notFound)
    }
}
