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
            again whenever its checksum changed. Every file runs whole in its own transaction and \
            is recorded with its checksum (orcastra.schema_migrations, orcastra.schema_repeatables). \
            Several runs at once are safe (they take an advisory lock).

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

    @Option(help: ArgumentHelp("A folder of migrations (with its functions/ subfolder) to use instead of the bundled ones.", valueName: "dir"))
    var migrations: String?

    func run() async throws {
        let migrator = try loadMigrator(migrations)
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

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied and pending migrations, and applied, changed and new repeatable files.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: ArgumentHelp("A folder of migrations (with its functions/ subfolder) to use instead of the bundled ones.", valueName: "dir"))
        var migrations: String?

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let migrator = try loadMigrator(migrations)
            let connection = try await PostgresConnection.connect(try await database.conninfo())
            defer { Task { await connection.close() } }
            let entries = try await migrator.status(on: connection)
            let repeatables = try await migrator.repeatableStatus(on: connection)
            if json {
                var objects = entries.map { entry -> [String: String] in
                    var object = ["kind": "numbered", "version": String(entry.version), "file": entry.file, "state": entry.state.rawValue]
                    if let at = entry.appliedAt { object["applied_at"] = at.formatted(.iso8601) }
                    return object
                }
                objects += repeatables.map { entry -> [String: String] in
                    var object = ["kind": "repeatable", "file": entry.file, "state": entry.state.rawValue]
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
            for entry in repeatables {
                let when: String = switch entry.state {
                case .applied: "applied \(entry.appliedAt?.formatted(.iso8601) ?? "")"
                case .changed: "changed since applied \(entry.appliedAt?.formatted(.iso8601) ?? "")"
                case .new: "new"
                }
                print("\(entry.file.padding(toLength: 40, withPad: " ", startingAt: 0)) \(when)")
            }
            let pending = entries.filter { $0.state == .pending }.count + repeatables.filter { $0.state != .applied }.count
            print(pending == 0 ? "Up to date." : "\(pending) to apply: run `orcastra migrate`.")
        }
    }
}

func loadMigrator(_ directory: String?) throws -> Migrator {
    if let directory { return try Migrator.load(from: URL(fileURLWithPath: directory)) }
    return try Migrator.bundled()
}
