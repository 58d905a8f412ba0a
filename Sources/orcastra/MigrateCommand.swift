import ArgumentParser
import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraCommandLine

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply Orcastra's pending SQL migrations and changed repeatable SQL files.",
        discussion: """
            Numbered migrations (Migrations/NNNN_name.sql) run once each, in order, and are \
            immutable: an applied file that was edited is refused. Then the repeatable files \
            (Migrations/functions/*.sql: functions, triggers, views) run in file-name order, each \
            again whenever its checksum changed. Every file runs whole and is recorded with its \
            checksum (orcastra.schema_migrations, orcastra.schema_repeatables): each numbered one \
            in its own transaction, the changed repeatable ones all in one. \
            Several runs at once are safe (they take an advisory lock).

            Exit codes: 0 applied (or nothing to apply); 65 an applied migration was edited, or a \
            file is misnamed or not UTF-8; 66 the --migrations folder does not exist, is a file or \
            holds no .sql files; 69 the database cannot be reached; 1 a file failed (rolled back).

            Examples:
              orcastra migrate
              orcastra migrate --dry-run
              orcastra migrate status
              orcastra migrate --migrations ./Migrations
              orcastra migrate --database-url postgresql://app@db.internal/app
            """,
        subcommands: [Status.self]
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print what would be applied, and change nothing.")
    var dryRun = false

    @OptionGroup var source: MigrationsOptions

    func run() async throws {
        let migrator = try source.migrator()
        let connection = try await PostgresConnection.connect(try await database.conninfo())
        defer { Task { await connection.close() } }
        let started = ContinuousClock.now
        let dryRun = self.dryRun
        let report = try await migrator.migrate(on: connection, dryRun: dryRun) { step in
            var line = "\(dryRun ? "Would apply" : "Applying") \(step.file)"
            if case .repeatable(_, let state) = step { line += " (\(state.rawValue))" }
            print(line)
        }
        let migrationCount = report.applied.count
        let repeatableCount = report.repeatablesApplied.count
        let counts = "\(migrationCount) migration(s) and \(repeatableCount) repeatable file(s)"
        if migrationCount + repeatableCount == 0 {
            print("Nothing to apply: the database is up to date (\(report.alreadyApplied) migration(s) applied, \(report.repeatablesUnchanged) repeatable file(s) unchanged).")
        } else if dryRun {
            print("\(counts) would be applied.")
        } else {
            print("Applied \(counts) in \(started.duration(to: .now).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))).")
        }
    }
}
