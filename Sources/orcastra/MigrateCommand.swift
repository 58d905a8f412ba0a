import ArgumentParser
import Foundation
import OrcastraMigrations
import OrcastraPostgres
import OrcastraCommandLine

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply Orcastra's pending SQL migrations.",
        discussion: """
            Each migration runs in its own transaction and is recorded with a checksum in \
            orcastra.schema_migrations. Several runs at once are safe (they take an advisory lock). \
            An applied file that was edited is refused.

            Examples:
              orcastra migrate
              orcastra migrate --dry-run
              orcastra migrate status
              orcastra migrate --database-url postgresql://app@db.internal/app
            """,
        subcommands: [Status.self]
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print what would be applied, and change nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("A folder of migrations to use instead of the bundled ones.", valueName: "dir"))
    var migrations: String?

    func run() async throws {
        let migrator = Migrator(migrations: try loadMigrations(migrations))
        let connection = try await PostgresConnection.connect(try await database.conninfo())
        defer { Task { await connection.close() } }
        let started = ContinuousClock.now
        let dryRun = self.dryRun
        let report = try await migrator.migrate(on: connection, dryRun: dryRun) { migration in
            print("\(dryRun ? "Would apply" : "Applying") \(migration.file)")
        }
        if dryRun {
            print(report.applied.isEmpty ? "Nothing to apply: the database is up to date." : "\(report.applied.count) migration(s) would be applied.")
            for migration in report.applied { print("  \(migration.file)") }
        } else if report.applied.isEmpty {
            print("Nothing to apply: the database is up to date (\(report.alreadyApplied) migration(s) applied).")
        } else {
            print("Applied \(report.applied.count) migration(s) in \(started.duration(to: .now).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))).")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied and pending migrations.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: ArgumentHelp("A folder of migrations to use instead of the bundled ones.", valueName: "dir"))
        var migrations: String?

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let migrator = Migrator(migrations: try loadMigrations(migrations))
            let connection = try await PostgresConnection.connect(try await database.conninfo())
            defer { Task { await connection.close() } }
            let entries = try await migrator.status(on: connection)
            if json {
                let objects = entries.map { entry -> [String: String] in
                    var object = ["version": String(entry.version), "file": entry.file, "state": entry.state.rawValue]
                    if let at = entry.appliedAt { object["applied_at"] = at.formatted(.iso8601) }
                    return object
                }
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for entry in entries {
                let when = entry.appliedAt.map { "applied \($0.formatted(.iso8601))" } ?? "pending"
                print("\(entry.file.padding(toLength: 40, withPad: " ", startingAt: 0)) \(when)")
            }
            let pending = entries.filter { $0.state == .pending }.count
            print(pending == 0 ? "Up to date." : "\(pending) pending: run `orcastra migrate`.")
        }
    }
}

func loadMigrations(_ directory: String?) throws -> [Migration] {
    if let directory { return try Migration.load(from: URL(fileURLWithPath: directory)) }
    return try Migration.bundled()
}
