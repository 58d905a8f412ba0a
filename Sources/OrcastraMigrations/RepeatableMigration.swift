import Foundation

/// One repeatable SQL file from `Migrations/functions/`: a function, trigger or view, one concern
/// per file, written with `CREATE OR REPLACE` (or `DROP … IF EXISTS` first) so it can run again.
///
/// Unlike numbered migrations, these may be edited: `orcastra migrate` re-applies a file whenever
/// its checksum changes, after every numbered migration, so a fix to a function is a diff of that
/// function.
public struct RepeatableMigration: Sendable, Equatable {
    /// The folder inside `Migrations/` that holds them.
    public static let folder = "functions"

    /// The path inside `Migrations/`, like `functions/report.sql`: what people see in
    /// messages and what the database records.
    public var file: String
    public var sql: String

    public init(file: String, sql: String) {
        self.file = file
        self.sql = sql
    }

    /// Reads every `*.sql` in `migrations/functions/`, ordered by file name; none if there is no such folder.
    public static func load(fromMigrations migrations: URL) throws -> [RepeatableMigration] {
        let directory = migrations.appendingPathComponent(folder)
        guard SQLFiles.isFolder(directory) else { return [] }
        return try SQLFiles.names(in: directory).sorted().map { name in
            RepeatableMigration(file: "\(folder)/\(name)", sql: try SQLFiles.text(of: name, in: directory))
        }
    }
}
