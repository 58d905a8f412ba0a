import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraMigrations
import OrcastraPostgres

extension MigrateCommand {
    /// `orcastra migrate status`: what `migrate` would do, with an exit code a deploy script can gate on.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List applied and pending migrations, and applied, changed and new repeatable files.",
            discussion: """
                Reads the same files as `orcastra migrate` (--migrations DIR, or the bundled ones) and \
                makes the same checks, without changing anything.

                Exit codes: 0 up to date; 5 something to apply (a pending migration, a new or changed \
                repeatable file); 65 an applied migration was edited (`orcastra migrate` refuses it: \
                restore the file and put the change in a new migration); 66 the --migrations folder \
                does not exist, is a file or holds no .sql files; 69 the database cannot be reached.

                Examples:
                  orcastra migrate status
                  orcastra migrate status --migrations ./Migrations --json
                  orcastra migrate status --json | jq -r '.[] | select(.state != "applied") | .file'
                """
        )

        @OptionGroup var database: DatabaseOptions

        @OptionGroup var source: MigrationsOptions

        @Flag(help: "Print a JSON array of {kind, file, version, state, applied_at} for scripts.")
        var json = false

        func run() async throws {
            let migrator = try source.migrator()
            let connection = try await PostgresConnection.connect(try await database.conninfo())
            defer { Task { await connection.close() } }
            let migrations = try await migrator.status(on: connection)
            let repeatables = try await migrator.repeatableStatus(on: connection)
            let toApply = migrations.filter { $0.state == .pending }.count + repeatables.filter { $0.state != .applied }.count
            let refusals = migrations.compactMap(\.refusal)
            if json {
                try CLI.printJSON(migrations.map(FileState.init) + repeatables.map(FileState.init))
            } else {
                for entry in migrations { print(line(entry.file, describe(entry))) }
                for entry in repeatables { print(line(entry.file, describe(entry))) }
                if refusals.isEmpty {
                    // The same database as this command: with --database-url, say so (without printing
                    // the URL, which may hold a password).
                    let target = database.databaseURL.map { _ in " with the same --database-url" } ?? ""
                    print(toApply == 0 ? "Up to date." : "\(toApply) to apply: run `\(source.migrateCommand)`\(target).")
                }
            }
            if let last = refusals.last {
                for refusal in refusals.dropLast() { CLI.writeError("error: \(refusal)\n") }
                throw CLIFailure(message: "\(last)", exitCode: .invalidInput)
            }
            if toApply > 0 { throw ArgumentParser.ExitCode(ExitCode.migrationsPending.rawValue) }
        }

        private func line(_ file: String, _ state: String) -> String {
            "\(file.padded(to: 40)) \(state)"
        }

        private func describe(_ entry: Migrator.Entry) -> String {
            let when = entry.appliedAt?.formatted(.iso8601) ?? ""
            return switch entry.state {
            case .applied: "applied \(when)"
            case .pending: "pending"
            case .edited: "edited since applied \(when): refused until restored"
            }
        }

        private func describe(_ entry: Migrator.RepeatableEntry) -> String {
            let when = entry.appliedAt?.formatted(.iso8601) ?? ""
            return switch entry.state {
            case .applied: "applied \(when)"
            case .changed: "changed since applied \(when)"
            case .new: "new"
            }
        }
    }

    /// One file of `migrate status --json`. Keys without a value (`version` of a repeatable file,
    /// `applied_at` of one never applied) are left out.
    struct FileState: Encodable {
        var kind: String
        var file: String
        var version: Int?
        var state: String
        var appliedAt: Date?

        init(_ entry: Migrator.Entry) {
            self.init(kind: "numbered", file: entry.file, version: entry.version, state: entry.state.rawValue, appliedAt: entry.appliedAt)
        }

        init(_ entry: Migrator.RepeatableEntry) {
            self.init(kind: "repeatable", file: entry.file, version: nil, state: entry.state.rawValue, appliedAt: entry.appliedAt)
        }

        init(kind: String, file: String, version: Int?, state: String, appliedAt: Date?) {
            self.kind = kind
            self.file = file
            self.version = version
            self.state = state
            self.appliedAt = appliedAt
        }

        enum CodingKeys: String, CodingKey {
            case kind, file, version, state
            case appliedAt = "applied_at"
        }
    }
}
