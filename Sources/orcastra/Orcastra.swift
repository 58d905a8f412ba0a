import ArgumentParser
import Foundation
import Logging
import OrcastraCommandLine

/// `orcastra`: the command-line tool for people and scripts.
@main
struct Orcastra: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orcastra",
        abstract: "A PostgreSQL-native DAG workflow orchestrator.",
        discussion: """
            With no database configured (--database-url, ORCASTRA_DATABASE_URL, DATABASE_URL or \
            libpq's PG* variables), commands use a local development PostgreSQL that Orcastra \
            starts itself in ./.orcastra/postgres (see `orcastra dev-db`).

            Where only the HTTP API is reachable: `orcastra --api-url URL --api-token TOKEN COMMAND …` \
            (or ORCASTRA_API_URL and ORCASTRA_API_TOKEN) runs submit, task show|list|wait|events|cancel, \
            step retry|resolve and template list|show|register through the API, with the same \
            output and exit codes; other commands say they need the database (docs/cli.md).
            """,
        version: OrcastraVersion.current,
        subcommands: [DemoCommand.self, MigrateCommand.self, OrchestratorSubcommand.self, WorkerCommandGroup.self, TemplateCommand.self, SubmitCommand.self, TaskCommand.self, StepCommand.self,
                      ScheduleCommand.self, PruneCommand.self, RolesCommand.self, TokenCommand.self, CheckCommand.self, ConfigCommand.self, DevDBCommand.self]
    )

    /// Runs the command, printing errors as one clear sentence and exiting with a documented code.
    static func main() async {
        // Quiet by default: people read the command's own output; `orcastra worker` raises it.
        Lifecycle.bootstrapLogging(level: nil, fallback: .warning)
        do {
            // --api-url/--api-token come off first; then flag > ORCASTRA_* > orcastra.yaml > default
            // (docs/configuration.md).
            let arguments = try APIAccess.split(Array(CommandLine.arguments.dropFirst())).get().arguments
            var command = OrcastraLaunch.parseAsRoot(Self.self, arguments: arguments)
            try APIAccess.check(command, words: Array(arguments.prefix { !$0.hasPrefix("-") }))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("error: \(failure.message)\n".utf8))
            Foundation.exit(failure.exitCode.rawValue)
        } catch {
            if let exit = ExitCodes.userFacing(error) {
                FileHandle.standardError.write(Data("error: \(exit.message)\n".utf8))
                Foundation.exit(exit.code.rawValue)
            }
            exit(withError: error)
        }
    }
}
