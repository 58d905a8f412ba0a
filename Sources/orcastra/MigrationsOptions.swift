import ArgumentParser
import Foundation
import OrcastraMigrations

/// `--migrations DIR`, shared by `migrate` and `migrate status`.
///
/// One option group for both commands on purpose: the parent command parses the whole command
/// line first and keeps `--migrations` wherever it appears, so a second, separate option on
/// `status` was never set (status silently read the bundled files). A subcommand's option group
/// of the same type receives the parent's value.
struct MigrationsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A folder of migrations (with its functions/ subfolder) to use instead of the bundled ones.", valueName: "dir"))
    var migrations: String?

    /// The files of `--migrations`, or the bundled ones. A wrong folder is one sentence naming it
    /// and the option.
    func migrator() throws -> Migrator {
        guard let migrations else { return try Migrator.bundled() }
        do {
            return try Migrator.load(from: URL(fileURLWithPath: migrations))
        } catch let error as MigrationError where error.concernsTheFolder {
            throw CLIFailure(message: "--migrations \(error)", exitCode: .notFound)
        }
    }

    /// `orcastra migrate`, with `--migrations` when it was given, for "run this" hints.
    var migrateCommand: String {
        guard let migrations else { return "orcastra migrate" }
        return "orcastra migrate --migrations \(migrations.contains(" ") ? "'\(migrations)'" : migrations)"
    }
}
